"""The one rule engine: asset registers, cloud resources and host facts judged by the same rules,
exemptions applied, a convergence score per council.

Exemption governance: every exemption must name a known rule (`check_exemptions`: file, line, exit 2); a run warns
of an exemption that expires within `EXPIRY_WARNING_DAYS` of its date, and fails (exit 1) on one that matches
nothing its rule judged, once every plane that rule judges was judged for its council. A control with enforcement
`mandatory_on_create` fails a new resource (not in the deployed state) and warns on an existing one."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from estate.compliance.findings import CouncilResult, Finding, Notice, Report, Status
from estate.controls.base import (
    HUB,
    CloudResource,
    Context,
    Outcome,
    Rule,
    WrongType,
    control_at,
    failed,
    iter_rules,
    non_finite,
    registry,
)
from estate.controls.checks import HostFactCheck, ResourceValueCheck
from estate.controls.facts import HostFacts
from estate.controls.spec import control_of
from estate.errors import EstateError, Problem, describe, format_path
from estate.models import Exemption

if TYPE_CHECKING:
    from estate.loader import Estate


# An exemption that ends within this many days of the judging date is a warning: time to renew it or to fix.
EXPIRY_WARNING_DAYS = 30
# ctx.notes key: the URNs of the deployed state (None: no state given, every planned resource is new)
DEPLOYED = "engine.deployed"
# the planes a rule's kinds (Rule.kinds) are judged on
PLANE = {"asset": "assets", "cloud": "cloud", "estate": "cloud", "host": "hosts"}


def covers(ex: Exemption, resource: str) -> bool:
    """Does the exemption's scope (a glob) match the resource, or for a URN its short name?"""
    short = resource.rsplit("::", 1)[-1] if resource.startswith("urn:") else resource
    return fnmatchcase(resource, ex.scope) or fnmatchcase(short, ex.scope)


def exemption_for(ctx: Context, council: str, rule_id: str, resource: str) -> Exemption | None:
    """The first exemption of the council that names this rule and whose scope matches the resource
    (a glob, matched against the resource and, for a URN, its short name)."""
    record = ctx.estate.councils.get(council)
    if record is None:
        return None
    for ex in record.council.exemptions:
        if ex.rule == rule_id and covers(ex, resource):
            return ex
    return None


def check_exemptions(estate: Estate) -> None:
    """Every exemption names a rule the engine knows: else one line per exemption that does not, with its file
    and line (EstateError: exit 2). `estate validate` and every evaluation run it; the loader cannot, it sits below
    the rules."""
    known = registry()
    problems = [Problem(rec.source.file, rec.source.line(("exemptions", i, "rule")), f"exemptions[{i}].rule",
                        f"unknown rule {ex.rule!r}")
                for rec in estate.councils.values() for i, ex in enumerate(rec.council.exemptions)
                if ex.rule not in known]
    if problems:
        raise EstateError(problems)


def is_new(kind: str, resource: str, ctx: Context) -> bool:
    """Is the resource new, not yet deployed? A cloud resource is new when no state was given (a plan of what
    is not deployed yet) or the deployed state does not hold its URN; an asset in a register or a live host
    exists already (legacy)."""
    if kind not in ("cloud", "estate"):
        return False
    deployed: frozenset[str] | None = ctx.notes.get(DEPLOYED)
    return deployed is None or resource not in deployed


def judged_path(rule: Rule) -> str:
    """The property path a rule judges in each resource it judges, for the finding's fingerprint: a resource value
    check's key (a dotted path of the resource's inputs), a host fact check's fact (a field of HostFacts); "" for
    a rule that judges the resource as a whole, or a value check that reads its value its own way (no key)."""
    if isinstance(rule, ResourceValueCheck):
        return str(getattr(rule, "key", ""))
    if isinstance(rule, HostFactCheck):
        return str(getattr(rule, "fact", ""))
    return ""


