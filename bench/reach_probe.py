"""Plan a repo's stacks, then time the reachability verification alone: `python -m bench.reach_probe ROOT`.

Prints the probes judged and the seconds of `Network.from_plan` plus `verify` (the plan is not counted). Exit 0
when every check holds, 1 when one does not (the timing is the point here, not the verdict).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from estate.loader import load_estate
from estate.plan import plan
from estate.reach import CHECKS, Network, verify


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    args = parser.parse_args()
    estate = load_estate(args.root)
    resources = plan(estate).resources
    start = time.perf_counter()
    found = verify(Network.from_plan(resources, estate), estate)
    seconds = time.perf_counter() - start
    probes = sum(found.total(c).allowed + found.total(c).denied for c in CHECKS)
    print(f"{len(resources)} {probes} {seconds:.3f}")
    return 0 if found.ok else 1


if __name__ == "__main__":
    sys.exit(main())
