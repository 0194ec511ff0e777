"""`estate check`: judge the councils against the framework and report (table, JSON, JUnit, SARIF, HTML).

Sources: the asset registers always; `--plan` adds the offline plan of the Pulumi stacks (run under
mocks); `--state FILE` adds deployed resources from `pulumi stack export` instead (with `--plan`, it is the
deployed state that tells a new planned resource from an existing one); `--facts FILE`
adds host facts gathered from live hosts (a JSON list of HostFacts); `--hosts` gathers them from the
live hosts now (estate.compliance.gather). Exit 0 when no mandatory rule
fails, 1 when one does, 2 for bad input.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from estate.cli_common import RootOpt, guarded, load

if TYPE_CHECKING:
    from estate.compliance.findings import Report
    from estate.controls.facts import HostFacts
    from estate.loader import Estate

FORMATS = ("table", "json", "junit", "sarif", "html", "caf", "caf-json", "ce", "ce-json")
CAF_FORMATS = ("caf", "caf-json")  # the report in the NCSC CAF's terms (estate.reports.caf)


def _today(value: str | None) -> dt.date:
    from estate.errors import EstateError

    if value is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise EstateError.one("--today", 0, "", f"{value!r} is not a date (YYYY-MM-DD)") from None


def read_facts(path: Path, estate: Estate | None = None) -> list[HostFacts]:
    """Host facts from a JSON file: a list of objects of the HostFacts model (CONTRACTS.md s.3). With the
    estate, each host must be one its council declares (hosts.yml), in the role declared there: facts filed
    under another council, or in another role, would be judged by the wrong council's exemptions or rules."""
    from pydantic import ValidationError

    from estate.compliance.state import refuse_non_finite
    from estate.controls.facts import HostFacts
    from estate.errors import EstateError, format_path
    from estate.yamlsrc import display, load_json_list

    shown = display(path)
    data = load_json_list(path, "a JSON list of host facts")
    if not data:
        raise EstateError.one(shown, 0, "", "an empty list: no host facts to judge")
    refuse_non_finite(data, shown)
    out = []
    for i, item in enumerate(data):
        try:
            out.append(HostFacts.model_validate(item))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = (i, *(p for p in err["loc"] if isinstance(p, str | int)))
            msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            raise EstateError.one(shown, 0, format_path(loc), msg) from None
    if estate is not None:
        owners = declared_hosts(estate)
        for i, facts in enumerate(out):
            owner = owners.get(facts.host)
            if owner is None:
                raise EstateError.one(shown, 0, f"[{i}].host", f"{facts.host!r} is no host of any council's hosts.yml")
            if owner[0] != facts.council:
                raise EstateError.one(shown, 0, f"[{i}].council", f"host {facts.host} belongs to {owner[0]}, "
                                                                  f"not {facts.council!r}")
            if owner[1] != facts.role:
                raise EstateError.one(shown, 0, f"[{i}].role", f"host {facts.host} is a {owner[1]} in its hosts.yml, "
                                                               f"not a {facts.role!r}")
    return out


def declared_hosts(estate: Estate) -> dict[str, tuple[str, str]]:
    """Every host the inventories declare -> (its council, or 'shared' for the hub; its role)."""
    from estate.controls.base import HUB

    out: dict[str, tuple[str, str]] = {}
    sites = [(HUB, estate.hub_hosts), *((k, r.hosts) for k, r in estate.councils.items())]
    for key, hosts in sites:
        for host in hosts.hosts if hosts is not None else []:
            out[host.name] = (key, host.role)
    return out


def assessor_options(fmt: str, profile: str | None, caf_version: str | None) -> tuple[str, str]:
    """--profile and --caf-version, checked: they choose what the CAF report shows, and mean nothing elsewhere."""
    from estate.errors import EstateError
    from estate.reports.caf import PROFILES, VERSIONS

    for option, value, known in (("--profile", profile, PROFILES), ("--caf-version", caf_version, VERSIONS)):
        if value is None:
            continue
        if fmt not in CAF_FORMATS:
            raise EstateError.one(option, 0, "", f"applies to --format {' or '.join(CAF_FORMATS)}, not {fmt!r}")
        if value not in known:
            raise EstateError.one(option, 0, "", f"unknown value {value!r} (known: {', '.join(known)})")
    return profile or PROFILES[0], caf_version or VERSIONS[0]


def summary(report: Report) -> str:
    scores = ", ".join(f"{k} {r.score:.0%}" for k, r in report.councils.items())
    blocking = [f for f in report.findings if f.blocking]
    held = sum(1 for f in report.findings if f.baselined)
    if held:
        scores += f"; {held} baselined finding{'s' if held != 1 else ''} ({report.baseline}) do not count"
    if not blocking:
        return f"{scores}; exit 0: no mandatory rule fails" + (" outside the baseline" if held else "")
    rules = sorted({f"{f.council}:{f.rule_id}" for f in blocking})
    return f"{scores}; exit 1: {len(blocking)} mandatory findings fail ({', '.join(rules)})"


