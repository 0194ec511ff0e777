"""Plan a repo's stacks in this process and print the resource count: `python -m bench.plan_probe ROOT`.

`--keep-aliases` keeps Pulumi's default mock behaviour (the SDK's type aliases on every resource), for
the comparison with the project's alias-stripping transformation.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from estate.loader import load_estate
from estate.plan import plan


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("--keep-aliases", action="store_true")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    result = plan(load_estate(args.root), strip_aliases=not args.keep_aliases, workers=args.workers)
    print(len(result.resources))


if __name__ == "__main__":
    main()