def finding(rule: Rule, kind: str, council: str, outcome: Outcome, ctx: Context) -> Finding:
    """Turn a rule's outcome into a finding, applying the council's exemptions to a failure."""
    control = control_at(ctx.fw, rule.control)
    status: Status = "pass" if outcome.ok else "fail"
    message = outcome.message
    exemption = None
    new: bool | None = None
    if control.enforcement == "mandatory_on_create":
        new = is_new(kind, outcome.resource, ctx)
        if not outcome.ok:
            message += (" (a new resource: the control is mandatory on create)" if new else
                        " (an existing resource: the control is mandatory on create only, so this warns until it "
                        "is replaced)")
    if not outcome.ok:
        exemption = exemption_for(ctx, council, rule.id, outcome.resource)
        if exemption is not None:
            if ctx.today < exemption.expires:
                status = "exempt"
                message = (f"{message} (exempt until {exemption.expires}, contract {exemption.contract}: "
                           f"{exemption.reason})")
            else:
                status = "expired"
                message = (f"{message} (exemption under contract {exemption.contract} expired on "
                           f"{exemption.expires}: {exemption.reason})")
    spec = control_of(rule.id) if status == "exempt" else None
    return Finding(
        rule_id=rule.id, title=rule.title, severity=rule.severity,
        enforcement=control.enforcement, control=control.id, clause=control.clause,
        area=outcome.area or rule.area, council=council, kind=kind, resource=outcome.resource,
        status=status, message=message, fix=rule.remediation(ctx.fw), exemption=exemption, new=new,
        not_enforced=spec is not None and bool(spec.roles), path=outcome.path or judged_path(rule),
    )


def unreadable(res: CloudResource, ctx: Context) -> str | None:
    """Why a resource cannot be judged at all (a NaN or infinite number in its inputs), or None. Every rule that
    judges it then fails on it. Remembered per resource for the run."""
    seen: dict[int, tuple[CloudResource, str | None]] = ctx.notes.setdefault("engine.unreadable", {})
    known = seen.get(id(res))
    if known is not None and known[0] is res:  # the entry holds the resource, so its id is not reused
        return known[1]
    found = non_finite(res.inputs)
    why = None if found is None else (
        f"{res.name}: property {format_path(found[0])} is {describe(found[1])}, expected a finite number; "
        "it cannot be judged")
    seen[id(res)] = (res, why)
    return why


def _cannot_judge(exc: WrongType, subject: CloudResource | str) -> Outcome:
    """A rule met a value of the wrong type: a failure on the resource holding it, never a pass."""
    if isinstance(subject, str):  # a stack or the estate: name the resource the accessor read, if it knows it
        resource = exc.resource or subject
        name = resource.rsplit("::", 1)[-1]
    else:
        resource, name = exc.resource or subject.urn, subject.name
    return failed(resource, f"{name}: {exc}; it cannot be judged")


def judge_resource(rule: Rule, res: CloudResource, ctx: Context) -> list[Finding]:
    """One rule on one resource (what a ResourceValidationPolicy does)."""
    if not rule.judges(res.type):
        return []
    why = unreadable(res, ctx)
    if why is not None:
        return [finding(rule, "cloud", res.stack, failed(res.urn, why), ctx)]
    try:
        outcomes = list(rule.resource(res, ctx))
    except WrongType as exc:
        outcomes = [_cannot_judge(exc, res)]
    return [finding(rule, "cloud", res.stack, o, ctx) for o in outcomes]


def _readable(resources: Sequence[CloudResource], ctx: Context) -> tuple[list[CloudResource], list[Outcome]]:
    """The resources a stack or estate rule can read, and a failure for each it cannot."""
    good: list[CloudResource] = []
    bad: list[Outcome] = []
    for res in resources:
        why = unreadable(res, ctx)
        if why is None:
            good.append(res)
        else:
            bad.append(failed(res.urn, why))
    return good, bad


