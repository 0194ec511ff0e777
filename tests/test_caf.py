"""The report in the NCSC CAF's terms (estate.reports.caf): the CAF's own status rules on hand-made outcomes (the
expected statuses read off the CAF 3.2 table as the CDDO assessment service ships it, not off our code), indicators
judged by findings and by attestations that lapse, an unknown indicator refused with its line, the CLI's caf and
caf-json formats on the example councils for both profiles and both versions, the HTML section, and the references
JSON findings and SARIF rules carry (SARIF taxonomies valid against the 2.1.0 schema)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from estate.cli import _register_extensions, app
from estate.compliance import evaluate
from estate.compliance.findings import Finding, Report
from estate.controls.references import INDICATOR_STATUSES, caf
from estate.controls.spec import control_of, controls
from estate.loader import Estate
from estate.models import Attestation
from estate.reports import render
from estate.reports.caf import (
    caf_report,
    count_key,
    judge_indicator,
    judge_outcome,
    no_target,
    outcome_status,
)

REPO = Path(__file__).resolve().parent.parent
SARIF_SCHEMA = REPO / "tests" / "data" / "sarif-schema-2.1.0.json"
TODAY = dt.date(2026, 11, 29)
_register_extensions()
runner = CliRunner()
A, PA, NA = INDICATOR_STATUSES


def finding(status: str, rule: str = "SEC-006", resource: str = "fixture-server-1") -> Finding:
    return Finding(rule_id=rule, title="t", severity="high", enforcement="mandatory", control="5.7", clause="CE: x",
                   area="datacentre", council="havering", kind="host", resource=resource, status=status,  # type: ignore[arg-type]
                   message="m", fix="f")


def attestation(indicator: str = "B2.a.A.4", review: dt.date = dt.date(2027, 1, 31)) -> Attestation:
    return Attestation(indicator=indicator, statement="MFA for every user", by="Head of ICT", date=dt.date(2026, 9, 1),
                       evidence="https://example.org/mfa.pdf", review=review)


# ------------------------------------------------------------------ the CAF's status rules, hand-made outcomes

# (achieved statements, partially-achieved statements, not-achieved statements: each True when it holds) and the
# status the CAF 3.2 table (domains-webcaf frameworks/cyber-assessment-framework-v3.2.yaml `assessment-rules`) gives.
CASES = [
    ([True, True], [], [False, False], "achieved"),  # all_none_none: no partially-achieved column
    ([True, True], [True], [False], "achieved"),  # all_all_none
    ([True, True], [False, True], [False], "achieved"),  # all_some_none
    ([True, True], [], [True, False], "not-achieved"),  # all_none_some: one not-achieved statement decides
    ([True, False], [True, True], [False], "partially-achieved"),  # some_all_none
    ([False, False], [True], [False], "partially-achieved"),  # none_all_none
    ([True, False], [True, False], [False], "not-achieved"),  # some_some_none
    ([True, False], [], [False], "not-achieved"),  # some_none_none: an empty column is "none", not "all"
    ([False], [], [], "not-achieved"),  # none_none_none
    ([True], [True], [True], "not-achieved"),  # all_all_all
]


@pytest.mark.parametrize(("achieved", "partial", "not_achieved", "expected"), CASES)
@pytest.mark.parametrize("version", ["3.2", "4.0"])
def test_status_follows_the_caf_rules(version: str, achieved: list[bool], partial: list[bool],
                                      not_achieved: list[bool], expected: str) -> None:
    columns = {A: achieved, PA: partial, NA: not_achieved}
    assert outcome_status(caf(version), columns) == expected


def test_an_empty_column_counts_as_none_as_webcaf_counts_it() -> None:
    assert count_key([]) == "none"
    assert count_key([False, False]) == "none"
    assert count_key([True, False]) == "some"
    assert count_key([True]) == "all"


def test_the_4_0_ordered_rules_agree_with_the_3_2_table_on_every_count() -> None:
    """CAF 4.0's rules are an ordered list, 3.2's a table; read as we read them, they give the same status for every
    count of true statements per column (the CAF's text is the same: all achieved, all partially achieved, any not
    achieved)."""
    table = caf("3.2").assessment_rules["table"]
    examples = {"all": [True, True], "some": [True, False], "none": [False, False]}
    for a, p, n in itertools.product(examples, repeat=3):
        columns = {A: examples[a], PA: examples[p], NA: examples[n]}
        assert outcome_status(caf("4.0"), columns) == table[f"{a}_{p}_{n}"], (a, p, n)


# ------------------------------------------------------------------ indicators: findings, attestations, lapse


def test_an_indicator_is_met_when_every_finding_passes_and_not_when_one_fails() -> None:
    ind = caf("3.2").indicators["B4.b.A.2"]
    assert judge_indicator(ind, [finding("pass"), finding("pass", resource="b")], [], TODAY).state == "met"
    assert judge_indicator(ind, [finding("pass"), finding("fail", resource="b")], [], TODAY).state == "not met"
    assert judge_indicator(ind, [finding("expired")], [], TODAY).state == "not met"


def test_an_exempt_finding_is_not_enforced_so_the_indicator_is_not_met() -> None:
    result = judge_indicator(caf("3.2").indicators["B4.b.A.2"], [finding("pass"), finding("exempt", resource="b")],
                             [], TODAY)
    assert result.state == "not met" and result.exempt == 1
    assert "exempt: not enforced" in result.summary()


def test_an_indicator_nothing_judges_needs_attestation_until_attested() -> None:
    ind = caf("3.2").indicators["B2.a.A.4"]
    assert judge_indicator(ind, [], [], TODAY).state == "needs attestation"
    attested = judge_indicator(ind, [], [attestation()], TODAY)
    assert attested.state == "attested" and attested.met is True


def test_an_attestation_lapses_after_its_review_date() -> None:
    ind = caf("3.2").indicators["B2.a.A.4"]
    review = dt.date(2027, 1, 31)
    assert judge_indicator(ind, [], [attestation(review=review)], review).state == "attested"
    lapsed = judge_indicator(ind, [], [attestation(review=review)], review + dt.timedelta(days=1))
    assert lapsed.state == "lapsed" and lapsed.met is None
    assert "review was due 2027-01-31" in lapsed.summary()


def test_evidence_outranks_an_attestation() -> None:
    ind = caf("3.2").indicators["B2.a.A.4"]
    assert judge_indicator(ind, [finding("fail")], [attestation()], TODAY).state == "not met"


def test_a_failing_control_citing_a_not_achieved_statement_makes_it_true() -> None:
    outcome = caf("3.2").outcomes["B2.a"]
    results = [judge_indicator(i, [finding("fail")] if i.id == "B2.a.NA.1" else [], [attestation(i.id)]
                               if i.status != NA else [], TODAY) for i in outcome.indicators]
    judged = judge_outcome(caf("3.2"), outcome, results)
    assert judged.status == "not-achieved" and judged.settled


def test_an_outcome_without_evidence_or_attestation_is_not_assessed_not_not_achieved() -> None:
    outcome = caf("3.2").outcomes["A1.a"]
    judged = judge_outcome(caf("3.2"), outcome, [judge_indicator(i, [], [], TODAY) for i in outcome.indicators])
    assert judged.status is None and judged.met("baseline") == "not assessed"
    assert judged.needs_attestation == [i.id for i in outcome.indicators]


def test_every_indicator_attested_is_achieved_and_meets_the_profile() -> None:
    outcome = caf("3.2").outcomes["B2.a"]
    results = [judge_indicator(i, [], [attestation(i.id)], TODAY) for i in outcome.indicators]
    judged = judge_outcome(caf("3.2"), outcome, results)
    # every achieved and partially-achieved statement holds, no not-achieved one: all_all_none
    assert judged.status == "achieved" and judged.settled
    assert judged.met("baseline") == "yes" and judged.met("enhanced") == "yes"


def test_partial_evidence_gives_the_best_case_and_says_attestation_is_pending() -> None:
    outcome = caf("3.2").outcomes["B2.a"]  # targets: baseline partially achieved, enhanced achieved
    assert outcome.profile == {"baseline": "partially-achieved", "enhanced": "achieved"}
    results = [judge_indicator(i, [finding("pass")] if i.id == "B2.a.A.2" else [], [], TODAY)
               for i in outcome.indicators]
    judged = judge_outcome(caf("3.2"), outcome, results)
    assert judged.status == "achieved" and judged.worst == "not-achieved" and not judged.settled
    assert judged.met("baseline") == "pending attestation"
    assert "B2.a.A.2" not in judged.needs_attestation and "B2.a.A.4" in judged.needs_attestation


def test_a_failing_achieved_statement_misses_an_achieved_target_whatever_is_attested() -> None:
    outcome = caf("3.2").outcomes["B2.a"]
    results = [judge_indicator(i, [finding("fail")] if i.id == "B2.a.A.2" else [], [], TODAY)
               for i in outcome.indicators]
    judged = judge_outcome(caf("3.2"), outcome, results)
    # at best some achieved, all partially achieved, no not-achieved: some_all_none, partially achieved
    assert judged.status == "partially-achieved"
    assert judged.met("enhanced") == "no" and judged.met("baseline") == "pending attestation"


def test_caf_4_0_has_no_profile_target() -> None:
    outcome = caf("4.0").outcomes["B2.a"]
    judged = judge_outcome(caf("4.0"), outcome, [judge_indicator(i, [], [], TODAY) for i in outcome.indicators])
    assert judged.target("baseline") is None and judged.met("baseline") is None
    assert judged.to_dict("baseline", "4.0")["target"] == "no profile target published for CAF 4.0"


# ------------------------------------------------------------------ the report over the example councils


@pytest.fixture(scope="module")
def report(estate: Estate) -> Report:
    return evaluate(estate, today=TODAY)


def test_findings_reach_the_indicators_their_controls_cite(estate: Estate, report: Report) -> None:
    view = caf_report(estate, report, version="3.2")
    assert set(view.councils) == set(report.councils)
    for key, outcomes in view.councils.items():
        assert len(outcomes) == 39
        behind = {(f.rule_id, f.resource) for o in outcomes for i in o.indicators for f in i.findings}
        cited = {(f.rule_id, f.resource) for f in report.councils[key].findings
                 if (spec := control_of(f.rule_id)) is not None
                 and any(ref in caf("3.2").indicators for ref in spec.caf["3.2"])}
        assert behind == cited


def test_havering_attests_mfa(estate: Estate, report: Report) -> None:
    view = caf_report(estate, report, version="3.2")
    b2a = next(o for o in view.councils["havering"] if o.outcome.code == "B2.a")
    mfa = next(i for i in b2a.indicators if i.indicator.id == "B2.a.A.4")
    assert mfa.state == "attested" and mfa.attestation is not None
    assert mfa.attestation.evidence.startswith("https://")
    newham = next(o for o in view.councils["newham"] if o.outcome.code == "B2.a")
    assert "B2.a.A.4" in newham.needs_attestation


def caf_cli(*args: str, today: str = TODAY.isoformat()) -> Any:
    return runner.invoke(app, ["check", "--root", str(REPO), "--today", today, *args])


@pytest.mark.parametrize("profile", ["baseline", "enhanced"])
@pytest.mark.parametrize("version", ["3.2", "4.0"])
def test_cli_caf_table_and_json(profile: str, version: str) -> None:
    table = caf_cli("--format", "caf", "--profile", profile, "--caf-version", version)
    assert table.exit_code in (0, 1), table.output
    for key in ("havering", "newham", "waltham-forest"):
        assert f"{key}: CAF {version} contributing outcomes" in table.stdout
    assert "not assessed (needs attestation)" in table.stdout
    doc = json.loads(caf_cli("--format", "caf-json", "--profile", profile, "--caf-version", version).stdout)
    assert doc["caf_version"] == version and set(doc["councils"]) == {"havering", "newham", "waltham-forest"}
    outcomes = doc["councils"]["newham"]["outcomes"]
    assert len(outcomes) == len(caf(version).outcomes)
    if version == "3.2":
        assert doc["profile"] == profile
        assert all(o["target"] == caf("3.2").outcomes[o["outcome"]].profile[profile] for o in outcomes)
        assert {o["met"] for o in outcomes} <= {"yes", "no", "pending attestation", "not assessed"}
    else:
        assert no_target("4.0") in table.stdout
        assert all(o["target"] == no_target("4.0") and o["met"] is None for o in outcomes)
    assert all(o["status"] is None or o["status"] in INDICATOR_STATUSES for o in outcomes)
    assert table.exit_code == json.loads(caf_cli("--format", "json").stdout)["exit_code"] == doc["exit_code"]


def test_cli_caf_covers_the_hub_with_the_plan() -> None:
    """The hub (`shared`) has no asset register: it is judged, and so reported, once the plan is."""
    doc = json.loads(caf_cli("--format", "caf-json", "--plan", "--profile", "enhanced").stdout)
    assert set(doc["councils"]) == {"havering", "newham", "waltham-forest", "shared"}
    hub = doc["councils"]["shared"]["outcomes"]
    assert any(o["assessed"] for o in hub)
    assert all(i["attestation"] is None for o in hub for i in o["indicators"])  # the hub attests nothing


def test_cli_profile_outside_the_caf_formats_or_unknown_is_refused() -> None:
    wrong = caf_cli("--format", "json", "--profile", "enhanced")
    assert wrong.exit_code == 2 and wrong.output.strip().count("\n") == 0 and "--profile" in wrong.output
    unknown = caf_cli("--format", "caf", "--caf-version", "3.1")
    assert unknown.exit_code == 2 and "known: 3.2, 4.0" in unknown.output


def test_html_has_the_caf_section(estate: Estate, report: Report) -> None:
    page = render(report, "html", estate=estate)
    assert '<section id="caf">' in page and 'href="#caf"' in page
    assert "CAF 3.2: " in page and "CAF 4.0: " in page and no_target("4.0") in page
    assert "https://havering.sharepoint.com/" in page  # the MFA attestation's evidence link


# ------------------------------------------------------------------ attestations as input


def add_attestation(root: Path, **item: Any) -> int:
    """Append one attestation to Havering's council.yml; the line of its indicator."""
    path = root / "inventories" / "havering" / "council.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.setdefault("attestations", []).append(item)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if f"indicator: {item['indicator']}" in line:
            return n
    raise AssertionError("not written")


