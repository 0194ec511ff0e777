"""`estate framework-diff OLD NEW`: the actual differences between two framework files, by dotted path, and whether
NEW's change log entry (the one for NEW's version) accounts for them and only them (estate.framework_change.audit).

Exit 0 when it does, 1 when a difference is not logged or a logged change did not happen (or its from/to is not the
actual value), 2 for bad input: a malformed file (the loader's file:line errors) or a NEW that is not newer than OLD
(CalVer), named at its `version` line. `estate check --framework PROPOSED` shows what the change does to the estate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from estate.cli_common import guarded

DIFF_FORMATS = ("table", "json")


def framework_diff(
    old: Annotated[Path, typer.Argument(help="The framework file in force (e.g. framework.yaml).")],
    new: Annotated[Path, typer.Argument(help="The proposed framework file, with its change log entry.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report to this file.")] = None,
) -> None:
    """The differences between two framework files by dotted path, checked against NEW's change log entry.

    Exit 0 when the entry for NEW's version names every difference (with its from and to) and nothing else, 1 when
    it does not, 2 for a malformed file or a NEW whose version is not newer than OLD's.
    """
    from estate.errors import EstateError

    if fmt not in DIFF_FORMATS:
        raise EstateError.one("--format", 0, "", f"unknown format {fmt!r} (known: {', '.join(DIFF_FORMATS)})")
    from estate.framework_change import audit
    from estate.reports.framework_change import render_audit

    result = audit(old, new)
    text = render_audit(result, fmt)
    if output is not None:
        from estate.atomic import write_atomic

        write_atomic(output, text, parents=True)
        typer.echo(f"wrote {output}: {len(result.differences)} differences, {len(result.problems)} problems")
    else:
        typer.echo(text, nl=False)
    raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    app.command("framework-diff")(guarded(framework_diff))