def judge_stack(rule: Rule, resources: Sequence[CloudResource], ctx: Context) -> list[Finding]:
    """One rule on the resources of one stack (what a StackValidationPolicy does)."""
    if not resources or not rule.implements("stack"):
        return []
    stack = resources[0].stack
    good, outcomes = _readable(resources, ctx)
    try:
        outcomes.extend(rule.stack(good, ctx))
    except WrongType as exc:
        outcomes.append(_cannot_judge(exc, f"stack {stack}"))
    return [finding(rule, "cloud", stack, o, ctx) for o in outcomes]


def judge_estate(rule: Rule, resources: Sequence[CloudResource], ctx: Context) -> list[Finding]:
    """One rule on every stack's resources at once; each outcome counts for the stack it names."""
    if not resources or not rule.implements("estate"):
        return []
    good, bad = _readable(resources, ctx)
    stack_of = {r.urn: r.stack for r in resources}
    pairs: list[tuple[str, Outcome]] = [(stack_of[o.resource], o) for o in bad]
    try:
        pairs.extend(rule.estate(good, ctx))
    except WrongType as exc:
        stack = stack_of.get(exc.resource or "", resources[0].stack)
        pairs.append((stack, _cannot_judge(exc, f"stack {stack}")))
    return [finding(rule, "estate", stack, o, ctx) for stack, o in pairs]


def judge_assets(rule: Rule, key: str, ctx: Context) -> list[Finding]:
    council = ctx.estate.councils[key].council
    return [finding(rule, "asset", key, o, ctx) for o in rule.assets(key, council, ctx)]


def judge_host(rule: Rule, facts: HostFacts, ctx: Context) -> list[Finding]:
    return [finding(rule, "host", facts.council, o, ctx) for o in rule.host(facts, ctx)]


def by_stack(resources: Iterable[CloudResource]) -> dict[str, list[CloudResource]]:
    groups: dict[str, list[CloudResource]] = defaultdict(list)
    for res in resources:
        groups[res.stack].append(res)
    return dict(groups)


def score(findings: Sequence[Finding]) -> tuple[float, dict[str, float], int, int]:
    """(score, score per area, units applicable, units passing). A unit is a rule in one area; it
    passes when every one of its findings passes (an exemption is not a pass: it is not converged)."""
    units: dict[tuple[str, str], bool] = {}
    for f in findings:
        key = (f.rule_id, f.area)
        units[key] = units.get(key, True) and f.status == "pass"
    areas: dict[str, list[bool]] = defaultdict(list)
    for (_, area), ok in units.items():
        areas[area].append(ok)
    total = len(units)
    passing = sum(units.values())
    overall = passing / total if total else 1.0
    return overall, {a: sum(v) / len(v) for a, v in sorted(areas.items())}, total, passing


