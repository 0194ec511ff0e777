"""Usage errors (an unknown option or command, a value of the wrong type, a missing value) are one line on
stderr and exit 2, through the real `estate` entry point: not Click's boxed panel over several lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ESTATE = str(Path(sys.executable).parent / "estate")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ESTATE, *args], cwd=REPO, capture_output=True, text=True, check=False,
                          env={**os.environ, "ESTATE_ROOT": "", "COLUMNS": "80"}, timeout=120)


@pytest.mark.parametrize(("args", "expected"), [
    (["onboard", "camden", "--users", "abc"],
     "Error: Invalid value for '--users': Input should be a valid integer, unable to parse string as an integer "
     "(see 'estate onboard --help')"),
    (["check", "--bogus"], "Error: No such option: --bogus (see 'estate check --help')"),
    (["check", "--today"], "Error: Option '--today' requires an argument."),
    (["check", "--plan=yes"], "Error: Option '--plan' does not take a value."),
    (["nosuch"], "Error: No such command 'nosuch'. (see 'estate --help')"),
    (["check", "--today", "22/11/2026"], "--today: '22/11/2026' is not a date (YYYY-MM-DD)"),
])
def test_a_usage_error_is_one_line_and_exit_2(args: list[str], expected: str) -> None:
    proc = run(*args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [expected]
    assert proc.stdout == ""


def test_help_still_works() -> None:
    proc = run("check", "--help")
    assert proc.returncode == 0 and "--today" in proc.stdout
