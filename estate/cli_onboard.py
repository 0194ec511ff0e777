"""`estate onboard` and `estate roadmap`.

Heavy modules are imported inside the commands, for `estate --help`'s start-up time only; each such import points
down the layers (the import-linter contract in pyproject.toml checks them)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from estate.cli_common import RootOpt, guarded


def _today(value: str | None) -> dt.date:
    from estate.errors import EstateError

    if value is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise EstateError.one("--today", 0, "", f"{value!r} is not a date (YYYY-MM-DD)") from None


TodayOpt = Annotated[str | None, typer.Option("--today", help="Judge as of this date (YYYY-MM-DD; default today).")]


def onboard(
    name: Annotated[str, typer.Argument(help="The council's key: its folder under inventories/ (a-z, 0-9, '-').")],
    code: Annotated[str, typer.Option("--code", help="The council's GSS code (E, N, S or W then eight digits).")],
    users: Annotated[int, typer.Option("--users", help="Staff: the council's users (apportions shared costs).")],
    assets: Annotated[Path | None, typer.Option("--assets", help="The asset register, CSV (docs/asset-register.md).",
                                                dir_okay=False)] = None,
    contracts: Annotated[Path | None, typer.Option("--contracts", help="Supplier contracts, CSV (same doc).",
                                                   dir_okay=False)] = None,
    title: Annotated[str | None, typer.Option("--title", help="Full name (default: from NAME).")] = None,
    desktop_users: Annotated[int | None, typer.Option("--desktop-users", help="Default: --users.")] = None,
    helpdesk_agents: Annotated[int, typer.Option("--helpdesk-agents")] = 0,
    today: TodayOpt = None,
    root: RootOpt = None,
) -> None:
    """Onboard a council: its address block, council.yml, hosts.yml and Pulumi stack config, all or
    nothing; then its gap analysis against the framework."""
    from estate.loader import find_root
    from estate.onboard import Request
    from estate.onboard import onboard as run
    from estate.yamlsrc import display

    folder = root.resolve() if root else find_root()
    when = _today(today)
    req = Request(key=name, code=code, users=users, title=title, desktop_users=desktop_users,
                  helpdesk_agents=helpdesk_agents, assets=assets, contracts=contracts, today=when)
    done = run(folder, req)
    typer.echo(f"onboarded {done.key}: block {done.block}")
    for path in done.files:
        typer.echo(f"  wrote {display(path)}")
    for host, role, address in done.hosts:
        typer.echo(f"  lab host {host} ({role}) {address}")
    _gap_analysis(folder, done.key, when)


def _gap_analysis(root: Path, key: str, today: dt.date) -> None:
    """Run `estate check --council KEY` for the council just onboarded and print it. Its exit code
    (1 when a mandatory rule fails, as it will for a council that has just joined) is reported, not
    returned: the onboarding itself succeeded."""
    from estate.cli_check import check

    typer.echo("")
    typer.echo(f"Gap analysis (estate check --council {key}):")
    try:
        check(council=[key], root=root, today=today.isoformat())
    except typer.Exit as done:
        code = done.exit_code
    else:  # pragma: no cover - check always ends with its exit code
        code = 0
    what = "no mandatory rule fails" if code == 0 else f"mandatory rules fail; see `estate roadmap --council {key}`"
    typer.echo(f"estate check --council {key} exits {code}: {what}")


def roadmap(
    council: Annotated[str | None, typer.Option("--council", help="One council (default: all).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json | html")] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.",
                                                dir_okay=False)] = None,
    today: TodayOpt = None,
    root: RootOpt = None,
) -> None:
    """Each council's path to the framework: the contracts that hold areas back, the order of moves,
    the projected convergence score per quarter and the savings."""
    from estate import roadmap as rm
    from estate.compliance import evaluate
    from estate.errors import EstateError
    from estate.loader import load_estate
    from estate.reports.html import HtmlReport
    from estate.reports.roadmap import render_table

    if fmt not in ("table", "json", "html"):
        raise EstateError.one("--format", 0, "", f"unknown format {fmt!r} (known: table, json, html)")
    estate = load_estate(root)
    if council:
        estate.council(council)
    keys = [council] if council else list(estate.councils)
    day = _today(today)
    report = evaluate(estate, councils=keys, today=day)
    if fmt == "html":
        # the report `estate check --format html` writes: its sections, then the roadmap's
        title = f"Shared estate: compliance report and convergence roadmap ({day})"
        text = HtmlReport(report, estate, title=title).render()
    else:
        plan = rm.build(estate, today=day, councils=keys, report=report)
        text = plan.to_json() if fmt == "json" else render_table(plan)
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
    else:
        from estate.atomic import write_atomic

        write_atomic(output, text, parents=True)
        typer.echo(f"wrote {output}")


def register(app: typer.Typer) -> None:
    app.command("onboard")(guarded(onboard))
    app.command("roadmap")(guarded(roadmap))
