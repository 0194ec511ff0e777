"""2.1 Azure Virtual Desktop host pools follow the agreed pattern (framework.yaml `desktop.avd`).

Every council's desktops are pooled Azure Virtual Desktop sessions: breadth-first balanced, a desktop (not
RemoteApp) application group, a cap on sessions per host, hosts started on connect (with the AVD service
principal allowed to power them on), never a validation pool. Built by the desktop stack; judged on the planned or
deployed host pools (DSK-001, DSK-002, DSK-003) and, across a stack, on the role assignment start-on-connect needs
(DSK-013). No Ansible role enforces it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from estate.controls.base import CloudResource, Context, Outcome, Rule, failed, number, passed, rule
from estate.controls.spec import declare

HOST_POOL = "azure-native:desktopvirtualization:HostPool"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
# Azure's built-in Desktop Virtualization Power On Contributor (the same id in every tenant):
# https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/compute#desktop-virtualization-power-on-contributor
POWER_ON_CONTRIBUTOR = "489581de-a3bd-480d-9518-53dea7416b33"

CONTROL = declare()


@rule
class HostPoolPattern(Rule):
    id = "DSK-001"
    types = (HOST_POOL,)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        c = ctx.fw.desktop.avd
        got = (res.inputs.get("hostPoolType"), res.inputs.get("loadBalancerType"))
        if got == (c.host_pool_type, c.load_balancer_type):
            return [passed(res.urn, f"{res.name} is a {got[0]} pool balanced {got[1]}")]
        return [failed(res.urn, f"{res.name} is a {got[0]} pool balanced {got[1]}; the framework wants "
                                f"{c.host_pool_type} balanced {c.load_balancer_type}")]


@rule
class HostPoolSessions(Rule):
    id = "DSK-002"
    types = (HOST_POOL,)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        limit = ctx.fw.desktop.avd.max_sessions_per_host
        got = number(res, "maxSessionLimit")
        if got is not None and 1 <= got <= limit:
            return [passed(res.urn, f"{res.name} allows {got:g} sessions per host (limit {limit})")]
        return [failed(res.urn, f"{res.name} allows {got!r} sessions per host; the limit is {limit}")]


@rule
class HostPoolSettings(Rule):
    id = "DSK-003"
    types = (HOST_POOL,)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        c = ctx.fw.desktop.avd
        wanted = {"preferredAppGroupType": c.preferred_app_group_type,
                  "startVMOnConnect": c.start_vm_on_connect,
                  "validationEnvironment": c.validation_environment}
        defaults = {"startVMOnConnect": False, "validationEnvironment": False}
        wrong = [f"{k}={res.inputs.get(k, defaults.get(k))!r} (want {v!r})" for k, v in wanted.items()
                 if res.inputs.get(k, defaults.get(k)) != v]
        if wrong:
            return [failed(res.urn, f"{res.name}: " + ", ".join(wrong))]
        return [passed(res.urn, f"{res.name} publishes {c.preferred_app_group_type} and starts hosts on connect")]


@rule
class StartVmOnConnectRole(Rule):
    id = "DSK-013"
    fix = ("Assign Desktop Virtualization Power On Contributor ({POWER_ON_CONTRIBUTOR}) to the Azure Virtual "
           "Desktop service principal (principalType ServicePrincipal) over the session hosts; without it "
           "startVMOnConnect ({c.start_vm_on_connect}) starts nothing.").replace("{POWER_ON_CONTRIBUTOR}",
                                                                                POWER_ON_CONTRIBUTOR)

    def stack(self, resources: Sequence[CloudResource], ctx: Context) -> Iterable[Outcome]:
        grants = [r for r in resources if r.type == ROLE_ASSIGNMENT
                  and str(r.inputs.get("roleDefinitionId", "")).endswith(f"/{POWER_ON_CONTRIBUTOR}")
                  and str(r.inputs.get("principalType", "")) == "ServicePrincipal"]
        for pool in (r for r in resources if r.type == HOST_POOL and r.inputs.get("startVMOnConnect") is True):
            if grants:
                yield passed(pool.urn, f"{pool.name} starts VMs on connect and {grants[0].name} lets AVD power "
                                       "them on")
            else:
                yield failed(pool.urn, f"{pool.name} starts VMs on connect, but no role assignment lets the AVD "
                                       "service principal power them on")
