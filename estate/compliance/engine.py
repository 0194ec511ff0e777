"""The one rule engine: asset registers, cloud resources and host facts judged by the same rules,
exemptions applied, a convergence score per council."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from estate.compliance.findings import CouncilResult, Finding, Report, Status
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
)
from estate.controls.facts import HostFacts
from estate.errors import EstateError, describe, format_path
from estate.models import Exemption

if TYPE_CHECKING:
    from estate.loader import Estate


def exemption_for(ctx: Context, council: str, rule_id: str, resource: str) -> Exemption | None:
    """The first exemption of the council that names this rule and whose scope matches the resource
    (a glob, matched against the resource and, for a URN, its short name)."""
    record = ctx.estate.councils.get(council)
    if record is None:
        return None
    short = resource.rsplit("::", 1)[-1] if resource.startswith("urn:") else resource
    for ex in record.council.exemptions:
        if ex.rule == rule_id and (fnmatchcase(resource, ex.scope) or fnmatchcase(short, ex.scope)):
            return ex
    return None


def finding(rule: Rule, kind: str, council: str, outcome: Outcome, ctx: Context) -> Finding:
    """Turn a rule's outcome into a finding, applying the council's exemptions to a failure."""
    control = control_at(ctx.fw, rule.control)
    status: Status = "pass" if outcome.ok else "fail"
    message = outcome.message
    exemption = None
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
    return Finding(
        rule_id=rule.id, title=rule.title, severity=rule.severity,
        enforcement=control.enforcement, control=control.id, clause=control.clause,
        area=outcome.area or rule.area, council=council, kind=kind, resource=outcome.resource,
        status=status, message=message, fix=rule.remediation(ctx.fw), exemption=exemption,
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
) -> Report:
    """Judge the asset registers (always, unless assets=False), cloud resources and host facts.

    councils: restrict to these council keys ("shared" for the hub); None means every council and
    the hub. rules: restrict to these rule ids (tests use this to judge one rule's fixtures).
    """
    ctx = Context(estate, today or dt.date.today())
    if councils is not None:
        for key in councils:
            if key != HUB:
                estate.council(key)  # raises EstateError for an unknown council
    wanted = set(councils) if councils is not None else {HUB, *estate.councils}
    selected = list(iter_rules(rules))
    findings: list[Finding] = []
    sources: list[str] = []

    if assets:
        sources.append("assets")
        for key in estate.councils:
            if key in wanted:
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
            for rule in selected:
                if rule.implements("resource"):
                    for res in group:
                        findings.extend(judge_resource(rule, res, ctx))
                findings.extend(judge_stack(rule, group, ctx))
        for rule in selected:
            findings.extend(f for f in judge_estate(rule, pool, ctx) if f.council in wanted)

    if hosts is not None:
        sources.append("hosts")
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
    order = [k for k in estate.councils if k in grouped] + ([HUB] if HUB in grouped else [])
    results: dict[str, CouncilResult] = {}
    for key in order:
        items = sorted(grouped[key], key=lambda f: (f.rule_id, f.resource))
        overall, areas, total, passing = score(items)
        results[key] = CouncilResult(key, overall, items, areas, total, passing)
    return Report(estate.framework.version, ctx.today, tuple(sources), results)
