"""The benchmark runner: times whole commands, prints a table and writes JSON.

Each scenario runs a command several times (after a warm-up where it says so) and records wall time and
the peak resident memory of the largest single process (from the kernel's accounting via wait4). Targets
come from the benchmark issue; a miss is reported, never asserted.

    python -m bench                 # every scenario
    python -m bench --only cli      # scenarios whose name starts with "cli"
    python -m bench --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.core import REPO, WORK, Result, estate_cmd, measure, run_once, summarise

# --------------------------------------------------------------------------- scenarios

Scenario = Callable[[], list[Result]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[Scenario], Scenario]:
    def add(func: Scenario) -> Scenario:
        SCENARIOS[name] = func
        return func

    return add


@scenario("cli")
def cli_start() -> list[Result]:
    return [
        summarise("cli-help", "estate --help", measure(estate_cmd("--help"), runs=9), 0.3),
        summarise("cli-validate", "estate validate (3 councils)", measure(estate_cmd("validate"), runs=9), 1.0),
    ]


def synthetic(count: int) -> Path:
    from estate.synthetic import write_synthetic

    root = WORK / f"syn-{count}"
    stamp = root / ".framework"
    fw = (REPO / "framework.yaml").read_text(encoding="utf-8")
    if not stamp.exists() or stamp.read_text(encoding="utf-8") != fw:
        write_synthetic(root, count, REPO / "framework.yaml")
        stamp.write_text(fw, encoding="utf-8")
    return root


@scenario("plan")
def plan_scale() -> list[Result]:
    results = []
    per_council: dict[int, float] = {}
    targets = {3: (None, None), 40: (10.0, 400.0), 400: (90.0, None)}
    for count in (3, 40, 400):
        root = synthetic(count)
        env = {"ESTATE_ROOT": str(root)}
        resources = int(run_once([sys.executable, "-m", "bench.plan_probe", str(root)], env).stdout.split()[-1])
        runs = measure(estate_cmd("check", "--plan", "--format", "json", "--output", str(WORK / f"check-{count}.json")),
                       runs=3 if count < 400 else 1, warmup=1 if count < 400 else 0, env=env)
        med = statistics.median(r.wall for r in runs)
        per_council[count] = med / count
        t_s, t_mb = targets[count]
        results.append(summarise(f"plan-check-{count}", f"estate check --plan, {count} councils", runs, t_s, t_mb,
                                 resources=resources, resources_per_s=round(resources / med)))
    results[-1].extra["seconds_per_council_400_vs_40"] = round(per_council[400] / per_council[40], 2)
    return results


@scenario("mocks")
def mocks_ratio() -> list[Result]:
    root = synthetic(40)
    probe = [sys.executable, "-m", "bench.plan_probe", str(root)]
    fast = measure(probe, runs=3)
    slow = measure([*probe, "--default-mocks"], runs=1, warmup=0)  # 5x or more the fast run: once is enough
    ratio = statistics.median(r.wall for r in slow) / statistics.median(r.wall for r in fast)
    res_fast = summarise("plan-40-stripped", "plan 40 councils, aliases stripped", fast, None)
    res_slow = summarise("plan-40-default-mocks", "plan 40 councils, Pulumi's default mocks", slow, None)
    res_slow.extra["speedup"] = round(ratio, 1)
    res_slow.target, res_slow.met = "speedup >= 8x", ratio >= 8
    return [res_fast, res_slow]


@scenario("reach")
def reach_scale() -> list[Result]:
    """The reachability verification (every check, every pair of segments, every port of the matrix) at 3, 40 and
    400 councils: `estate reach --all` end to end (plan included), and the verification alone (bench.reach_probe)."""
    results = []
    per_council: dict[int, float] = {}
    for count in (3, 40, 400):
        env = {"ESTATE_ROOT": str(synthetic(count))}
        alone = [run_once([sys.executable, "-m", "bench.reach_probe", env["ESTATE_ROOT"]], env)
                 for _ in range(3 if count < 400 else 1)]
        resources, probes, _ = alone[0].stdout.split()
        verify_s = statistics.median(float(r.stdout.split()[-1]) for r in alone)
        per_council[count] = verify_s / count
        runs = measure(estate_cmd("reach", "--all"), runs=3 if count < 400 else 1, warmup=1 if count < 400 else 0,
                       env=env)
        results.append(summarise(f"reach-all-{count}", f"estate reach --all, {count} councils (plan included)", runs,
                                 None, resources=int(resources), probes=int(probes), verify_s=round(verify_s, 3),
                                 verify_target="<= 10 s" if count == 40 else "-",
                                 verify_met=("yes" if verify_s <= 10 else "NO") if count == 40 else "-"))
    results[-1].extra["verify_s_per_council_400_vs_40"] = round(per_council[400] / per_council[40], 2)
    return results


@scenario("lab")
def lab() -> list[Result]:
    from bench.lab import lab_results

    return lab_results()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", action="append", default=[], help="Run scenarios whose name starts with this.")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results.json")
    args = parser.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    chosen = [n for n in SCENARIOS if not args.only or any(n.startswith(o) for o in args.only)]
    console = Console(width=max(160, Console().width))
    results: list[Result] = []
    for name in chosen:
        console.print(f"[bold]bench {name}[/bold] ...")
        results.extend(SCENARIOS[name]())
    table = Table(title=f"shared-estate benchmarks ({platform.node()}, {os.cpu_count()} cores, "
                        f"Python {platform.python_version()})")
    for col in ("scenario", "what", "runs", "median s", "min s", "max s", "peak MB", "target", "met", "extra"):
        table.add_column(col)
    for r in results:
        extra = ", ".join(f"{k}={v}" for k, v in r.extra.items())
        table.add_row(r.name, r.what, str(r.runs), f"{r.wall_median:.3f}", f"{r.wall_min:.3f}", f"{r.wall_max:.3f}",
                      f"{r.peak_mb:.0f}", r.target, {True: "yes", False: "NO", None: "-"}[r.met], extra)
    console.print(table)
    machine = {"node": platform.node(), "cores": os.cpu_count(), "python": platform.python_version(),
               "kernel": platform.release()}
    payload: dict[str, object] = {"machine": machine, "date": time.strftime("%Y-%m-%d"),
                                  "results": [asdict(r) for r in results]}
    previous = json.loads(args.json.read_text()) if args.json.exists() else {}
    if previous.get("results") and args.only:
        fresh = {x.name for x in results}
        payload["results"] = [r for r in previous["results"] if r["name"] not in fresh] + [asdict(r) for r in results]
    args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