ITEM = {"statement": "s", "by": "Head of ICT", "date": dt.date(2026, 9, 1), "evidence": "https://example.org/e",
        "review": dt.date(2027, 9, 1)}


def test_an_unknown_indicator_is_refused_with_its_line(repo_copy: Path) -> None:
    line = add_attestation(repo_copy, indicator="B2.z.A.9", **ITEM)
    result = runner.invoke(app, ["check", "--root", str(repo_copy), "--format", "caf"])
    assert result.exit_code == 2
    assert result.output.strip() == (f"inventories/havering/council.yml:{line}: attestations[2].indicator: unknown CAF "
                                     f"indicator 'B2.z.A.9' (neither CAF 3.2 nor 4.0 has it)")


def test_a_malformed_indicator_or_evidence_is_refused_on_load(repo_copy: Path) -> None:
    add_attestation(repo_copy, indicator="MFA", **ITEM)
    result = runner.invoke(app, ["validate", "--root", str(repo_copy)])
    assert result.exit_code == 2 and "attestations[2].indicator" in result.output
    assert result.output.strip().count("\n") == 0


def test_an_attestation_reviewed_before_it_was_made_is_refused(repo_copy: Path) -> None:
    add_attestation(repo_copy, indicator="B2.a.A.6", **{**ITEM, "review": dt.date(2026, 8, 1)})
    result = runner.invoke(app, ["validate", "--root", str(repo_copy)])
    assert result.exit_code == 2 and "attestations[2].review" in result.output


