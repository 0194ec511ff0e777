"""The entry the Pulumi CLI runs (`Pulumi.yaml` has `main: stacks/`): load the estate from this repo, declare
the selected stack, export its outputs. Bad input stops the run with one line per problem."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the CLI runs this folder as a script; the package lives one level up
    sys.path.insert(0, str(ROOT))

import pulumi  # noqa: E402

from estate.errors import EstateError  # noqa: E402
from estate.loader import load_estate  # noqa: E402
from stacks.program import read_config, run  # noqa: E402


def main() -> None:
    stack = pulumi.get_stack()
    try:
        outputs = run(load_estate(ROOT), stack, read_config(stack, now=dt.datetime.now(dt.UTC)))
    except EstateError as exc:
        raise pulumi.RunError("\n".join(str(p) for p in exc.problems)) from None
    for name, value in outputs.items():
        pulumi.export(name, value)


main()
