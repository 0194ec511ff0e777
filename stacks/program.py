"""The Pulumi program as a library: `run(estate, stack)` declares one stack's resources and returns its outputs.

Stack `shared` is the consortium hub; any other stack is the council of that name. A council's stack finds the
hub through a StackReference to `shared` (its VNet, firewall address, Log Analytics workspace, DNS zones).
The Pulumi CLI runs it through `stacks/__main__.py`; `estate plan` runs it in process under the SDK's mocks.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pulumi

from estate import stackfile
from estate.errors import EstateError, Problem
from estate.loader import Estate
from estate.stackfile import (
    CFG_ADMIN_GROUP,
    CFG_ADMIN_GROUP_NAME,
    CFG_AVD_SERVICE_PRINCIPAL,
    CFG_COUNCIL,
    CFG_HUB_STACK,
    CFG_KEY_VAULT_GENERATION,
    CFG_REGISTRATION_EXPIRY,
    CFG_SPOKES,
    CFG_SSH_KEY,
    CFG_USERS_GROUP,
)

from .access import Access
from .common import Env
from .datacentre import CouncilDataCentre, HubDataCentre
from .desktop import Desktop
from .guard import SpokeGuard
from .helpdesk import Helpdesk
from .network import HubNetwork, HubRef, SpokeNetwork
from .props import HUB, PROJECT, CouncilProps, HubProps, StackConfig, build

# An AVD registration token lives at most 30 days; a deployment asks for one valid this long.
REGISTRATION_DAYS = 27


def read_config(stack: str, *, now: dt.datetime | None = None) -> StackConfig:
    """The stack's config from Pulumi (`Pulumi.<stack>.yaml` and `pulumi config set`), checked first: a key the
    stacks do not read, or a secret one given in clear text, is an error (estate.stackfile). With `now`, a missing
    registration expiry defaults to `now` + 27 days."""
    check_config(stack)
    project = pulumi.Config()
    expiry = project.get(CFG_REGISTRATION_EXPIRY)
    if expiry is None and now is not None:
        expiry = (now.astimezone(dt.UTC) + dt.timedelta(days=REGISTRATION_DAYS)).strftime("%Y-%m-%dT%H:00:00Z")
    return StackConfig(
        stack=stack,
        location=pulumi.Config("azure-native").get("location"),
        council=project.get(CFG_COUNCIL),
        hub_stack=project.get(CFG_HUB_STACK) or f"{pulumi.get_organization()}/{pulumi.get_project()}/{HUB}",
        admin_group=project.get(CFG_ADMIN_GROUP),
        admin_group_name=project.get(CFG_ADMIN_GROUP_NAME),
        desktop_users_group=project.get(CFG_USERS_GROUP),
        avd_service_principal=project.get(CFG_AVD_SERVICE_PRINCIPAL),
        ssh_public_key=project.get(CFG_SSH_KEY),
        registration_expiry=expiry,
        key_vault_generation=project.get(CFG_KEY_VAULT_GENERATION),
        spokes=_spokes(stack),
    )


def check_config(stack: str) -> None:
    """Every config key Pulumi hands this program (the stack file and `pulumi config set`) is one the stacks read,
    and a secret one arrives as a secret: one line per problem, naming the stack file."""
    from pulumi.runtime import config as runtime

    project = pulumi.get_project()
    keys = sorted({*runtime.CONFIG.get(), *runtime.get_config_env()})
    problems = []
    for key in keys:
        wrong = stackfile.key_problem(key, stack, project)
        if wrong is None and stackfile.is_secret(key, project) and not runtime.is_config_secret(key):
            wrong = stackfile.clear_text_secret(key.partition(":")[2])
        if wrong:
            problems.append(Problem(f"Pulumi.{stack}.yaml", 0, key, wrong))
    if problems:
        raise EstateError(problems)


def _spokes(stack: str) -> tuple[str, ...] | None:
    if stack != HUB:
        return None
    try:
        value = pulumi.Config().get_object(CFG_SPOKES)
    except pulumi.ConfigTypeError:  # not JSON
        value = "?"
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise EstateError.one(f"Pulumi.{stack}.yaml", 0, f"{PROJECT}:{CFG_SPOKES}", "expected a list of council "
                              f"keys (pulumi config set --path '{CFG_SPOKES}[0]' <council>)")
    return tuple(value)


def run(estate: Estate, stack: str, config: StackConfig | None = None) -> dict[str, Any]:
    """Declare stack `stack`. Props are built and validated first: bad input raises EstateError before any
    resource exists."""
    props = build(estate, stack, config if config is not None else read_config(stack))
    env = Env.current()
    if isinstance(props, HubProps):
        return _hub(props, env)
    return _council(props, env)


def _hub(props: HubProps, env: Env) -> dict[str, Any]:
    c = props.common
    dc = HubDataCentre(f"{c.key}-datacentre", props)
    net = HubNetwork(f"{c.key}-network", props, env, workspace_id=dc.workspace.id)
    dc.link(net.vnet.id)
    dc.link_spokes(env, props.spokes)
    SpokeGuard(f"{c.key}-spoke-guard", props, env)
    helpdesk = Helpdesk(f"{c.key}-helpdesk", props, env, net, dc)
    Access(f"{c.key}-access", c, env, {"network": net.rg, "datacentre": dc.rg, "helpdesk": helpdesk.rg})
    return {
        "hubResourceGroupName": net.rg.name,
        "hubVnetName": net.vnet.name,
        "hubVnetId": net.vnet.id,
        "firewallPrivateIp": props.firewall_ip,
        "logAnalyticsWorkspaceId": dc.workspace.id,
        "dnsResourceGroupName": dc.rg.name,
        "privateDnsZoneIds": dc.zone_ids(),
        "flowLogTargets": dc.flow_log_targets(),  # council stacks: their VNets' flow logs (storage, workspace)
    }


def _council(props: CouncilProps, env: Env) -> dict[str, Any]:
    c = props.common
    hub = HubRef.of(pulumi.StackReference(props.hub_stack))
    spoke = SpokeNetwork(f"{c.key}-network", props, hub)
    dc = CouncilDataCentre(f"{c.key}-datacentre", props, env, hub, spoke)
    desktop = Desktop(f"{c.key}-desktop", props, env, hub, spoke)
    Access(f"{c.key}-access", c, env, {"network": spoke.rg, "datacentre": dc.rg, "desktop": desktop.rg},
           key_vault_id=dc.key_vault.id)
    return {
        "spokeVnetId": spoke.vnet.id,
        "keyVaultName": dc.key_vault.name,
        "hostPoolName": desktop.host_pool.name,
        "sessionHosts": props.desktop.session_hosts,
    }