def test_a_lapsed_attestation_shows_in_the_report(repo_copy: Path) -> None:
    out = runner.invoke(app, ["check", "--root", str(repo_copy), "--format", "caf-json", "--today", "2027-02-01",
                              "--council", "havering"])
    doc = json.loads(out.stdout)
    b2a = next(o for o in doc["councils"]["havering"]["outcomes"] if o["outcome"] == "B2.a")
    states = {i["id"]: i["state"] for i in b2a["indicators"]}
    assert states["B2.a.A.5"] == "lapsed" and states["B2.a.A.4"] == "attested"
    assert "B2.a.A.5" in b2a["needs_attestation"]


# ------------------------------------------------------------------ references in JSON and SARIF


def test_json_findings_carry_their_controls_references(estate: Estate, report: Report) -> None:
    doc = json.loads(render(report, "json", estate=estate))
    seen = 0
    for key, council in doc["councils"].items():
        for item in council["findings"]:
            spec = control_of(item["rule"])
            want = ({"caf": {"3.2": [], "4.0": []}, "ce": []} if spec is None else
                    {"caf": {v: list(spec.caf.get(v, ())) for v in ("3.2", "4.0")}, "ce": list(spec.ce)})
            assert item["references"] == want, (key, item["rule"])
            seen += spec is not None
    assert seen  # some findings' controls have homes already


