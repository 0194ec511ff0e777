"""What every benchmark shares: running a command with wall time and peak RSS, and summarising runs."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".state" / "bench"
BIN = Path(sys.executable).parent


@dataclass
class Run:
    wall: float
    peak_mb: float
    code: int
    stdout: str


@dataclass
class Result:
    name: str
    what: str
    runs: int
    wall_median: float
    wall_min: float
    wall_max: float
    peak_mb: float
    target: str
    met: bool | None
    extra: dict[str, float | int | str] = field(default_factory=dict)


def run_once(cmd: Sequence[str], env: dict[str, str] | None = None, cwd: Path = REPO,
             timeout: float = 1800) -> Run:
    """Run a command; wall time and the peak RSS of its largest process (ru_maxrss from wait4)."""
    import threading

    start = time.perf_counter()
    proc = subprocess.Popen(list(cmd), cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)  # reap it ourselves: Popen.wait would lose the rusage
    finally:
        timer.cancel()
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(wall, usage.ru_maxrss / 1024, proc.returncode, out)


def measure(cmd: Sequence[str], runs: int, warmup: int = 1, env: dict[str, str] | None = None,
            cwd: Path = REPO) -> list[Run]:
    for _ in range(warmup):
        run_once(cmd, env, cwd)
    out = [run_once(cmd, env, cwd) for _ in range(runs)]
    bad = [r.code for r in out if r.code not in (0, 1)]
    if bad:
        raise SystemExit(f"bench: {' '.join(cmd)} exited {bad[0]}")
    return out


def summarise(name: str, what: str, runs: list[Run], target_s: float | None, target_mb: float | None = None,
              **extra: float | int | str) -> Result:
    walls = [r.wall for r in runs]
    peak = max(r.peak_mb for r in runs)
    med = statistics.median(walls)
    parts, met = [], None
    if target_s is not None:
        parts.append(f"<= {target_s:g} s")
        met = med <= target_s
    if target_mb is not None:
        parts.append(f"<= {target_mb:g} MB")
        met = bool(met if met is not None else True) and peak <= target_mb
    return Result(name, what, len(runs), round(med, 3), round(min(walls), 3), round(max(walls), 3),
                  round(peak, 1), ", ".join(parts) or "-", met, dict(extra))


def estate_cmd(*args: str) -> list[str]:
    return [str(BIN / "estate"), *args]