def check(
    council: Annotated[list[str] | None, typer.Option("--council", "-c", help="Judge only this council (repeat for more; 'shared' is the hub).")] = None,  # noqa: E501
    plan: Annotated[bool, typer.Option("--plan", help="Also judge the offline plan of the Pulumi stacks (slower).")] = False,  # noqa: E501
    state: Annotated[list[Path] | None, typer.Option("--state", help="Also judge a `pulumi stack export` JSON file (repeat per stack); with --plan, the deployed state that tells new planned resources from existing ones.")] = None,  # noqa: E501
    facts: Annotated[list[Path] | None, typer.Option("--facts", help="Also judge host facts: a JSON list of HostFacts.")] = None,  # noqa: E501
    hosts: Annotated[bool, typer.Option("--hosts", help="Also gather facts from the live hosts, in parallel, and judge them.")] = False,  # noqa: E501
    inventory: Annotated[Path | None, typer.Option("--inventory", help="Inventory for --hosts (default: the lab's, .state/lab/inventory.yml).")] = None,  # noqa: E501
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, json, junit, sarif, html; caf or caf-json (NCSC CAF outcomes), ce or ce-json (Cyber Essentials requirements).")] = "table",  # noqa: E501
    profile: Annotated[str | None, typer.Option("--profile", help="With --format caf/caf-json: the CAF profile whose targets to meet, baseline (default) or enhanced.")] = None,  # noqa: E501
    framework: Annotated[Path | None, typer.Option("--framework", help="Judge the estate against this proposed framework.yaml (a newer CalVer version) beside the current one and report what changes: scores, findings, roadmap moves, savings (--format table, json or html).")] = None,  # noqa: E501
    caf_version: Annotated[str | None, typer.Option("--caf-version", help="With --format caf/caf-json: the CAF version, 3.2 (default, GovAssure's) or 4.0.")] = None,  # noqa: E501
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report to this file.")] = None,
    history: Annotated[Path | None, typer.Option("--history", help="Append the scores to this JSON Lines file; the HTML plots its trend.")] = None,  # noqa: E501
    today: Annotated[str | None, typer.Option("--today", help="Judge as of this date (YYYY-MM-DD); default today.")] = None,  # noqa: E501
    baseline: Annotated[Path | None, typer.Option("--baseline", help="Exit 1 only on blocking findings this baseline file (--write-baseline) does not hold; the ones it holds are shown, marked baselined.")] = None,  # noqa: E501
    write_baseline: Annotated[Path | None, typer.Option("--write-baseline", help="Record today's failing findings' fingerprints in this file, for a later --baseline.")] = None,  # noqa: E501
    root: RootOpt = None,
) -> None:
    """Judge the councils against the framework: a convergence score per council and every finding with its fix.

    Exit 0 when no mandatory rule fails, 1 when one does (fail, or an exemption that has expired) or when an
    exemption matches nothing its rule judged, 2 for bad input. With --plan, --state names the deployed state: a
    planned resource it does not hold is new (a control enforced mandatory_on_create fails it; an existing one warns).
    --write-baseline FILE records today's failing findings by fingerprint; with --baseline FILE a failure that file
    holds is shown, marked baselined, and does not make the run exit 1 (estate.compliance.baseline).
    """
    from estate.errors import EstateError

    if fmt not in FORMATS:
        raise EstateError.one("--format", 0, "", f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    day = _today(today)
    if framework is not None and fmt not in CHANGE_FORMATS:
        raise EstateError.one("--format", 0, "", f"with --framework: one of {', '.join(CHANGE_FORMATS)}, not {fmt!r}")
    if framework is not None and history is not None:
        raise EstateError.one("--history", 0, "", "cannot go with --framework: the scores of a proposal are no history")
    estate = load(root)
    # --framework: the proposal, validated and checked against the same inventories before anything is judged
    proposed = None if framework is None else load_proposed(estate, framework)
    profile, caf_version = assessor_options(fmt, profile, caf_version)
    recorded = None
    if baseline is not None:  # read before judging: a file that is not a baseline is refused at once (exit 2)
        from estate.compliance.baseline import read_baseline

        recorded = read_baseline(baseline)
    from estate.controls.base import HUB

    councils = list(dict.fromkeys(council)) if council else None
    for key in councils or []:
        if key != HUB:
            estate.council(key)
    resources: list[Any] | None = None
    sources: list[str] = ["assets"]
    # The deployed state (--state): judged itself, or with --plan what tells a new planned resource (one whose URN
    # it does not hold) from an existing one, for a control enforced mandatory_on_create. None: nothing deployed.
    deployed: list[Any] | None = None
    if state:
        from estate.compliance.state import read_states
        from estate.yamlsrc import display

        known = [HUB, *estate.councils]
        deployed = []
        for path in state:
            held = read_states([path], known)
            # an export of a stack that --council leaves out would be judged by nothing: say so
            if councils is not None and not {r.stack for r in held} & set(councils):
                shown = ", ".join(sorted({r.stack for r in held}))
                raise EstateError.one(display(path), 0, "", f"holds stack {shown}, which --council does not "
                                                            f"select ({', '.join(councils)})")
            deployed.extend(held)
    if plan:
        from estate.plan import plan as make_plan

        stacks = councils  # None: the hub and every council
        resources = list(make_plan(estate, stacks).resources)
        sources.append("plan")
        if deployed is not None:
            sources.append("deployed state")
    elif deployed is not None:
        resources = deployed
        sources.append("state")
    # Host facts: --facts reads gathered facts from a file; live gathering (`--hosts`) plugs in here too.
    host_facts: list[HostFacts] | None = None
    if facts:
        host_facts = [f for path in facts for f in read_facts(path, estate)]
        sources.append("hosts")
    if hosts:
        from estate.compliance.gather import gather_inventory
        from estate.inventory import LAB_INVENTORY

        live = gather_inventory(estate.root, inventory or estate.root / LAB_INVENTORY, councils=councils,
                                approved_rdp=estate.framework.desktop.rdp_client.package)
        host_facts = [*(host_facts or []), *live]
        if "hosts" not in sources:
            sources.append("hosts")

    import dataclasses

    from estate.compliance import evaluate

    report = evaluate(estate, resources=resources, hosts=host_facts, councils=councils, today=day,
                      deployed=None if deployed is None else [r.urn for r in deployed])
    report = dataclasses.replace(report, sources=tuple(sources))
    if recorded is not None:
        from estate.compliance.baseline import apply_baseline

        report = apply_baseline(report, recorded)
    if write_baseline is not None:
        from estate.compliance.baseline import write_baseline as record

        count = record(write_baseline, report)
        typer.echo(f"wrote {write_baseline}: a baseline of {count} failing finding{'s' if count != 1 else ''}",
                   err=True)
    if proposed is not None:  # the estate judged again under the proposal, on the same planes, and what changes
        from estate.framework_change import judge_change
        from estate.reports.framework_change import render_change

        baselined = recorded  # the same baseline holds the same findings under the proposal

        def adjust(after: Report) -> Report:
            from estate.compliance.baseline import apply_baseline

            return after if baselined is None else apply_baseline(after, baselined)

        if plan:  # the stacks read the framework: planned again under the proposal
            from estate.plan import plan as make_plan

            resources = list(make_plan(proposed, councils).resources)
        change = judge_change(report, estate, proposed, councils=councils, resources=resources,
                              hosts=host_facts, deployed=None if deployed is None else [r.urn for r in deployed],
                              today=day, adjust=adjust)
        write_or_echo(render_change(change, fmt), output,
                      f"{len(change.changed_councils)} of {len(change.scores)} changed under "
                      f"{proposed.framework.version} ({', '.join(change.changed_councils) or 'none'})")
        raise typer.Exit(change.exit_code)

    from estate.atomic import write_atomic
    from estate.reports import render
    from estate.reports.history import with_report, write_history

    # the history line is written only once the report is: a run that cannot write its report leaves
    # the history as it was (and one that is interrupted, too)
    hist = with_report(history, report) if history is not None else None
    text = render(report, fmt, estate=estate, history=hist, profile=profile, caf_version=caf_version)
    if output is not None:
        write_atomic(output, text, parents=True)
        typer.echo(f"wrote {output}: {summary(report)}")
    else:
        typer.echo(text, nl=False)
    if history is not None and hist is not None:
        write_history(history, hist)
    raise typer.Exit(report.exit_code)


CHANGE_FORMATS = ("table", "json", "html")  # with --framework (estate.reports.framework_change)


def load_proposed(estate: Estate, path: Path) -> Estate:
    """The estate under a proposed framework (estate.framework_change.load_proposed): exit 2 for a malformed one."""
    from estate.framework_change import load_proposed as proposal

    return proposal(estate, path)


def write_or_echo(text: str, output: Path | None, said: str) -> None:
    from estate.atomic import write_atomic

    if output is not None:
        write_atomic(output, text, parents=True)
        typer.echo(f"wrote {output}: {said}")
    else:
        typer.echo(text, nl=False)


def register(app: typer.Typer) -> None:
    app.command("check")(guarded(check))