def test_sarif_carries_the_references_as_taxonomies(estate: Estate, report: Report) -> None:
    doc = json.loads(render(report, "sarif", estate=estate))
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    assert sorted(jsonschema.validators.validator_for(schema)(schema).iter_errors(doc), key=str) == []
    run = doc["runs"][0]
    assert [(t["name"], t["version"]) for t in run["taxonomies"]] == [
        ("NCSC CAF", "3.2"), ("NCSC CAF", "4.0"), ("Cyber Essentials", "3.2")]
    assert run["tool"]["driver"]["supportedTaxonomies"] == [{"name": t["name"], "index": i}
                                                           for i, t in enumerate(run["taxonomies"])]
    declared = {path for path, s in controls().items() if s.rules}
    related = 0
    for descriptor in run["tool"]["driver"]["rules"]:
        spec = control_of(descriptor["id"])
        links = descriptor.get("relationships", [])
        if spec is None:
            assert links == []
            continue
        assert spec.path in declared
        got = {(run["taxonomies"][r["target"]["toolComponent"]["index"]]["taxa"][r["target"]["index"]]["id"],
                r["target"]["toolComponent"]["index"]) for r in links}
        want = {(ref, i) for i, v in enumerate(("3.2", "4.0")) for ref in spec.caf.get(v, ())}
        want |= {(ref, 2) for ref in spec.ce}
        assert got == want
        for r in links:
            taxon = run["taxonomies"][r["target"]["toolComponent"]["index"]]["taxa"][r["target"]["index"]]
            assert taxon["id"] == r["target"]["id"] and r["kinds"] == ["relevant"]
        related += 1
    assert related
