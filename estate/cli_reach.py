"""`estate reach`: follow a packet through the planned Azure network, or check the plan-wide reachability properties.

    estate reach havering/desktops havering/servers --port 443     # one packet, hop by hop
    estate reach shared/bastion hav-app01 --port 22                 # a VM by name
    estate reach havering/desktops deb.debian.org --port 443        # egress to a name
    estate reach havering/servers newham/servers                    # every port the matrix names
    estate reach --all                                              # every check (estate.reach.verify)

Exit 0 when the packet is allowed (with no --port: when any port is; --all: when every check holds), 1 when it is
denied, 2 for bad input (an unknown segment, council or protocol: one line).

Heavy modules are imported inside the commands, for `estate --help`'s start-up time only; each such import points
down the layers (the import-linter contract in pyproject.toml checks them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from estate.cli_common import RootOpt, fail, guarded, load

if TYPE_CHECKING:
    from estate.loader import Estate
    from estate.reach import Endpoint, Trace

PROTOCOLS = ("tcp", "udp")


def register(app: typer.Typer) -> None:
    app.command("reach")(guarded(reach))


def reach(
    src: Annotated[str | None, typer.Argument(help="From: <council>/<vlan>, shared/<segment>, an address, a VM's "
                                                   "name, or Internet.")] = None,
    dst: Annotated[str | None, typer.Argument(help="To: as SRC, or an FQDN (deb.debian.org) or tag:<FQDN tag>.")
                   ] = None,
    port: Annotated[int | None, typer.Option("--port", "-p", min=1, max=65535,
                                             help="Destination port (default: every port the matrix names).")] = None,
    protocol: Annotated[str | None, typer.Option("--protocol", help="tcp or udp (default: tcp with --port).")] = None,
    council: Annotated[list[str] | None, typer.Option(
        "--council", "-c", help="Plan only these councils and the hub (default: the councils SRC and DST name, or "
                                "every council).")] = None,
    all_checks: Annotated[bool, typer.Option("--all", help="Check every plan-wide property and print the summary."
                                             )] = False,
    root: RootOpt = None,
) -> None:
    """Trace a packet through the planned network (NSGs, routes, peerings, firewall) and name the rule that decides
    each hop; or, with --all, check that the plan allows exactly the flow matrix, the egress purposes and the
    administration paths, and routes council traffic through the hub firewall."""
    if protocol is not None and protocol.lower() not in PROTOCOLS:
        raise fail(f"reach: unknown protocol {protocol!r} (tcp or udp)")
    if all_checks and (src or dst):
        raise fail("reach: give SRC and DST, or --all, not both")
    if not all_checks and not (src and dst):
        raise fail("reach: give SRC and DST (or --all)")
    estate = load(root)
    from estate.plan import HUB, plan
    from estate.reach import Network, ReachError, verify

    stacks = _stacks(estate, council, [] if all_checks else [src or "", dst or ""])
    resources = plan(estate, stacks).resources
    network = Network.from_plan(resources, estate)
    if all_checks:
        found = verify(network, estate)
        typer.echo(f"reachability of the plan ({len(resources)} resources)")
        typer.echo(found.summary(limit=40))
        raise typer.Exit(0 if found.ok else 1)
    try:
        a, b = network.endpoint(src or ""), network.endpoint(dst or "")
    except ReachError as exc:
        raise fail(f"reach: {exc}") from None
    if port is not None:
        services = [((protocol or "tcp").lower(), port)]
    else:
        from estate.isolation import matrix_ports

        services = [s for s in matrix_ports(estate.framework) if protocol is None or s[0] == protocol.lower()]
    traces = network.traces(a, b, tuple(services))
    if len(traces) == 1:
        typer.echo(_one(a, b, services[0], traces[0]))
    else:
        typer.echo(f"{_end(a)} -> {_end(b)}")
        for (proto, number), trace in zip(services, traces, strict=True):
            hop = trace.deciding
            verdict = "not judged" if trace.outside else "ALLOWED" if trace.allowed else "denied "
            typer.echo(f"  {proto}/{number:<5} {verdict}  {hop.step} {hop.where}: {hop.rule} ({hop.detail})")
    if any(t.outside for t in traces) and not any(t.allowed for t in traces) and HUB not in (stacks or [HUB]):
        typer.echo("(plan the hub and the other council too: --council, or none for every council)")
    raise typer.Exit(0 if any(t.allowed for t in traces) else 1)


def _stacks(estate: Estate, council: list[str] | None, ends: list[str]) -> list[str] | None:
    """The stacks to plan: --council and the hub; else the sites SRC and DST name and the hub; else all (None)."""
    from estate.plan import HUB

    if council:
        return [HUB, *council]
    sites = {end.split("/", 1)[0] for end in ends if "/" in end}
    if ends and all("/" in end or end.lower() == "internet" for end in ends) and sites <= {HUB, *estate.councils}:
        return [HUB, *sorted(sites - {HUB})]
    return None


def _end(e: Endpoint) -> str:
    from estate.reach.addresses import show

    if e.fqdn or e.fqdn_tag or e.subnet is None:
        return e.label
    return e.label if show(e.address) in e.label else f"{e.label} ({show(e.address)})"


def _one(a: Endpoint, b: Endpoint, service: tuple[str, int], trace: Trace) -> str:
    proto, number = service
    lines = [f"{_end(a)} -> {_end(b)} {proto}/{number}"]
    lines += [f"  {i}. {hop}" for i, hop in enumerate(trace.hops, 1)]
    hop = trace.deciding
    if trace.outside:
        lines.append("NOT JUDGED: the packet leaves the planned stacks")
    elif trace.allowed:
        lines.append(f"ALLOWED (last decided by {hop.where}: {hop.rule})")
    else:
        lines.append(f"DENIED by {hop.where}: {hop.rule} ({hop.detail})")
    return "\n".join(lines)
