"""The rules as CrossGuard policies: what policies/__main__.py serves to the Pulumi engine.

Every rule that judges cloud resources becomes a ResourceValidationPolicy (one resource at a time) or a
StackValidationPolicy (the resources of one stack), named by its rule id, with the enforcement level
of its framework control, its severity, the framework and clause as compliance-framework metadata and
its fix as remediation steps. The validation calls the same engine functions as `estate check`, so a
policy reports a violation exactly when the engine's finding is `fail` or `expired`.

Config (per policy, `pulumi preview --policy-pack policies --policy-pack-config FILE`):
- `today`: judge exemption expiry as of this date (YYYY-MM-DD; default: the day of the run);
- `honourExemptions`: false reports exempt findings as violations too (an audit run).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from estate.compliance.engine import by_stack, judge_resource, judge_stack
from estate.compliance.findings import Finding
from estate.controls.base import Context, Resource, Rule, control_at, iter_rules, urn_stack
from estate.loader import Estate, load_estate

PACK_NAME = "shared-estate"
UNKNOWN = "[unknown]"  # a value that cannot be known during preview
CONFIG_SCHEMA: dict[str, dict[str, Any]] = {
    "today": {"type": "string", "format": "date",
              "description": "Judge exemption expiry as of this date (YYYY-MM-DD); default: the day of the run."},
    "honourExemptions": {"type": "boolean", "default": True,
                         "description": "Apply the councils' exemptions (false: report exempt findings too)."},
}


def plain(value: Any) -> Any:
    """pulumi-policy's unknown-checking proxies -> plain dicts and lists; unknowns become '[unknown]'."""
    from pulumi_policy.proxy import _is_unknown

    if isinstance(value, str):
        return UNKNOWN if _is_unknown(value) else value
    if isinstance(value, Mapping):
        try:
            target = value["__target"]
        except KeyError:
            target = value
        return {str(k): plain(target[k]) for k in target}
    if isinstance(value, Sequence):
        try:
            items = value["__target"]  # type: ignore[call-overload]
        except (KeyError, TypeError, IndexError):
            items = value
        return [plain(v) for v in items]
    return value


def options(config: Mapping[str, Any]) -> tuple[dt.date, bool]:
    raw = config.get("today")
    try:
        today = dt.date.fromisoformat(str(raw)) if raw else dt.date.today()
    except ValueError:
        today = dt.date.today()
    return today, bool(config.get("honourExemptions", True))


def violates(f: Finding, honour_exemptions: bool) -> bool:
    return f.failing or (f.status == "exempt" and not honour_exemptions)


def violation_message(f: Finding) -> str:
    return f"[{f.rule_id}] {f.message} Fix: {f.fix}"


def _resource_validator(rule: Rule, estate: Estate) -> Any:
    def validate(args: Any, report_violation: Any) -> None:
        today, honour = options(args.get_config())
        parent = getattr(getattr(args, "opts", None), "parent", None)
        res = Resource(urn=args.urn, type=args.resource_type, name=args.name, stack=urn_stack(args.urn),
                       parent=parent or None, inputs=plain(args.props))
        for f in judge_resource(rule, res, Context(estate, today)):
            if violates(f, honour):
                report_violation(violation_message(f), None)

    return validate


def _stack_validator(rule: Rule, estate: Estate) -> Any:
    def validate(args: Any, report_violation: Any) -> None:
        today, honour = options(args.get_config())
        resources = [Resource(urn=r.urn, type=r.resource_type, name=r.name, stack=urn_stack(r.urn),
                              parent=r.parent.urn if r.parent is not None else None, inputs=plain(r.props))
                     for r in args.resources]
        ctx = Context(estate, today)
        for group in by_stack(resources).values():
            for f in judge_stack(rule, group, ctx):
                if violates(f, honour):
                    report_violation(violation_message(f), f.resource)

    return validate


def policies(estate: Estate | None = None) -> list[Any]:
    """A policy per cloud rule, built from framework.yaml (the estate at $ESTATE_ROOT or above the cwd)."""
    from pulumi_policy import (
        EnforcementLevel,
        PolicyComplianceFramework,
        PolicyConfigSchema,
        ResourceValidationPolicy,
        Severity,
        StackValidationPolicy,
    )

    if estate is None:
        estate = load_estate()
    fw = estate.framework
    out: list[Any] = []
    for rule in iter_rules():
        control = control_at(fw, rule.control)
        # mandatory_on_create is advisory here: a policy sees a resource's type, URN and inputs, not whether the step
        # creates it (pulumi_policy's ResourceValidationArgs carries no operation), so it cannot fail only new
        # resources; `estate check --plan --state` is where a new one fails
        level = {"mandatory": EnforcementLevel.MANDATORY, "advisory": EnforcementLevel.ADVISORY,
                 "mandatory_on_create": EnforcementLevel.ADVISORY,
                 "disabled": EnforcementLevel.DISABLED}[control.enforcement]
        common: dict[str, Any] = {
            "description": f"{rule.title} (framework control {control.id}, {control.clause})",
            "enforcement_level": level,
            "config_schema": PolicyConfigSchema(properties=dict(CONFIG_SCHEMA)),
            "display_name": f"{rule.id}: {rule.title}",
            "severity": Severity(rule.severity),
            "framework": PolicyComplianceFramework(name=fw.name, version=fw.version, reference=control.id,
                                                   specification=control.clause),
            "tags": [rule.area, control.clause.split(":", 1)[0]],
            "remediation_steps": rule.remediation(fw),
        }
        if rule.implements("resource"):
            out.append(ResourceValidationPolicy(name=rule.id, validate=_resource_validator(rule, estate), **common))
        if rule.implements("stack"):
            name = f"{rule.id}-stack" if rule.implements("resource") else rule.id
            out.append(StackValidationPolicy(name=name, validate=_stack_validator(rule, estate), **common))
    return out
