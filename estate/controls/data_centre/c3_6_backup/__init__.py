"""3.6 Servers are backed up by the agreed policy (framework.yaml `data_centre.backup`).

Cloud-only: the stacks give each council a Recovery Services vault with the framework's VM backup policy and
protect every server VM with it. Judged on the asset register's servers (DCN-006), on the planned or deployed VM
backup policies' schedule and retention (DCN-007), and on the policy type protecting Trusted Launch VMs
(DCN-014).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from estate.controls.azure import VM
from estate.controls.base import (
    CloudResource,
    Context,
    Outcome,
    Rule,
    failed,
    get,
    items,
    mapping,
    number,
    passed,
    rule,
    text,
)
from estate.controls.checks import AssetCheck
from estate.controls.data_centre.common import trusted_launch, verdict
from estate.controls.spec import declare

CONTROL = declare()

PROTECTION_POLICY = "azure-native:recoveryservices:ProtectionPolicy"
PROTECTED_ITEM = "azure-native:recoveryservices:ProtectedItem"


@rule
class ServersBackedUp(AssetCheck):
    id = "DCN-006"

    def holds(self, asset: Any, ctx: Context) -> bool:
        return bool(asset.backed_up)


@rule
class BackupPolicy(Rule):
    id = "DCN-007"
    types = (PROTECTION_POLICY,)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        props = mapping(res, "properties")
        if props.get("backupManagementType") != "AzureIaasVM":
            return []
        c = ctx.fw.data_centre.backup
        wrong = []
        freq = get(props, "schedulePolicy.scheduleRunFrequency")
        if freq != c.frequency:
            wrong.append(f"runs {freq!r}, not {c.frequency}")
        times = run_times(props)
        when = _time_of_day(times[0]) if times else None
        if when != c.time:
            wrong.append(f"starts at {when!r}, not {c.time}")
        for kind, unit, least in (("daily", "Days", c.retention_days), ("weekly", "Weeks", c.weekly_retention_weeks)):
            path = f"properties.retentionPolicy.{kind}Schedule.retentionDuration"
            count = number(res, f"{path}.count")
            if text(res, f"{path}.durationType") != unit or (count or 0) < least:
                wrong.append(f"keeps {kind} points {get(res.inputs, path + '.count')!r} "
                             f"{get(res.inputs, path + '.durationType')}, not {least} {unit}")
        return [verdict(res, wrong, f"{res.name} runs {c.frequency} at {c.time}, keeps {c.retention_days} days")]


def run_times(props: Mapping[str, Any]) -> list[Any]:
    """A VM policy's run times: a Standard (V1) schedule has them in scheduleRunTimes, an Enhanced (V2) one in
    its dailySchedule or weeklySchedule."""
    schedule = mapping(props, "schedulePolicy", "properties")
    where = "properties.schedulePolicy"
    if schedule.get("schedulePolicyType") == "SimpleSchedulePolicyV2":
        for key in ("dailySchedule", "weeklySchedule", "hourlySchedule"):
            times = items(schedule, f"{key}.scheduleRunTimes", where)
            if times:
                return times
        start = get(schedule, "hourlySchedule.scheduleWindowStartTime")
        return [start] if start else []
    return items(schedule, "scheduleRunTimes", where)


def _time_of_day(value: object) -> str | None:
    """'2026-01-01T01:00:00Z' -> '01:00'."""
    try:
        stamp = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp.strftime("%H:%M")


def _last(resource_id: object, after: str | None = None) -> str:
    """The last segment of an ARM id, or the segment that follows `after` (e.g. "vaults")."""
    parts = str(resource_id or "").strip("/").split("/")
    if after is None:
        return parts[-1] if parts else ""
    lowered = [p.lower() for p in parts]
    return parts[lowered.index(after) + 1] if after in lowered and lowered.index(after) + 1 < len(parts) else ""


@rule
class TrustedLaunchBackupPolicy(Rule):
    id = "DCN-014"

    def stack(self, resources: Sequence[CloudResource], ctx: Context) -> Iterable[Outcome]:
        vms = {str(r.inputs.get("vmName") or r.name): r for r in resources if r.type == VM and trusted_launch(r)}
        policies = {(str(r.inputs.get("vaultName", "")), str(r.inputs.get("policyName") or r.name)): r
                    for r in resources if r.type == PROTECTION_POLICY}
        for item in (r for r in resources if r.type == PROTECTED_ITEM):
            props = mapping(item, "properties")
            vm = vms.get(_last(props.get("sourceResourceId")))
            if vm is None:
                continue
            policy_id = props.get("policyId")
            policy = policies.get((_last(policy_id, "vaults") or str(item.inputs.get("vaultName", "")),
                                   _last(policy_id)))
            if policy is None:
                yield failed(vm.urn, f"{vm.name} is protected by {item.name} under policy {policy_id!r}, "
                                     "which is no policy of this stack (its type cannot be judged)")
                continue
            kind = get(policy.inputs, "properties.policyType")
            schedule = get(policy.inputs, "properties.schedulePolicy.schedulePolicyType")
            if kind == "V2" and schedule == "SimpleSchedulePolicyV2":
                yield passed(vm.urn, f"Trusted Launch VM {vm.name} is protected by Enhanced policy {policy.name}")
            else:
                yield failed(vm.urn, f"Trusted Launch VM {vm.name} is protected by {policy.name}, a "
                                     f"{kind or 'Standard'} policy ({schedule}): Azure Backup refuses it")
