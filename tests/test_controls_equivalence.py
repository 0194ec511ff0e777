"""The controls move (issue 14) changes no verdict: the JSON report of the example councils (plan, assets and two
hosts' facts) and of 40 synthetic councils (plan and assets), as of one date, equals the report recorded before the
move (tests/data/equivalence/, made at commit 9891593 with `estate check --plan [--facts] --format json --today
2026-11-29`).

Reports may gain keys since (a finding's references, an exemption's owner): the comparison reads only the keys the
recorded report had. The example report is kept whole, so a difference is shown finding by finding; the 40 councils
are kept as a digest per council (score, counts and the SHA-256 of the council's findings in those keys).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from estate.cli import _register_extensions, app
from estate.synthetic import write_synthetic

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "equivalence"
TODAY = "2026-11-29"
FINDING_KEYS = ("rule", "title", "severity", "enforcement", "control", "clause", "area", "council", "kind",
                "resource", "status", "message", "fix", "exemption")
EXEMPTION_KEYS = ("rule", "scope", "reason", "contract", "expires")
COUNCIL_KEYS = ("score", "rules_applicable", "rules_passing", "by_area", "counts")


def project(report: dict[str, Any]) -> dict[str, Any]:
    """The report in the keys recorded before the move."""
    councils: dict[str, Any] = {}
    for key, council in report["councils"].items():
        findings = []
        for f in council["findings"]:
            item = {k: f[k] for k in FINDING_KEYS}
            if item["exemption"] is not None:
                item["exemption"] = {k: item["exemption"][k] for k in EXEMPTION_KEYS}
            findings.append(item)
        councils[key] = {**{k: council[k] for k in COUNCIL_KEYS}, "findings": findings}
    return {"framework_version": report["framework_version"], "exit_code": report["exit_code"],
            "councils": councils}


def digest(report: dict[str, Any]) -> dict[str, Any]:
    projected = project(report)
    out = {}
    for key, council in projected["councils"].items():
        canon = json.dumps(council, sort_keys=True, separators=(",", ":"))
        out[key] = {"score": council["score"], "counts": council["counts"],
                    "sha256": hashlib.sha256(canon.encode()).hexdigest()}
    return {"framework_version": projected["framework_version"], "exit_code": projected["exit_code"],
            "councils": out}


def report(args: list[str], out: Path) -> dict[str, Any]:
    _register_extensions()
    result = CliRunner().invoke(app, ["check", "--plan", "--format", "json", "--today", TODAY, "--output", str(out),
                                      *args])
    assert result.exit_code in (0, 1), result.output
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def test_the_example_councils_are_judged_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    now = project(report(["--root", str(REPO), "--facts", str(DATA / "facts.json")], tmp_path / "r.json"))
    before = project(json.loads(gzip.decompress((DATA / "example.json.gz").read_bytes())))
    assert now["exit_code"] == before["exit_code"]
    assert set(now["councils"]) == set(before["councils"])
    for key, council in before["councils"].items():
        got = now["councils"][key]
        assert {k: got[k] for k in COUNCIL_KEYS} == {k: council[k] for k in COUNCIL_KEYS}, key
        assert got["findings"] == council["findings"], key


def test_forty_synthetic_councils_are_judged_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_synthetic(tmp_path / "syn", 40, REPO / "framework.yaml")
    monkeypatch.chdir(root)
    now = digest(report(["--root", str(root)], tmp_path / "r.json"))
    before = json.loads((DATA / "syn40.digest.json").read_text())
    assert now["exit_code"] == before["exit_code"]
    for key in before["councils"]:
        assert now["councils"][key] == before["councils"][key], key
    assert set(now["councils"]) == set(before["councils"])
