"""`estate preflight`: the subscription prerequisites of the plan (see estate.preflight).

Exit 0 when nothing is short, 1 when `--quota` shows a quota family or a region's total short of what the plan
needs, 2 for bad input (an unknown council, a malformed quota file, a planned VM size preflight does not know).

Heavy modules are imported inside the commands, for `estate --help`'s start-up time only; each such import points
down the layers (the import-linter contract in pyproject.toml checks them).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from estate.cli_common import RootOpt, console, fail, guarded, load

if TYPE_CHECKING:
    from estate.preflight import Preflight, Usage

_REGION_SPEC = re.compile(r"^([a-z0-9]+)=(.+)$")
_SHOWN_WHY = 4  # reasons shown per row in the table (--json has them all)


def register(app: typer.Typer) -> None:
    app.command("preflight")(preflight_command)


@guarded
def preflight_command(
    council: Annotated[str | None, typer.Option(
        "--council", "-c",
        help="Only this council's stack ('shared' is the hub), with what it needs from the hub.")] = None,
    quota: Annotated[list[str] | None, typer.Option(
        "--quota", help="The JSON of `az vm list-usage --location REGION -o json`; REGION=FILE when the plan "
                        "needs vCPUs in more than one region (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Every section as JSON (for CI).")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")] = None,
    root: RootOpt = None,
) -> None:
    """What the Azure subscription needs before `pulumi up`, from the offline plan: resource providers and
    features to register, vCPUs per quota family and region (against `--quota`), the roles the deploying
    identity needs at each scope, and the names that must be unique across Azure.

    Exit 0, 1 when a quota is short, 2 for bad input.
    """
    from estate.plan import HUB, plan
    from estate.preflight import check_quota, preflight, read_usage
    from estate.yamlsrc import display

    estate = load(root)
    if council is not None and council != HUB:
        estate.council(council)  # unknown council: one line, exit 2
    files = [(region, display(path), read_usage(path)) for region, path in map(_quota_spec, quota or [])]
    stacks = None if council is None else list(dict.fromkeys([HUB, council]))
    result = preflight(plan(estate, stacks), None if council is None else [council])
    if files:
        usage: dict[str, tuple[str, list[Usage]]] = {}
        for region, shown, rows in files:
            if region is None:
                if len(result.regions) > 1:
                    raise fail(f"--quota: {shown}: the plan needs vCPUs in {', '.join(result.regions)}: "
                               "give REGION=FILE for each")
                region = result.regions[0] if result.regions else ""
            usage[region] = (shown, rows)
        result = check_quota(result, usage)
    text = result.to_json() if as_json else None
    if output is not None:
        from estate.atomic import write_atomic

        write_atomic(output, text if text is not None else _render(result, width=120), parents=True)
        typer.echo(f"wrote {output}")
    elif text is not None:
        typer.echo(text, nl=False)
    else:
        out = console()
        _print(result, out)
    short = result.short
    if short:
        raise fail("exit 1: quota short: " + "; ".join(q.describe() for q in short), 1)


def _quota_spec(spec: str) -> tuple[str | None, Path]:
    """REGION=FILE, or a bare FILE (for the one region the plan needs)."""
    m = _REGION_SPEC.fullmatch(spec)
    if m and not Path(spec).exists():
        return m.group(1), Path(m.group(2))
    return None, Path(spec)


# --------------------------------------------------------------------------- the tables


def _short_scope(scope: str) -> str:
    from estate.preflight import SUBSCRIPTION_SCOPE

    if scope == SUBSCRIPTION_SCOPE:
        return "subscription"
    rest = scope.removeprefix(SUBSCRIPTION_SCOPE + "/resourceGroups/")
    return rest.replace("/providers/", "/", 1)


def _why(why: tuple[str, ...]) -> str:
    shown = "\n".join(why[:_SHOWN_WHY])
    return shown + (f"\n... and {len(why) - _SHOWN_WHY} more" if len(why) > _SHOWN_WHY else "")


def _tables(result: Preflight) -> list[Any]:
    from rich.table import Table

    out: list[Any] = []
    who = ", ".join(result.stacks)
    providers = Table(title=f"Resource providers to register ({who}; needs */register/action at the subscription)")
    for col in ("namespace", "resources", "types", "command"):
        providers.add_column(col, justify="right" if col == "resources" else "left", overflow="fold")
    for p in result.providers:
        providers.add_row(p.namespace, str(p.resources), "\n".join(p.types), p.command)
    out.append(providers)

    features = Table(title="Features to register (before the first `pulumi up`)")
    for col in ("feature", "needed by", "commands", "source"):
        features.add_column(col, overflow="fold")
    for f in result.features:
        features.add_row(f"{f.namespace}/{f.name}", f"{len(f.resources)} resources:\n" + _why(f.resources),
                         "\n".join(f.commands), f.source)
    out.append(features)

    machines = Table(title="Machines and their vCPUs")
    for col in ("stack", "machines", "size", "family", "count", "vCPUs"):
        machines.add_column(col, justify="right" if col in ("count", "vCPUs") else "left")
    grouped: dict[tuple[str, str, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for i in result.vcpu_items:
        key = (i.stack, "session hosts (scale set " + i.resource + ")" if i.kind == "scale set" else "servers (VMs)",
               i.size, i.family, i.region)
        grouped[key][0] += i.instances
        grouped[key][1] += i.vcpus
    for (stack, what, size, family, _region), (count, vcpus) in grouped.items():
        machines.add_row(stack, what, size, family, str(count), str(vcpus))
    out.append(machines)

    needs = Table(title="vCPUs needed per region and quota family (`az vm list-usage` name)")
    cols = ["region", "quota", "name", "needed", "by stack"]
    if result.quota is not None:
        cols += ["in use", "limit", "free", "verdict"]
    for col in cols:
        needs.add_column(col, justify="right" if col in ("needed", "in use", "limit", "free") else "left")
    checks = {(q.region, q.family): q for q in result.quota or []}
    for n in result.vcpus:
        row = [n.region, n.family, n.local_name, str(n.vcpus), ", ".join(f"{k} {v}" for k, v in n.by_stack.items())]
        q = checks.get((n.region, n.family))
        if q is not None:
            row += ["-" if q.current is None else str(q.current), "-" if q.limit is None else str(q.limit),
                    "-" if q.free is None else str(q.free),
                    "[red]SHORT[/red]" if q.short else "ok"]
        elif result.quota is not None:
            row += ["-", "-", "-", "-"]
        needs.add_row(*row)
    out.append(needs)

    by_stack: dict[str, list[Any]] = defaultdict(list)
    for r in result.roles:
        by_stack[r.stack].append(r)
    for stack, rows in by_stack.items():
        table = Table(title=f"Rights of the identity that deploys {stack} (scopes under "
                            f"/subscriptions/<subscription-id>/resourceGroups/)")
        for col in ("scope", "role", "action", "why"):
            table.add_column(col, overflow="fold")
        for r in rows:
            why = _why(r.why) + (f"\n({r.note})" if r.note else "")
            table.add_row(_short_scope(r.scope), r.role, r.action, why)
        out.append(table)

    names = Table(title="Names that must be unique across Azure")
    for col in ("stack", "type", "name", "DNS name", "check"):
        names.add_column(col, overflow="fold")
    for u in result.names:
        names.add_row(u.stack, u.type, u.name, u.dns, u.check)
    out.append(names)
    return out


def _footer(result: Preflight) -> str:
    if result.quota is None:
        commands = "; ".join(result.usage_command.format(region=r) for r in result.regions)
        return f"quota not checked: give --quota with the JSON of {commands}" if commands else ""
    short = result.short
    return (f"quota short: {len(short)} of {len(result.quota)}" if short
            else f"quota ok: {len(result.quota)} of {len(result.quota)}")


def _print(result: Preflight, out: Any) -> None:
    for table in _tables(result):
        out.print(table)
    footer = _footer(result)
    if footer:
        out.print(footer)


def _render(result: Preflight, width: int) -> str:
    import io

    from rich.console import Console

    buffer = io.StringIO()
    _print(result, Console(width=width, file=buffer, no_color=True))
    return buffer.getvalue()
