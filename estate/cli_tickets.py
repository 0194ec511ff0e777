"""`estate tickets sync`: compliance findings as tickets in the councils' helpdesk queues (estate.tickets).

Heavy modules are imported inside the command, for `estate --help`'s start-up time only; each such import points
down the layers (the import-linter contract in pyproject.toml checks them)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from estate.cli_common import RootOpt, guarded, load

tickets_app = typer.Typer(help="Compliance findings as tickets in the helpdesk (Request Tracker 5, REST 2).",
                          no_args_is_help=True)


@tickets_app.command("sync")
@guarded
def sync(
    council: Annotated[list[str] | None, typer.Option("--council", "-c", help="Only this council's queue (repeat for more; 'shared' is the hub's operations queue).")] = None,  # noqa: E501
    plan: Annotated[bool, typer.Option("--plan", help="Also judge the offline plan of the Pulumi stacks (slower).")] = False,  # noqa: E501
    url: Annotated[str | None, typer.Option("--url", help="The helpdesk's base URL, e.g. https://helpdesk.example/rt (default: the lab inventory's helpdesk host). The token comes from $ESTATE_RT_TOKEN, else the lab's.")] = None,  # noqa: E501
    inventory: Annotated[Path | None, typer.Option("--inventory", help="Inventory whose helpdesk group names the host (default: the lab's, .state/lab/inventory.yml).")] = None,  # noqa: E501
    ca_file: Annotated[Path | None, typer.Option("--ca-file", help="Verify the helpdesk's certificate against this PEM file (default: the lab's, fetched from the host by `estate configure`; with --url, the system's CAs).", dir_okay=False)] = None,  # noqa: E501
    insecure: Annotated[bool, typer.Option("--insecure", help="Do not verify the helpdesk's certificate (a test helpdesk only).")] = False,  # noqa: E501
    today: Annotated[str | None, typer.Option("--today", help="Judge as of this date (YYYY-MM-DD); default today.")] = None,  # noqa: E501
    root: RootOpt = None,
) -> None:
    """Open a ticket for each failing or expired finding in its council's queue, update the ones that changed,
    resolve the ones whose finding passes or is exempt now; print what it did per queue.

    Exit 0 on success; 2, with one line naming the endpoint, when the helpdesk is unreachable, refuses the token or
    lacks a queue (nothing changed then; a sync cut off later is resumed by the next one)."""
    from estate.controls.base import HUB
    from estate.errors import EstateError
    from estate.inventory import LAB_INVENTORY
    from estate.tickets import RtClient, endpoint, lab_state
    from estate.tickets import sync as run

    day = dt.date.today()
    if today is not None:
        try:
            day = dt.date.fromisoformat(today)
        except ValueError:
            raise EstateError.one("--today", 0, "", f"{today!r} is not a date (YYYY-MM-DD)") from None
    estate = load(root)
    councils = list(dict.fromkeys(council)) if council else None
    for key in councils or []:
        if key != HUB:
            estate.council(key)
    point = endpoint(estate.root, url=url, inventory=inventory or estate.root / LAB_INVENTORY,
                     state=lab_state(estate.root), ca_file=ca_file, insecure=insecure)
    client = RtClient(point.url, point.token, point.context)
    client.call("GET", "queues/all")  # the helpdesk answers and takes the token, before the (slower) judging

    from estate.compliance import evaluate

    resources = None
    if plan:
        from estate.plan import plan as make_plan

        resources = list(make_plan(estate, councils).resources)
    report = evaluate(estate, resources=resources, councils=councils, today=day)
    summary = run(client, report, estate.framework, councils=councils)
    for line in summary.lines():
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.add_typer(tickets_app, name="tickets")
