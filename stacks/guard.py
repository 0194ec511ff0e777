"""The hub's hold on each spoke: an Azure Policy that denies any write which would take a spoke subnet off the
route table or NSG its council's stack gave it, or take the default route off the hub firewall, assigned by the
hub stack on each deployed spoke's network resource group.

A council's administrators have Contributor on that resource group (stacks/access.py). Contributor cannot delete
or change a policy assignment (its NotActions include Microsoft.Authorization/*/Delete and */Write:
learn.microsoft.com/azure/role-based-access-control/built-in-roles/privileged#contributor), so they keep
managing their spoke but cannot detach it from the hub's control. A deny policy refuses the create or update
request itself (learn.microsoft.com/azure/governance/policy/concepts/effect-deny); the definition's structure and
`count` over an array alias: learn.microsoft.com/azure/governance/policy/concepts/definition-structure-policy-rule.
The aliases used (learn.microsoft.com/azure/governance/policy/concepts/definition-structure-alias; `az provider
show --namespace Microsoft.Network --expand "resourceTypes/aliases"` lists them):
Microsoft.Network/virtualNetworks/subnets/routeTable.id, .../subnets/networkSecurityGroup.id, their array forms
under virtualNetworks/subnets[*] (a VNet written with its subnets inline), Microsoft.Network/routeTables/
routes[*].addressPrefix, .../routes[*].nextHopIpAddress, and Microsoft.Network/routeTables/routes/addressPrefix,
.../routes/nextHopIpAddress (a route written on its own).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_azure_native.authorization as authorization

from estate.azure import PLATFORM_SUBNETS

from .common import Env, child
from .props import HubProps, Spoke

POLICY_NAME = "spoke-stays-behind-hub"
DEFAULT_ROUTE = "0.0.0.0/0"
P_ROUTE_TABLE, P_NSGS, P_FIREWALL = "routeTableId", "networkSecurityGroupIds", "firewallIp"

_SUBNET = "Microsoft.Network/virtualNetworks/subnets"
_VNET = "Microsoft.Network/virtualNetworks"
_ROUTES = "Microsoft.Network/routeTables"


def _param(name: str) -> str:
    return f"[parameters('{name}')]"


def policy_rule() -> dict[str, Any]:
    """Deny: a subnet whose route table is not the spoke's or whose NSG is none of the spoke's (alone or inline in
    its VNet); a route table without the default route to the hub firewall; a default route elsewhere. A missing
    field compares as not equal, so removing the route table or NSG is denied too."""
    # Azure's platform subnets (gateway, firewall, Bastion) take no route table or NSG of ours
    not_platform = {"field": "name", "notIn": sorted(PLATFORM_SUBNETS)}
    off_route_table = {"field": f"{_SUBNET}/routeTable.id", "notEquals": _param(P_ROUTE_TABLE)}
    off_nsg = {"field": f"{_SUBNET}/networkSecurityGroup.id", "notIn": _param(P_NSGS)}
    inline_off = {"allOf": [
        {"field": f"{_SUBNET}[*].name", "notIn": sorted(PLATFORM_SUBNETS)},
        {"anyOf": [
            {"field": f"{_SUBNET}[*].routeTable.id", "notEquals": _param(P_ROUTE_TABLE)},
            {"field": f"{_SUBNET}[*].networkSecurityGroup.id", "notIn": _param(P_NSGS)},
        ]},
    ]}
    default_via_firewall = {"allOf": [
        {"field": f"{_ROUTES}/routes[*].addressPrefix", "equals": DEFAULT_ROUTE},
        {"field": f"{_ROUTES}/routes[*].nextHopIpAddress", "equals": _param(P_FIREWALL)},
    ]}
    return {
        "if": {"anyOf": [
            {"allOf": [{"field": "type", "equals": _SUBNET}, not_platform, {"anyOf": [off_route_table, off_nsg]}]},
            {"allOf": [{"field": "type", "equals": _VNET},
                       {"count": {"field": f"{_SUBNET}[*]", "where": inline_off}, "greater": 0}]},
            {"allOf": [{"field": "type", "equals": _ROUTES},
                       {"count": {"field": f"{_ROUTES}/routes[*]", "where": default_via_firewall}, "less": 1}]},
            {"allOf": [{"field": "type", "equals": f"{_ROUTES}/routes"},
                       {"field": f"{_ROUTES}/routes/addressPrefix", "equals": DEFAULT_ROUTE},
                       {"field": f"{_ROUTES}/routes/nextHopIpAddress", "notEquals": _param(P_FIREWALL)}]},
        ]},
        "then": {"effect": "deny"},
    }


def spoke_ids(env: Env, spoke: Spoke) -> tuple[pulumi.Output[str], pulumi.Output[str], pulumi.Output[list[str]]]:
    """The spoke's resource group, route table and NSG ids by the naming convention."""
    def rg(sub: str) -> str:
        return f"/subscriptions/{sub}/resourceGroups/{spoke.rg}"

    scope = env.subscription_id.apply(rg)
    route_table = env.subscription_id.apply(
        lambda sub: f"{rg(sub)}/providers/Microsoft.Network/routeTables/{spoke.route_table}")
    nsgs = env.subscription_id.apply(
        lambda sub: [f"{rg(sub)}/providers/Microsoft.Network/networkSecurityGroups/{n}" for n in spoke.nsgs])
    return scope, route_table, nsgs


