"""The CLI: validate, councils, ipam, schema; JSON Schema files are current."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from estate.cli import app
from estate.schema import SCHEMAS, render

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


def test_validate_the_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert "framework 2026.11: valid; 3 councils valid" in result.stdout


def test_ipam_newham_prints_its_subnets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("COLUMNS", "200")
    result = runner.invoke(app, ["ipam", "newham"])
    assert result.exit_code == 0, result.output
    assert "newham  10.64.32.0/20" in result.stdout
    for subnet in ("10.64.32.0/22", "10.64.40.0/24", "10.64.41.0/24", "10.64.42.128/26"):
        assert subnet in result.stdout


def test_councils_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("COLUMNS", "200")
    result = runner.invoke(app, ["councils"])
    assert result.exit_code == 0
    for code in ("E09000016", "E09000025", "E09000031"):
        assert code in result.stdout


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_committed_schemas_are_current(name: str) -> None:
    assert (REPO / name).read_text(encoding="utf-8") == render(SCHEMAS[name]), "run 'estate schema'"


def test_inventories_validate_against_the_json_schema() -> None:
    council_schema = json.loads((REPO / "council.schema.json").read_text())
    for path in (REPO / "inventories").glob("*/council.yml"):
        data = json.loads(json.dumps(yaml.safe_load(path.read_text()), default=str))
        jsonschema.validate(data, council_schema)
    fw_schema = json.loads((REPO / "framework.schema.json").read_text())
    jsonschema.validate(json.loads(json.dumps(yaml.safe_load((REPO / "framework.yaml").read_text()),
                                              default=str)), fw_schema)


def test_schema_check_reports_stale_files(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schema", "--check", "--output", str(tmp_path)])
    assert result.exit_code == 1
    assert "out of date" in result.stderr
    assert runner.invoke(app, ["schema", "--output", str(tmp_path)]).exit_code == 0
    assert runner.invoke(app, ["schema", "--check", "--output", str(tmp_path)]).exit_code == 0


def test_help_does_not_import_heavy_modules() -> None:
    code = ("import sys; from estate import cli; "
            "heavy = [m for m in ('pydantic', 'pulumi', 'ansible_runner', 'yaml') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ})
    assert out.stdout.strip() == ""
