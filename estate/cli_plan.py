"""`estate plan`: the Pulumi program run offline under the SDK's mock runtime (see estate.plan).

Heavy modules are imported inside the commands, for `estate --help`'s start-up time only; each such import points
down the layers (the import-linter contract in pyproject.toml checks them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from estate.atomic import write_atomic
from estate.cli_common import RootOpt, fail, guarded, load


def register(app: typer.Typer) -> None:
    app.command("plan")(plan_command)


@guarded
def plan_command(
    council: Annotated[list[str] | None, typer.Option(
        "--council", "-c", help="Plan this council's stack (repeatable; 'shared' is the hub).")] = None,
    all_stacks: Annotated[bool, typer.Option("--all", help="Plan the hub and every council (the default).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Every resource with type, URN, parent and inputs.")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1, help="Processes to plan councils in (default: one per CPU).")] = None,
    root: RootOpt = None,
) -> None:
    """Run the Pulumi stacks offline (Pulumi's mock runtime) and print the resource tree with counts."""
    if council and all_stacks:
        raise fail("plan: give --council or --all, not both")
    from estate.plan import plan, render_tree

    estate = load(root)
    result = plan(estate, council or None, workers=workers)
    text = result.to_json() if as_json else render_tree(result)
    if output is None:
        typer.echo(text, nl=False)
        return
    write_atomic(output, text, parents=True)
    typer.echo(f"wrote {output} ({len(result.resources)} resources)")
