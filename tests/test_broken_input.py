"""Bad input gets one line naming the file, the line and the field, and exit code 2.

Each folder under tests/data/broken holds one broken file (dropped into a copy of Newham's
inventory) and expected.txt, the exact line `estate validate` must print. Framework cases are
substitutions in a copy of framework.yaml, listed below.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from estate.cli import app

DATA = Path(__file__).parent / "data" / "broken"
CASES = sorted(p.name for p in DATA.iterdir() if p.is_dir())

FRAMEWORK_CASES = [
    ('version: "2026.11"', 'version: "26.11"',
     "framework.yaml:5: version: String should match pattern '^\\d{4}\\.\\d{2}(\\.\\d+)?$'"),
    ("  council_prefix: 20", "  council_prefix: 10",
     "framework.yaml:24: network.council_prefix: council_prefix /10 must be longer than the supernet's"),
    ("    - id: 20\n      name: servers", "    - id: 10\n      name: servers",
     "framework.yaml:55: network.vlans[1].id: duplicate VLAN id 10"),
    ("      prefix: 22\n      purpose: thin", "      prefix: 19\n      purpose: thin",
     "framework.yaml:61: network.vlans[2].prefix: VLAN desktops /19 is larger than a council block"),
    ("    minutes: 10", "    minutes: ten",
     "framework.yaml:381: desktop.screen_lock.minutes: Input should be a valid integer"),
    ("    retention_days: 180\n    sku: PerGB2018", "    retention_days: 180\n    sku: PerGB2018\n    colour: blue",
     "framework.yaml:472: data_centre.log_analytics.colour: unknown field"),
    ("  supernet: 10.64.0.0/11", "  supernet: 10.64.0.0/11\n  supernet: 10.0.0.0/8",
     "framework.yaml:24: network.supernet: duplicate key"),
    ("        prefix: 24\n        purpose: shared helpdesk", "        prefix: 20\n        purpose: shared helpdesk",
     "framework.yaml:27: network.hub.segments: the segments do not fit in 10.64.0.0/20: no room for management /24"),
    ("      destination: printers", "      destination: plotters",
     "framework.yaml:109: network.flows[3].destination: unknown VLAN 'plotters'"),
    ("        sources: [guest]", "        sources: [guests]",
     "framework.yaml:319: network.egress.purposes[6].sources[0]: unknown VLAN or hub segment 'guests'"),
    ("      kind: administration\n      source: hub/management\n      destination: management",
     "      kind: administration\n      source: hub/shared-services\n      destination: management",
     "framework.yaml:192: network.flows[14].source: an administration flow starts at one of "
     "network.administration.sources, not 'hub/shared-services'"),
    ("          fqdn_tags: [WindowsUpdate, WindowsDiagnostics, MicrosoftActiveProtectionService]",
     "          fqdn_tags: []",
     "framework.yaml:292: network.egress.purposes[2].application: an application purpose names fqdns or fqdn_tags"),
]


def _run(cwd: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["validate"], catch_exceptions=False)
    return result.exit_code, result.stderr


def test_corpus_is_large_enough() -> None:
    assert len(CASES) + len(FRAMEWORK_CASES) >= 20
    assert len(CASES) >= 20


@pytest.mark.parametrize("case", CASES)
def test_broken_inventory_file(case: str, repo_copy: Path) -> None:
    folder = DATA / case
    for broken in folder.glob("*.yml"):
        shutil.copy(broken, repo_copy / "inventories" / "newham" / broken.name)
    expected = (folder / "expected.txt").read_text(encoding="utf-8").strip()
    code, err = _run(repo_copy)
    assert code == 2
    assert err.strip() == expected
    assert "Traceback" not in err


@pytest.mark.parametrize(("find", "replace", "expected"), FRAMEWORK_CASES)
def test_broken_framework(find: str, replace: str, expected: str, repo_copy: Path) -> None:
    path = repo_copy / "framework.yaml"
    text = path.read_text(encoding="utf-8")
    assert find in text
    path.write_text(text.replace(find, replace, 1), encoding="utf-8")
    code, err = _run(repo_copy)
    assert code == 2
    lines = err.strip().splitlines()
    assert lines == [expected]


@pytest.mark.parametrize("case", ["contract-bad-date", "yaml-syntax", "block-overlaps-council"])
def test_real_process_prints_one_line_and_exits_2(case: str, repo_copy: Path) -> None:
    folder = DATA / case
    for broken in folder.glob("*.yml"):
        shutil.copy(broken, repo_copy / "inventories" / "newham" / broken.name)
    estate_bin = Path(sys.executable).parent / "estate"
    proc = subprocess.run([str(estate_bin), "validate"], cwd=repo_copy, capture_output=True, text=True,
                          env={**os.environ, "ESTATE_ROOT": ""}, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (folder / "expected.txt").read_text(encoding="utf-8").strip()
    assert proc.stdout == ""


def test_unknown_council_is_one_line(repo_copy: Path) -> None:
    result = CliRunner().invoke(app, ["ipam", "camden"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "inventories: council: unknown council 'camden' (known: havering, newham, waltham-forest)"
    )


def test_missing_framework_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ESTATE_ROOT", raising=False)
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 2
    assert "no framework.yaml here or above" in result.stderr
