"""The `estate` command line: the app, the commands on the spec itself (validate, councils, ipam, schema) and the
registration of the other command modules (estate.cli_*). What the command modules share is estate.cli_common.

Heavy modules (pydantic models, Pulumi, Ansible) are imported inside the commands so that `estate --help` stays
fast; each such import points down the layers (the contract in pyproject.toml checks them like any other)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from estate.cli_common import RootOpt, console, fail, guarded, load
from estate.signals import handling_signals

app = typer.Typer(
    help="shared-estate: the framework spec, council inventories and the tools that converge them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
@guarded
def validate(root: RootOpt = None) -> None:
    """Validate framework.yaml, every council's inventory and every Pulumi stack file (Pulumi.<stack>.yaml).
    Exit 0 when valid, 2 otherwise."""
    from estate import stackfile
    from estate.compliance.engine import check_exemptions

    estate = load(root)
    check_exemptions(estate)  # every exemption names a known rule (the loader sits below the rules)
    n = len(estate.councils)
    files = stackfile.validate_all(estate.root, estate.councils)
    typer.echo(f"framework {estate.framework.version}: valid; {n} council{'s' if n != 1 else ''} valid; "
               f"{files} stack file{'s' if files != 1 else ''} valid")


@app.command()
@guarded
def councils(root: RootOpt = None) -> None:
    """List the councils: code, users, address block, contracts, exemptions."""
    from rich.table import Table

    estate = load(root)
    table = Table(title=f"Councils on framework {estate.framework.version}")
    for col in ("council", "name", "code", "staff", "desktop users", "block", "contracts", "exemptions"):
        table.add_column(col, justify="right" if col in ("staff", "desktop users") else "left")
    for key, rec in estate.councils.items():
        c = rec.council
        table.add_row(key, c.name, c.code, str(c.users.staff), str(c.users.desktop), c.block,
                      str(len(c.contracts)), str(len(c.exemptions)))
    console().print(table)


@app.command()
@guarded
def ipam(
    council: Annotated[str | None, typer.Argument(help="A council (or 'shared' for the hub).")] = None,
    root: RootOpt = None,
) -> None:
    """Show the address plan: each site's block and its subnet per VLAN."""
    from rich.table import Table

    from estate.ipam import HUB

    estate = load(root)
    plan = estate.addresses
    keys = [council] if council else [HUB, *plan.councils]
    if council and council != HUB:
        estate.council(council)
    out = console()
    out.print(f"supernet {plan.supernet}")
    for key in keys:
        site = plan.site(key)
        table = Table(title=f"{key}  {site.block}")
        for col in ("vlan", "segment", "subnet", "gateway", "hosts", "purpose"):
            table.add_column(col)
        for seg in site.segments:
            table.add_row("-" if seg.vlan_id is None else str(seg.vlan_id), seg.name, str(seg.network),
                          str(seg.gateway), str(seg.network.num_addresses - 2), seg.purpose)
        out.print(table)


@app.command()
@guarded
def schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Folder to write into.")] = None,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 if the files are out of date.")] = False,
    root: RootOpt = None,
) -> None:
    """Write JSON Schema for framework.yaml and council.yml beside framework.yaml."""
    from estate.loader import find_root
    from estate.schema import write_schemas

    folder = output or (root.resolve() if root else find_root())
    stale = write_schemas(folder, check=check)
    if check and stale:
        raise fail(f"out of date: {', '.join(stale)} (run 'estate schema')", 1)
    typer.echo("schemas up to date" if check else f"wrote schemas to {folder}")


def _register_extensions() -> None:
    """Commands of later layers register themselves here when their module exists."""
    for name in ("estate.cli_plan", "estate.cli_check", "estate.cli_lab", "estate.cli_configure",
                 "estate.cli_onboard", "estate.cli_preflight", "estate.cli_reach", "estate.cli_offboard",
                 "estate.cli_framework", "estate.cli_tickets", "estate.cli_deploy"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(app)


def main() -> None:
    _register_extensions()
    # Ctrl-C, SIGTERM and SIGHUP: every command's clean-up runs, then one line and exit 128+signal
    with handling_signals(last=True):
        sys.exit(run())


def run(args: list[str] | None = None) -> int:
    """Run a command and return its exit code. A usage error (an unknown option or command, a value that is not
    of the option's type, a missing argument) is one line on stderr and exit 2, as every bad input is: Typer
    would draw Click's message in a boxed panel over several lines."""
    # Typer 0.29 carries its own copy of Click (typer._click); its exceptions are the ones raised here
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="estate", standalone_mode=False)
    except NoArgsIsHelpError as exc:  # `estate` alone: the help, as before
        typer.echo(exc.ctx.get_help() if exc.ctx is not None else exc.format_message(), err=True)
        return 2
    except UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        typer.echo(f"Error: {' '.join(exc.format_message().split())}{hint}", err=True)
        return exc.exit_code
    except ClickException as exc:
        typer.echo(f"Error: {' '.join(exc.format_message().split())}", err=True)
        return exc.exit_code
    except typer.Abort:  # end of input at a prompt
        typer.echo("aborted", err=True)
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    main()
