"""The report in Cyber Essentials' terms (estate.reports.ce): every requirement once, the planes and controls that
evidence it, per council met / not met / no evidence from the findings, the requirements only attestation covers; the
requirements data (stable ids, v3.2 and v3.3); the CLI's ce and ce-json formats on the example councils."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from estate.cli import _register_extensions, app
from estate.compliance import evaluate
from estate.compliance.findings import CouncilResult, Finding, Report
from estate.controls.references import HERE, cyber_essentials
from estate.controls.spec import controls
from estate.loader import Estate
from estate.reports.ce import ce_report

REPO = Path(__file__).resolve().parent.parent
TODAY = dt.date(2026, 11, 29)
_register_extensions()
runner = CliRunner()
IDS = [f"CE-FW.{n}" for n in range(1, 7)] + [f"CE-SC.{n}" for n in range(1, 7)] + \
      [f"CE-SUM.{n}" for n in range(1, 5)] + [f"CE-UAC.{n}" for n in range(1, 8)] + ["CE-MP.1", "CE-MP.2"]


def test_the_requirement_ids_are_stable_and_both_versions_are_described() -> None:
    assert list(cyber_essentials()) == IDS
    data = yaml.safe_load((HERE / "cyber-essentials.yaml").read_text(encoding="utf-8"))
    assert set(data["versions"]) == {"3.2", "3.3"}
    assert data["versions"]["3.2"]["name"] == "Willow" and data["versions"]["3.3"]["name"] == "Danzell"
    assert all(r.text.endswith(".") and len(r.text) < 300 for r in cyber_essentials().values())
    assert "cyber-essentials.yaml" in (HERE / "SOURCES.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def report(estate: Estate) -> Report:
    return evaluate(estate, today=TODAY)


def test_each_requirement_once_with_the_controls_that_cite_it(estate: Estate, report: Report) -> None:
    view = ce_report(estate, report)
    assert [r.requirement.id for r in view.requirements] == IDS
    for r in view.requirements:
        citing = {path for path, spec in controls().items() if r.requirement.id in spec.ce}
        assert {c.spec.path for c in r.controls} == citing
        assert r.automatic == any(controls()[p].rules for p in citing)
        if not r.automatic:
            assert r.requirement.id in view.attestation
            assert all(r.verdict(k) == "needs attestation" for k in view.councils)
    # MFA is configured in each council's identity provider: its control is attested, no machine evidences it
    mfa = next(r for r in view.requirements if r.requirement.id == "CE-UAC.4")
    if any(c.spec.path == "security.mfa" for c in mfa.controls) and all(c.spec.attested for c in mfa.controls):
        assert not mfa.automatic and mfa.planes == ()


def test_planes_come_from_the_rules_kinds(estate: Estate, report: Report) -> None:
    view = ce_report(estate, report)
    planes = {"asset": "asset register", "cloud": "cloud", "estate": "cloud", "host": "host"}
    for r in view.requirements:
        for c in r.controls:
            want = {planes[k] for cls in c.spec.rules for k in cls.kinds()}
            assert set(c.planes) == want


def finding(rule: str, status: str, resource: str) -> Finding:
    return Finding(rule_id=rule, title="t", severity="high", enforcement="mandatory", control="x", clause="CE: x",
                   area="datacentre", council="havering", kind="host", resource=resource, status=status,  # type: ignore[arg-type]
                   message="m", fix="f")


def test_verdict_per_council_from_the_findings(estate: Estate) -> None:
    """A requirement some control with rules cites: met when every finding passes, not met when one fails or is
    exempt (not enforced), no evidence when this run judged none of its rules there."""
    spec = next((s for s in controls().values() if s.ce and s.rules), None)
    assert spec is not None, "no control with rules cites a Cyber Essentials requirement yet"
    rule = spec.rules[0].id
    councils = {
        "a": [finding(rule, "pass", "r1"), finding(rule, "pass", "r2")],
        "b": [finding(rule, "pass", "r1"), finding(rule, "fail", "r2")],
        "c": [finding(rule, "exempt", "r1")],
        "d": [],
    }
    report = Report("2026.11", TODAY, ("assets",),
                    {k: CouncilResult(k, 1.0, fs, {}) for k, fs in councils.items()})
    view = ce_report(estate, report)
    req = next(r for r in view.requirements if r.requirement.id == spec.ce[0])
    assert req.verdict("a") == "met (2 pass)"
    assert req.verdict("b") == "not met (1 fail of 2)"
    assert req.verdict("c") == "not met (1 exempt of 1)"
    assert req.verdict("d") == "no evidence"


def ce_cli(*args: str) -> Any:
    return runner.invoke(app, ["check", "--root", str(REPO), "--today", TODAY.isoformat(), *args])


def test_cli_ce_table_and_json() -> None:
    table = ce_cli("--format", "ce")
    assert table.exit_code in (0, 1), table.output
    for rid in ("CE-FW.1", "CE-UAC.4", "CE-MP.2"):
        assert rid in table.stdout
    assert "need attestation" in table.stdout
    doc = json.loads(ce_cli("--format", "ce-json").stdout)
    assert [r["id"] for r in doc["requirements"]] == IDS
    assert doc["councils"] == ["havering", "newham", "waltham-forest"]
    assert doc["needs_attestation"] == [r["id"] for r in doc["requirements"] if not r["automatic"]]
    for r in doc["requirements"]:
        assert set(r["planes"]) <= {"asset register", "cloud", "host"}
        assert set(r["councils"]) == set(doc["councils"])
    assert doc["exit_code"] == table.exit_code