def evaluate(
    estate: Estate,
    *,
    resources: Iterable[CloudResource] | None = None,
    hosts: Iterable[HostFacts] | None = None,
    councils: Sequence[str] | None = None,
    today: dt.date | None = None,
    rules: Iterable[str] | None = None,
    assets: bool = True,
    deployed: Collection[str] | None = None,
) -> Report:
    """Judge the asset registers (always, unless assets=False), cloud resources and host facts.

    councils: restrict to these council keys ("shared" for the hub); None means every council and
    the hub. rules: restrict to these rule ids (tests use this to judge one rule's fixtures).
    deployed: the URNs of the deployed state, which tells a new cloud resource from an existing one for a
    `mandatory_on_create` control (None: none is deployed, every cloud resource judged is new).
    """
    check_exemptions(estate)
    ctx = Context(estate, today or dt.date.today())
    ctx.notes[DEPLOYED] = None if deployed is None else frozenset(deployed)
    if councils is not None:
        for key in councils:
            if key != HUB:
                estate.council(key)  # raises EstateError for an unknown council
    wanted = set(councils) if councils is not None else {HUB, *estate.councils}
    selected = list(iter_rules(rules))
    findings: list[Finding] = []
    sources: list[str] = []
    judged: dict[str, set[str]] = defaultdict(set)  # council -> the planes judged for it (see judged_planes)

    if assets:
        sources.append("assets")
        for key in estate.councils:
            if key in wanted:
                judged[key].add("assets")
                for rule in selected:
                    if rule.implements("assets"):
                        findings.extend(judge_assets(rule, key, ctx))

    if resources is not None:
        sources.append("cloud")
        pool = list(resources)
        groups = by_stack(pool)
        for stack, group in groups.items():
            if stack not in wanted:
                continue
            judged[stack].add("cloud")
            for rule in selected:
                if rule.implements("resource"):
                    for res in group:
                        findings.extend(judge_resource(rule, res, ctx))
                findings.extend(judge_stack(rule, group, ctx))
        for rule in selected:
            findings.extend(f for f in judge_estate(rule, pool, ctx) if f.council in wanted)

    if hosts is not None:
        sources.append("hosts")
        hosts = list(hosts)
        judged_hosts: dict[str, set[str]] = defaultdict(set)
        for facts in hosts:
            judged_hosts[facts.council].add(facts.host)
        for key, rec in estate.councils.items():
            declared = {h.name for h in rec.hosts.hosts} if rec.hosts is not None else set()
            if key in wanted and declared and declared <= judged_hosts[key]:
                judged[key].add("hosts")
        for facts in hosts:
            if facts.council != HUB and facts.council not in estate.councils:
                raise EstateError.one("hosts", 0, "council", f"host {facts.host}: unknown council {facts.council!r}")
            if facts.council not in wanted:
                continue
            for rule in selected:
                if rule.implements("host"):
                    findings.extend(judge_host(rule, facts, ctx))

    grouped: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        grouped[f.council].append(f)
    notices = {key: exemption_notices(estate, key, grouped.get(key, []), judged[key], selected, ctx.today)
               for key in estate.councils if key in wanted}
    order = [k for k in estate.councils if k in grouped or notices.get(k)] + ([HUB] if HUB in grouped else [])
    results: dict[str, CouncilResult] = {}
    for key in order:
        items = sorted(grouped[key], key=lambda f: (f.rule_id, f.resource))
        overall, areas, total, passing = score(items)
        results[key] = CouncilResult(key, overall, items, areas, total, passing, notices.get(key, ()))
    return Report(estate.framework.version, ctx.today, tuple(sources), results)


def exemption_notices(estate: Estate, key: str, findings: Sequence[Finding], planes: set[str],
                      rules: Sequence[Rule], today: dt.date) -> tuple[Notice, ...]:
    """What the council's exemptions of the judged rules call for, each at its file and line: a warning for one
    that expires within EXPIRY_WARNING_DAYS of `today`; an error for one whose scope matches no resource its rule
    judged for the council, when every plane its rule judges was judged for the council (`planes`: "assets",
    "cloud" for its stack, "hosts" when facts of every host of its hosts.yml were judged). An exemption of a host
    rule in a run without host facts is not judged: it may well match a host."""
    rec = estate.councils[key]
    kinds = {rule.id: {PLANE[k] for k in rule.kinds()} for rule in rules}
    out: list[Notice] = []
    for i, ex in enumerate(rec.council.exemptions):
        if ex.rule not in kinds:
            continue
        line = rec.source.line(("exemptions", i))
        where = f"exemptions[{i}]: {ex.rule} for {ex.scope!r} (owner: {ex.owner}; approver: {ex.approver})"
        days = (ex.expires - today).days
        if 0 < days <= EXPIRY_WARNING_DAYS:
            out.append(Notice("warning", key, ex.rule, ex.scope, rec.source.file, line,
                              f"{where} expires on {ex.expires}, in {days} day{'s' if days != 1 else ''}: renew it "
                              f"under contract {ex.contract} or fix what it exempts"))
        if kinds[ex.rule] <= planes and not any(f.rule_id == ex.rule and covers(ex, f.resource) for f in findings):
            out.append(Notice("error", key, ex.rule, ex.scope, rec.source.file, line,
                              f"{where} matches nothing {ex.rule} judged for {key}: it hides no finding; remove it "
                              "or correct its scope"))
    return tuple(out)
