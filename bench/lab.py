"""Lab benchmarks: converge the example councils from bare hosts with Ansible's defaults and with the
project's settings, the idempotent re-run, and the audit of every lab host (`estate check --hosts`).

Bare hosts: the lab is taken down and brought up again before each first converge, so both start from
the same freshly booted image. Targets (issue 8): project converge <= 8 min and >= 2x faster than the
defaults; the re-run <= 30 % of the first run; the audit <= 15 s.
"""

from __future__ import annotations

from bench.core import REPO, Result, Run, estate_cmd, run_once, summarise


def lab_results() -> list[Result]:
    def step(*args: str, timeout: float = 3600) -> Run:
        run = run_once(estate_cmd(*args), timeout=timeout)
        if run.code not in (0, 1):
            raise SystemExit(f"bench: estate {' '.join(args)} exited {run.code}")
        return run

    def fresh_lab() -> None:
        step("lab", "down")
        step("lab", "up")

    try:
        fresh_lab()
        defaults = step("configure", "--ansible-defaults", "--quiet")
        fresh_lab()
        project = step("configure", "--quiet")
        rerun = step("configure", "--quiet")
        audits = [step("check", "--hosts", "--format", "json", "--output",
                       str(REPO / ".state" / "bench" / "audit.json")) for _ in range(3)]
    finally:
        # The lab's names are the machine's: leave none behind for another checkout (or CI) to trip over.
        step("lab", "down")
    speedup = defaults.wall / project.wall
    share = rerun.wall / project.wall
    r_def = summarise("converge-defaults", "estate configure --ansible-defaults, bare hosts", [defaults], None)
    r_proj = summarise("converge-project", "estate configure, bare hosts", [project], 8 * 60.0,
                       speedup_vs_defaults=round(speedup, 2))
    r_proj.target += ", >= 2x faster than defaults"
    r_proj.met = bool(r_proj.met) and speedup >= 2
    r_rerun = summarise("converge-rerun", "estate configure again (0 changed)", [rerun], None,
                        share_of_first_run=round(share, 2))
    r_rerun.target, r_rerun.met = "<= 30 % of the first run", share <= 0.30
    r_audit = summarise("audit", "estate check --hosts (every lab host)", audits, 15.0)
    return [r_def, r_proj, r_rerun, r_audit]

