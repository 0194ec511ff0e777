"""The Pulumi program as a library: `run(estate, stack)` declares one stack's resources and returns its outputs.

Stack `shared` is the consortium hub; any other stack is the council of that name. A council's stack finds the
hub through a StackReference to `shared` (its VNet, firewall address, Log Analytics workspace, DNS zones).
The Pulumi CLI runs it through `stacks/__main__.py`; `estate plan` runs it in process under the SDK's mocks.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pulumi

from estate.loader import Estate

from .access import Access
from .common import Env
from .datacentre import CouncilDataCentre, HubDataCentre
from .desktop import Desktop
from .helpdesk import Helpdesk
from .network import HubNetwork, HubRef, SpokeNetwork
from .props import (
    CFG_ADMIN_GROUP,
    CFG_ADMIN_GROUP_NAME,
    CFG_AVD_SERVICE_PRINCIPAL,
    CFG_COUNCIL,
    CFG_HUB_STACK,
    CFG_KEY_VAULT_GENERATION,
    CFG_REGISTRATION_EXPIRY,
    CFG_SESSION_PASSWORD,
    CFG_SSH_KEY,
    CFG_USERS_GROUP,
    HUB,
    CouncilProps,
    HubProps,
    StackConfig,
    build,
)

# An AVD registration token lives at most 30 days; a deployment asks for one valid this long.
REGISTRATION_DAYS = 27


def read_config(stack: str, *, now: dt.datetime | None = None) -> StackConfig:
    """The stack's config from Pulumi (`Pulumi.<stack>.yaml` and `pulumi config set`). With `now`, a missing
    registration expiry defaults to `now` + 27 days."""
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
        session_host_password=project.get_secret(CFG_SESSION_PASSWORD),
        registration_expiry=expiry,
        key_vault_generation=project.get(CFG_KEY_VAULT_GENERATION),
    )


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
    net = HubNetwork(f"{c.key}-network", props, workspace_id=dc.workspace.id)
    dc.link(net.vnet.id)
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
