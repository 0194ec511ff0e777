"""Plan a repo's stacks in this process and print the resource count: `python -m bench.plan_probe ROOT`.

`--default-mocks` keeps Pulumi's default mock behaviour (the SDK's type aliases on every resource, source
positions, a thread per RPC, the mock monitor's own serialisation), for the comparison with the project's
fast mode.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from estate.loader import load_estate
from estate.plan import plan


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("--default-mocks", action="store_true")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    result = plan(load_estate(args.root), fast=not args.default_mocks, workers=args.workers)
    print(len(result.resources))


if __name__ == "__main__":
    main()
