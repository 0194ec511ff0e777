"""Reports: JSON, JUnit (a test case per rule and resource), SARIF 2.1.0 valid against its schema,
a self-contained HTML page with score cards, charts per domain and the trend from --history."""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from estate.compliance import evaluate
from estate.compliance.findings import Report
from estate.errors import EstateError
from estate.loader import Estate
from estate.reports import render
from estate.reports.history import append, read_history
from estate.reports.html import HtmlReport
from estate.reports.sarif import asset_line

DATA = Path(__file__).parent / "data"
TODAY = dt.date(2026, 11, 22)


@pytest.fixture(scope="module")
def report(estate: Estate) -> Report:
    return evaluate(estate, today=TODAY)


def test_sarif_validates_against_the_2_1_0_schema(report: Report, estate: Estate) -> None:
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    doc = json.loads(render(report, "sarif", estate=estate))
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(doc), key=str)
    assert errors == []
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    assert len(run["results"]) == len(report.findings)
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
    levels = {(r["properties"]["status"], r["level"]) for r in run["results"]}
    assert ("fail", "error") in levels and ("exempt", "note") in levels and ("pass", "none") in levels
    exempt = [r for r in run["results"] if r["properties"]["status"] == "exempt"]
    assert all(r["suppressions"][0]["status"] == "accepted" for r in exempt)


def test_sarif_schema_rejects_a_broken_log(report: Report, estate: Estate) -> None:
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    doc = json.loads(render(report, "sarif", estate=estate))
    doc["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)


def test_sarif_points_asset_findings_at_their_line(estate: Estate) -> None:
    rec = estate.council("havering")
    lines = (rec.folder / "council.yml").read_text(encoding="utf-8").splitlines()
    line = asset_line(rec, "hav-core01")
    assert "hav-core01" in lines[line - 1]


def test_junit_has_a_testcase_per_rule_and_resource(report: Report, estate: Estate) -> None:
    root = ET.fromstring(render(report, "junit", estate=estate))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == list(report.councils)
    cases = root.findall("testsuite/testcase")
    assert len(cases) == len(report.findings)
    assert len({(c.get("classname"), c.get("name")) for c in cases}) == len(cases)
    failures = root.findall("testsuite/testcase/failure")
    assert len(failures) == sum(1 for f in report.findings if f.failing) == int(root.get("failures", "0"))
    assert all(re.fullmatch(r"[A-Z]{3}-\d{3}", f.get("type", "")) for f in failures)
    assert len(root.findall("testsuite/testcase/skipped")) == sum(1 for f in report.findings if f.status == "exempt")


def test_json_round_trips_the_findings(report: Report, estate: Estate) -> None:
    doc = json.loads(render(report, "json", estate=estate))
    assert doc["exit_code"] == report.exit_code
    for key, result in report.councils.items():
        assert doc["councils"][key]["score"] == round(result.score, 4)
        assert len(doc["councils"][key]["findings"]) == len(result.findings)


def test_html_is_self_contained_with_cards_charts_and_trend(report: Report, estate: Estate, tmp_path: Path) -> None:
    history_file = tmp_path / "history.jsonl"
    append(history_file, evaluate(estate, today=dt.date(2026, 5, 1)))
    history = append(history_file, report)
    html = render(report, "html", estate=estate, history=history)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "url(http" not in html and "@import" not in html
    for key in report.councils:
        assert f'id="card-{key}"' in html
    assert html.count("<svg") >= 2
    assert 'id="domains"' in html and 'id="trend"' in html and 'id="findings"' in html
    for area in ("network", "datacentre", "desktop", "helpdesk"):
        assert f">{area}<" in html or f"{area} " in html
    assert 'id="roadmap"' in html  # the convergence roadmap joins the report (CONTRACTS.md s.5)
    assert html == render(report, "html", estate=estate, history=history)  # deterministic bytes


def test_html_takes_extra_sections(report: Report, estate: Estate) -> None:
    page = HtmlReport(report, estate, providers=False)
    page.add_section("extra", "Extra", '<section id="extra"><h2>Extra</h2><p>hello</p></section>')
    html = page.render()
    assert '<a href="#extra">Extra</a>' in html and "<p>hello</p>" in html
    assert 'id="roadmap"' not in html


def test_history_keeps_one_run_per_date_and_sources(report: Report, tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    append(path, report)
    append(path, report)
    assert len(path.read_text(encoding="utf-8").splitlines()) == 1
    history = read_history(path)
    assert history.series("newham") == [(TODAY, round(report.councils["newham"].score, 4))]


def test_corrupt_history_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "h.jsonl"
    path.write_text('{"date": "2026-11-22", "scores": {"a": 0.5}}\n{"date": "soon", "scores": {}}\n', encoding="utf-8")
    with pytest.raises(EstateError) as err:
        read_history(path)
    assert str(err.value) == "h.jsonl:2: date: 'soon' is not a date (YYYY-MM-DD)"
