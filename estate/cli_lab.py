"""`estate lab up | status | down | probe | env`: the example councils' estate on this machine.

Heavy modules are imported inside the commands, for `estate --help`'s start-up time only; each such import points
down the layers (the import-linter contract in pyproject.toml checks them)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from estate.cli_common import RootOpt, guarded

if TYPE_CHECKING:
    from estate.lab.lab import HostStatus
    from estate.lab.topology import Topology

lab_app = typer.Typer(help="The lab: Podman hosts, one bridge per VLAN, a router enforcing the flow matrix.",
                      no_args_is_help=True)

QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
F = TypeVar("F", bound=Callable[..., Any])


def lab_guarded(func: F) -> F:
    """A tool that fails under the lab (ip, nft, podman) is one line and exit 2, like bad input."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import subprocess

        from estate.lab.sh import CommandFailed, lab_error

        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except CommandFailed as exc:
            raise lab_error(f"{' '.join(exc.argv[:4])} failed: {exc.last_line}") from None
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
            raise lab_error(str(exc).splitlines()[-1] if str(exc) else type(exc).__name__) from None

    return wrapper  # type: ignore[return-value]


def console() -> Any:
    """Rich console; wide enough for the tables when the output is not a terminal (logs, CI)."""
    import sys

    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=160)


def _hosts_table(topo: Topology, rows: list[HostStatus]) -> None:
    from rich.table import Table

    table = Table(title="lab hosts")
    for col in ("host", "site", "role", "vlan", "address", "gateway", "management", "container", "ssh"):
        table.add_column(col)
    for row in rows:
        h = row.host
        vlan = f"{h.segment.vlan_id} {h.segment.name}" if h.segment.vlan_id is not None else f"- {h.segment.name}"
        table.add_row(h.name, h.site, h.role, vlan, f"{h.address}/{h.segment.network.prefixlen}",
                      str(h.segment.gateway), str(h.mgmt_address), row.container, "yes" if row.ssh else "no")
    console().print(table)


def _segments_table(topo: Topology) -> None:
    from rich.table import Table

    endpoints = {ep.segment: ep for ep in topo.endpoints()}
    table = Table(title="lab segments: a bridge each in se-switch.<site>; the router holds every gateway")
    for col in ("site", "vlan", "segment", "subnet", "gateway", "bridge", "hosts", "isolation test endpoint"):
        table.add_column(col)
    for seg in topo.segments:
        hosts = ", ".join(h.name for h in topo.hosts if h.segment == seg) or "-"
        ep = endpoints[seg]
        where = f"{ep.name} {ep.address}" if ep.container else f"probe namespace {ep.address}"
        table.add_row(seg.site, "-" if seg.vlan_id is None else str(seg.vlan_id), seg.name, str(seg.network),
                      str(seg.gateway), seg.bridge, hosts, where)
    console().print(table)


@lab_app.command()
@guarded
@lab_guarded
def up(root: RootOpt = None, quiet: QuietOpt = False) -> None:
    """Bring the lab up (idempotent; resumes after an interruption) and write its Ansible inventory."""
    from estate.lab.lab import paths, status
    from estate.lab.lab import up as lab_up

    topo = lab_up(root, progress=not quiet)
    _, rows, _ = status(root)
    p = paths(root)
    if not quiet:
        _hosts_table(topo, rows)
    ready = sum(1 for r in rows if r.ssh)
    typer.echo(f"lab up: {len(topo.hosts)} hosts ({ready} answering ssh), {len(topo.segments)} segments, "
               f"{len(topo.probes)} probe namespaces; inventory {_shown(p.inventory, p.root)}")


def _shown(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


@lab_app.command()
@guarded
@lab_guarded
def status(root: RootOpt = None) -> None:
    """Show the lab's hosts, VLANs, addresses and state. Exit 0 when up and every host answers ssh, 1 otherwise."""
    from estate.lab.lab import status as lab_status

    topo, rows, is_up = lab_status(root)
    _hosts_table(topo, rows)
    _segments_table(topo)
    if not is_up:
        typer.echo("lab: down")
        raise typer.Exit(1)
    bad = [r.host.name for r in rows if not r.ssh]
    if bad:
        typer.echo(f"lab: degraded ({', '.join(bad)} not answering ssh)")
        raise typer.Exit(1)
    typer.echo(f"lab: up, {len(rows)} hosts answering ssh")


@lab_app.command()
@guarded
@lab_guarded
def down(root: RootOpt = None, quiet: QuietOpt = False) -> None:
    """Remove every namespace, link, container and nft table the lab made, and nothing else."""
    from estate.lab.lab import down as lab_down

    removed = lab_down(root, progress=not quiet)
    typer.echo(f"lab down: removed {removed} objects" if removed else "lab down: nothing to remove")


@lab_app.command()
@guarded
@lab_guarded
def probe(root: RootOpt = None,
          output: Annotated[Path | None, typer.Option("--output", "-o", help="Write every probe as JSON.")] = None
          ) -> None:
    """The isolation test: probe every (source VLAN, destination VLAN, port) and compare with the flow matrix."""
    from estate.lab.lab import paths, plan
    from estate.lab.probe import render, run_matrix, write_json
    from estate.lab.state import LabState
    from estate.lab.topology import load_config
    from estate.podman import podman_env

    p = paths(root)
    if LabState.load(p.state).is_empty:
        raise typer.Exit(_fail("lab: down (run `estate lab up` first)"))
    estate, topo = plan(p.root)
    result = run_matrix(estate.framework, topo, podman_env(p.root), timeout=load_config(p.root).probe.timeout)
    typer.echo(render(result, topo))
    write_json(result, output or p.lab / "isolation.json")
    if not result.ok:
        raise typer.Exit(1)


def _fail(message: str) -> int:
    typer.echo(message, err=True)
    return 2


@lab_app.command()
@guarded
@lab_guarded
def env(root: RootOpt = None) -> None:
    """Print the shell exports that point podman at the lab's storage: eval "$(estate lab env)"."""
    import shlex

    from estate.podman import podman_env

    environ = podman_env(root)
    for key in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF"):
        typer.echo(f"export {key}={shlex.quote(environ[key])}")


def register(app: typer.Typer) -> None:
    app.add_typer(lab_app, name="lab")