class SpokeGuard(pulumi.ComponentResource):
    """One custom policy definition in the subscription; one deny assignment per deployed spoke, on its network
    resource group, with that spoke's route table, NSGs and the hub firewall's address."""

    def __init__(self, name: str, props: HubProps, env: Env, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("shared-estate:guard:SpokeGuard", name, None, opts)
        # the policy's own parameter names (free keys of a map of typed values)
        definitions = {
            P_ROUTE_TABLE: authorization.ParameterDefinitionsValueArgs(type="String"),
            P_NSGS: authorization.ParameterDefinitionsValueArgs(type="Array"),
            P_FIREWALL: authorization.ParameterDefinitionsValueArgs(type="String"),
        }
        self.definition = authorization.PolicyDefinition(
            POLICY_NAME,
            authorization.PolicyDefinitionArgs(
                policy_definition_name=POLICY_NAME,
                policy_type="Custom",
                mode="All",
                display_name="Council spokes keep the hub's route table, NSGs and default route",
                description="Denies taking a spoke subnet off its route table or NSG, and routing the spoke's "
                            "default route anywhere but the hub firewall (shared-estate hub stack).",
                parameters=definitions,
                policy_rule=policy_rule(),
            ),
            opts=child(self),
        )
        self.assignments: dict[str, authorization.PolicyAssignment] = {}
        for spoke in props.spokes:
            scope, route_table, nsgs = spoke_ids(env, spoke)
            values = {
                P_ROUTE_TABLE: authorization.ParameterValuesValueArgs(value=route_table),
                P_NSGS: authorization.ParameterValuesValueArgs(value=nsgs),
                P_FIREWALL: authorization.ParameterValuesValueArgs(value=props.firewall_ip),
            }
            self.assignments[spoke.key] = authorization.PolicyAssignment(
                f"pa-{spoke.key}-spoke-guard",
                authorization.PolicyAssignmentArgs(
                    policy_assignment_name=f"{spoke.key}-stays-behind-hub",
                    scope=scope,
                    policy_definition_id=self.definition.id,
                    enforcement_mode="Default",
                    display_name=f"{spoke.key}: subnets keep the hub's route table and NSGs",
                    parameters=values,
                    non_compliance_messages=[authorization.NonComplianceMessageArgs(
                        message="The consortium hub pins this spoke's route table, NSGs and default route; change "
                                "them through the council's stack, not by hand.")],
                ),
                opts=child(self),
            )
        self.register_outputs({"policyDefinitionId": self.definition.id})

