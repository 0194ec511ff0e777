"""`estate offboard COUNCIL --on DATE`: the separation plan, then the council's files to departed/, all or nothing.

Heavy modules are imported inside the command, for `estate --help`'s start-up time only; each such import points
down the layers (the import-linter contract in pyproject.toml checks them)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from estate.cli_common import RootOpt, guarded

TodayOpt = Annotated[str | None, typer.Option("--today", help="Judge as of this date (YYYY-MM-DD; default today).")]


def _date(option: str, value: str) -> dt.date:
    from estate.errors import EstateError

    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise EstateError.one(option, 0, "", f"{value!r} is not a date (YYYY-MM-DD)") from None


def offboard(
    name: Annotated[str, typer.Argument(help="The council's key (its folder under inventories/).")],
    on: Annotated[str, typer.Option("--on", help="The day it leaves (YYYY-MM-DD): its block is reserved until then.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the separation plan; change nothing.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table | json | html (the plan's format)")] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the plan here instead of stdout.",
                                                dir_okay=False)] = None,
    today: TodayOpt = None,
    root: RootOpt = None,
) -> None:
    """A council leaves: the separation plan (what it takes, what the hub stops doing for it, the shared services
    it must replace, the money), then its inventory and stack config move to departed/<key>/ with the date and the
    plan, all or nothing. Its block stays reserved until the date."""
    from estate.errors import EstateError
    from estate.loader import find_root
    from estate.offboard import offboard as run
    from estate.offboard import render_markdown
    from estate.yamlsrc import display

    if fmt not in ("table", "json", "html"):
        raise EstateError.one("--format", 0, "", f"unknown format {fmt!r} (known: table, json, html)")
    folder = root.resolve() if root else find_root()
    day = _date("--today", today) if today else dt.date.today()
    done = run(folder, name, _date("--on", on), day, dry_run=dry_run)
    sep = done.plan
    if fmt == "json":
        text = sep.to_json()
    elif fmt == "html":
        from estate.loader import load_estate
        from estate.reports.html import HtmlReport
        from estate.reports.offboard import render_section

        if sep.report is None:
            raise EstateError.one("--format", 0, "", "html: no council remains to report on; use table or json")
        title = f"Shared estate: {sep.name} leaves on {sep.on} ({day})"
        page = HtmlReport(sep.report, load_estate(folder), title=title)
        page.add_section("offboard", "Separation plan", render_section(sep), index=0)
        text = page.render()
    else:
        text = render_markdown(sep)
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
    else:
        from estate.atomic import write_atomic

        write_atomic(output, text, parents=True)
        typer.echo(f"wrote {output}")
    if dry_run:
        typer.echo(f"dry run: nothing changed; {sep.destination}/ would hold {', '.join(sep.files)}", err=True)
        return
    for source, target in done.moved:
        typer.echo(f"moved {display(source)} -> {display(target)}", err=True)
    typer.echo(f"offboarded {sep.council}: {sep.block} reserved until {sep.on} ({display(done.folder)})", err=True)


def register(app: typer.Typer) -> None:
    app.command("offboard")(guarded(offboard))
