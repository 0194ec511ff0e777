"""Azure's contract for the offline plan: what ARM and the services would refuse, checked before deployment.

`check_plan(resources)` validates every planned azure-native resource against the ARM deployment schema of
its type and the api-version azure-native sends (vendored under schemas/, see SOURCE.md), then runs the
service rules a schema cannot express (rules.py), each citing its Microsoft Learn page. Each finding names
the resource, the property (a JSON path in the ARM request body), the rule and the source.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from estate.contract.findings import ContractFinding
from estate.contract.rules import RULES, PlanIndex, reference_time
from estate.contract.schema import schema_errors
from estate.contract.types import ARM_TYPES
from estate.plan import PlannedResource

__all__ = ["RULES", "ContractFinding", "check_plan", "reference_time"]

SCHEMA_RULE = "ARM-SCHEMA"
UNMAPPED_RULE = "ARM-TYPE-UNMAPPED"


def check_plan(resources: Sequence[PlannedResource], *, now: dt.datetime | None = None) -> list[ContractFinding]:
    """Every contract finding of a plan. `now`: the reference time for time windows (AVD registration
    tokens); default: the plan's own clock (`reference_time`)."""
    findings: list[ContractFinding] = []
    for res in resources:
        if not res.custom:
            continue
        arm = ARM_TYPES.get(res.type)
        if arm is None:
            findings.append(ContractFinding(UNMAPPED_RULE, res.urn, res.name, "$.type",
                                            f"{res.type} has no vendored ARM schema", "estate/contract/types.py"))
            continue
        for path, message, source in schema_errors(arm, res.inputs):
            findings.append(ContractFinding(SCHEMA_RULE, res.urn, res.name, path, message, source))
    index = PlanIndex(resources, now if now is not None else reference_time(resources))
    for rule in RULES:
        findings.extend(rule.check(index))
    return findings
