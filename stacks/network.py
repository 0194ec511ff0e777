"""Network: the hub VNet with Azure Firewall and Bastion, each council's spoke, NSGs from the flow matrix,
route tables through the hub firewall, and hub<->spoke peerings (each stack owns the side in its own VNet)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.network as network
import pulumi_azure_native.resources as resources

from estate.azure import BASTION_SUBNET, FIREWALL_SUBNET

from .common import Env, child, diagnostics, resource_group
from .flows import ANY, ApplicationRule, FirewallRule, RuleSpec
from .props import Common, CouncilProps, HubProps, Spoke, nsg_name, route_table_name, vnet_name

SERVICE = "network"
# The hub firewall policy's rule collection groups and collections (Azure: priorities 100-65000, lower first).
FLOW_MATRIX_GROUP, FLOW_MATRIX_GROUP_PRIORITY = "flow-matrix", 200
EGRESS_GROUP, EGRESS_GROUP_PRIORITY = "egress", 300
INTER_COUNCIL_PRIORITY = 100
EGRESS_NETWORK_PRIORITY = 100  # network rules (TCP/UDP: KMS...) of framework.yaml network.egress
EGRESS_APPLICATION_PRIORITY = 200  # application rules (HTTP/S to FQDNs and FQDN tags)


def security_rule(rule: RuleSpec) -> network.SecurityRuleArgs:
    """One NSG rule: single prefixes go in the singular fields, several in the plural ones (Azure takes one)."""
    one_source, one_dest = len(rule.sources) == 1, len(rule.destinations) == 1
    any_port = rule.ports == (ANY,)
    return network.SecurityRuleArgs(
        name=rule.name,
        priority=rule.priority,
        direction=rule.direction,
        access=rule.access,
        protocol=rule.protocol,
        description=rule.description,
        source_port_range=ANY,
        source_address_prefix=rule.sources[0] if one_source else None,
        source_address_prefixes=None if one_source else list(rule.sources),
        destination_address_prefix=rule.destinations[0] if one_dest else None,
        destination_address_prefixes=None if one_dest else list(rule.destinations),
        destination_port_range=ANY if any_port else None,
        destination_port_ranges=None if any_port else list(rule.ports),
    )


class _Segments:
    """A VNet's subnets, each with its NSG (rules from the matrix; on AzureBastionSubnet the rules Bastion needs) and,
    but for Azure's platform subnets, the route table, plus diagnostics."""

    def __init__(self, owner: pulumi.ComponentResource, common: Common, rg: resources.ResourceGroup,
                 vnet: network.VirtualNetwork, route_table: network.RouteTable,
                 workspace_id: pulumi.Input[str]) -> None:
        self.ids: dict[str, pulumi.Output[str]] = {}
        self.nsgs: dict[str, network.NetworkSecurityGroup] = {}
        previous: network.Subnet | None = None
        for spec in common.subnets:
            nsg = None
            if spec.nsg:
                nsg = network.NetworkSecurityGroup(
                    nsg_name(common.key, spec.segment),
                    network.NetworkSecurityGroupInitArgs(
                        network_security_group_name=nsg_name(common.key, spec.segment),
                        resource_group_name=rg.name,
                        location=common.location,
                        security_rules=[security_rule(r) for r in spec.rules],
                        tags=common.tags(SERVICE),
                    ),
                    opts=child(owner),
                )
                self.nsgs[spec.segment] = nsg
                diagnostics(f"diag-nsg-{common.key}-{spec.segment}", resource_uri=nsg.id, workspace_id=workspace_id,
                            parent=owner, metrics=False)
            # Subnets of one VNet are created one after another: Azure refuses concurrent subnet writes.
            subnet = network.Subnet(
                f"snet-{common.key}-{spec.segment}",
                network.SubnetInitArgs(
                    subnet_name=spec.name,
                    virtual_network_name=vnet.name,
                    resource_group_name=rg.name,
                    address_prefix=spec.prefix,
                    network_security_group=network.NetworkSecurityGroupArgs(id=nsg.id) if nsg else None,
                    route_table=None if spec.platform else network.RouteTableArgs(id=route_table.id),
                    default_outbound_access=None if spec.platform else False,
                ),
                opts=child(owner, [previous] if previous else None),
            )
            previous = subnet
            self.ids[spec.segment] = subnet.id


def _vnet(common: Common, rg: resources.ResourceGroup, owner: pulumi.Resource) -> network.VirtualNetwork:
    return network.VirtualNetwork(
        vnet_name(common.key),
        network.VirtualNetworkInitArgs(
            virtual_network_name=vnet_name(common.key),
            resource_group_name=rg.name,
            location=common.location,
            address_space=network.AddressSpaceArgs(address_prefixes=[common.block]),
            tags=common.tags(SERVICE),
        ),
        opts=child(owner),
    )


def _route_table(common: Common, rg: resources.ResourceGroup, routes: list[network.RouteArgs],
                 owner: pulumi.Resource) -> network.RouteTable:
    return network.RouteTable(
        route_table_name(common.key),
        network.RouteTableInitArgs(
            route_table_name=route_table_name(common.key),
            resource_group_name=rg.name,
            location=common.location,
            disable_bgp_route_propagation=True,  # nothing learnt over the gateway bypasses the firewall
            routes=routes,
            tags=common.tags(SERVICE),
        ),
        opts=child(owner),
    )


def _via_firewall(name: str, prefix: str, firewall_ip: pulumi.Input[str]) -> network.RouteArgs:
    return network.RouteArgs(name=name, address_prefix=prefix, next_hop_type="VirtualAppliance",
                             next_hop_ip_address=firewall_ip)


def _public_ip(common: Common, name: str, rg: resources.ResourceGroup, owner: pulumi.Resource,
               ) -> network.PublicIPAddress:
    return network.PublicIPAddress(
        name,
        network.PublicIPAddressInitArgs(
            public_ip_address_name=name,
            resource_group_name=rg.name,
            location=common.location,
            sku=network.PublicIPAddressSkuArgs(name="Standard", tier="Regional"),  # Firewall and Bastion need it
            public_ip_allocation_method="Static",
            tags=common.tags(SERVICE),
        ),
        opts=child(owner),
    )


class HubNetwork(pulumi.ComponentResource):
    """The consortium hub: VNet with the hub segments from IPAM, Azure Firewall with a policy from the flow
    matrix, Bastion, NSGs on the hub's own segments and a route table sending their egress to the firewall."""

    def __init__(self, name: str, props: HubProps, env: Env, *, workspace_id: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("shared-estate:network:Hub", name, None, opts)
        c = props.common
        self.rg = resource_group(c, SERVICE, self)
        self.vnet = _vnet(c, self.rg, self)
        diagnostics(f"diag-vnet-{c.key}", resource_uri=self.vnet.id, workspace_id=workspace_id, parent=self)
        route_table = _route_table(c, self.rg, [_via_firewall("default-via-firewall", "0.0.0.0/0", props.firewall_ip)],
                                   self)
        self.segments = _Segments(self, c, self.rg, self.vnet, route_table, workspace_id)
        by_name = {s.name: s.segment for s in c.subnets}

        policy = network.FirewallPolicy(
            f"afwp-{c.key}",
            network.FirewallPolicyArgs(
                firewall_policy_name=f"afwp-{c.key}",
                resource_group_name=self.rg.name,
                location=c.location,
                sku=network.FirewallPolicySkuArgs(tier=props.firewall_sku),
                threat_intel_mode="Deny",
                # Network rules with FQDNs (destinationFqdns) need the policy's DNS proxy: the firewall resolves
                # the names itself (learn.microsoft.com/azure/firewall/fqdn-filtering-network-rules).
                dns_settings=network.DnsSettingsArgs(enable_proxy=True) if props.egress.dns_proxy else None,
                tags=c.tags(SERVICE),
            ),
            opts=child(self),
        )
        # One group after another: Azure refuses concurrent writes to the rule collection groups of one policy.
        waits: list[pulumi.Resource] = []
        for group, priority, collections in (
                (FLOW_MATRIX_GROUP, FLOW_MATRIX_GROUP_PRIORITY, self._flow_collections(props)),
                (EGRESS_GROUP, EGRESS_GROUP_PRIORITY, self._egress_collections(props))):
            if not collections:
                continue
            waits.append(network.FirewallPolicyRuleCollectionGroup(
                f"afwp-{c.key}-{group}",
                network.FirewallPolicyRuleCollectionGroupArgs(
                    rule_collection_group_name=group,
                    firewall_policy_name=policy.name,
                    resource_group_name=self.rg.name,
                    priority=priority,
                    rule_collections=collections,
                ),
                opts=child(self, waits[-1:] or None),
            ))
        firewall_pip = _public_ip(c, f"pip-afw-{c.key}", self.rg, self)
        self.firewall = network.AzureFirewall(
            f"afw-{c.key}",
            network.AzureFirewallArgs(
                azure_firewall_name=f"afw-{c.key}",
                resource_group_name=self.rg.name,
                location=c.location,
                sku=network.AzureFirewallSkuArgs(name="AZFW_VNet", tier=props.firewall_sku),
                firewall_policy=network.SubResourceArgs(id=policy.id),
                ip_configurations=[network.AzureFirewallIPConfigurationArgs(
                    name="ipconfig1",
                    subnet=network.SubResourceArgs(id=self.segments.ids[by_name[FIREWALL_SUBNET]]),
                    public_ip_address=network.SubResourceArgs(id=firewall_pip.id),
                )],
                tags=c.tags(SERVICE),
            ),
            opts=child(self, waits),
        )
        diagnostics(f"diag-afw-{c.key}", resource_uri=self.firewall.id, workspace_id=workspace_id, parent=self,
                    dedicated=True)
        bastion_pip = _public_ip(c, f"pip-bas-{c.key}", self.rg, self)
        bastion = network.BastionHost(
            f"bas-{c.key}",
            network.BastionHostArgs(
                bastion_host_name=f"bas-{c.key}",
                resource_group_name=self.rg.name,
                location=c.location,
                sku=network.SkuArgs(name=props.bastion_sku),
                ip_configurations=[network.BastionHostIPConfigurationArgs(
                    name="ipconfig1",
                    subnet=network.SubResourceArgs(id=self.segments.ids[by_name[BASTION_SUBNET]]),
                    public_ip_address=network.SubResourceArgs(id=bastion_pip.id),
                )],
                tags=c.tags(SERVICE),
            ),
            opts=child(self),
        )
        diagnostics(f"diag-bas-{c.key}", resource_uri=bastion.id, workspace_id=workspace_id, parent=self)
        # The hub's side of each deployed spoke's peering. It lives here, not in the council's stack, so a council
        # is deployed with no rights in the hub's resource groups (README, "Deployer rights").
        for spoke in props.spokes:
            peering(f"peer-hub-to-{spoke.key}", f"to-{spoke.key}", vnet_name=self.vnet.name, rg_name=self.rg.name,
                    remote_id=spoke_vnet_id(env, spoke), parent=self)
        self.register_outputs({"vnetId": self.vnet.id})

    @staticmethod
    def _flow_collections(props: HubProps) -> list[network.FirewallPolicyFilterRuleCollectionArgs]:
        """The flow matrix's `inter` flows: council to council through the firewall."""
        if not props.firewall_rules:
            return []
        return [_collection("inter-council-flows", INTER_COUNCIL_PRIORITY,
                            [_network_rule(r) for r in props.firewall_rules])]

    @staticmethod
    def _egress_collections(props: HubProps) -> list[network.FirewallPolicyFilterRuleCollectionArgs]:
        """framework.yaml network.egress: what may leave the estate, from where (a collection holds one rule type)."""
        out: list[network.FirewallPolicyFilterRuleCollectionArgs] = []
        if props.egress.network:
            out.append(_collection("egress-network", EGRESS_NETWORK_PRIORITY,
                                   [_network_rule(r) for r in props.egress.network]))
        if props.egress.application:
            out.append(_collection("egress-application", EGRESS_APPLICATION_PRIORITY,
                                   [_application_rule(r) for r in props.egress.application]))
        return out


def _collection(name: str, priority: int, rules: list[network.NetworkRuleArgs] | list[network.ApplicationRuleArgs],
                ) -> network.FirewallPolicyFilterRuleCollectionArgs:
    return network.FirewallPolicyFilterRuleCollectionArgs(
        rule_collection_type="FirewallPolicyFilterRuleCollection",
        name=name,
        priority=priority,
        action=network.FirewallPolicyFilterRuleCollectionActionArgs(type="Allow"),
        rules=list(rules),
    )


def _network_rule(r: FirewallRule) -> network.NetworkRuleArgs:
    return network.NetworkRuleArgs(
        rule_type="NetworkRule",
        name=r.name,
        description=r.description,
        ip_protocols=[r.protocol],
        source_addresses=list(r.sources),
        destination_addresses=list(r.destinations) or None,
        destination_fqdns=list(r.fqdns) or None,
        destination_ports=list(r.ports),
    )


def _application_rule(r: ApplicationRule) -> network.ApplicationRuleArgs:
    return network.ApplicationRuleArgs(
        rule_type="ApplicationRule",
        name=r.name,
        description=r.description,
        source_addresses=list(r.sources),
        protocols=[network.FirewallPolicyRuleApplicationProtocolArgs(protocol_type=kind, port=port)
                   for kind, port in r.protocols],
        target_fqdns=list(r.fqdns) or None,
        fqdn_tags=list(r.fqdn_tags) or None,
    )


def spoke_vnet_id(env: Env, spoke: Spoke) -> pulumi.Output[str]:
    """A council's spoke VNet by the naming convention, in the hub's subscription: the hub needs no
    StackReference to the council (which would be a cycle: the council reads the hub's)."""
    return env.subscription_id.apply(lambda sub: f"/subscriptions/{sub}/resourceGroups/{spoke.rg}/providers/"
                                                 f"Microsoft.Network/virtualNetworks/{spoke.vnet}")


def peering(name: str, peering_name: str, *, vnet_name: pulumi.Input[str], rg_name: pulumi.Input[str],
            remote_id: pulumi.Input[str], parent: pulumi.Resource) -> network.VirtualNetworkPeering:
    """One side of a hub<->spoke peering. Azure connects a peering once both sides exist: the first side created
    stays `Initiated` until the other is created, then both are `Connected`; the remote VNet must exist when a side
    is created (learn.microsoft.com/azure/virtual-network/virtual-network-manage-peering)."""
    return network.VirtualNetworkPeering(
        name,
        network.VirtualNetworkPeeringInitArgs(
            virtual_network_peering_name=peering_name,
            virtual_network_name=vnet_name,
            resource_group_name=rg_name,
            remote_virtual_network=network.SubResourceArgs(id=remote_id),
            allow_virtual_network_access=True,
            allow_forwarded_traffic=True,
            allow_gateway_transit=False,
            use_remote_gateways=False,
        ),
        opts=child(parent),
    )


@dataclass(frozen=True)
class HubRef:
    """The hub's outputs, as a council stack reads them through its StackReference to `shared`."""

    rg_name: pulumi.Output[str]
    vnet_name: pulumi.Output[str]
    vnet_id: pulumi.Output[str]
    firewall_ip: pulumi.Output[str]
    workspace_id: pulumi.Output[str]
    dns_rg_name: pulumi.Output[str]
    zone_ids: pulumi.Output[dict[str, str]]
    flow_log_targets: pulumi.Output[dict[str, str]]  # storageId, workspaceId, workspaceGuid, workspaceRegion

    @classmethod
    def of(cls, ref: pulumi.StackReference) -> HubRef:
        return cls(
            rg_name=ref.require_output("hubResourceGroupName"),
            vnet_name=ref.require_output("hubVnetName"),
            vnet_id=ref.require_output("hubVnetId"),
            firewall_ip=ref.require_output("firewallPrivateIp"),
            workspace_id=ref.require_output("logAnalyticsWorkspaceId"),
            dns_rg_name=ref.require_output("dnsResourceGroupName"),
            zone_ids=ref.require_output("privateDnsZoneIds"),
            flow_log_targets=ref.require_output("flowLogTargets"),
        )

    def zone_id(self, zone: str) -> pulumi.Output[str]:
        return self.zone_ids.apply(lambda ids: ids[zone])


class SpokeNetwork(pulumi.ComponentResource):
    """A council's spoke: one subnet per VLAN from IPAM, an NSG per subnet from the flow matrix, a route table
    sending egress and other councils' traffic through the hub firewall, and its side of the peering with the
    hub (the hub stack owns the other side)."""

    def __init__(self, name: str, props: CouncilProps, hub: HubRef,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("shared-estate:network:Spoke", name, None, opts)
        c = props.common
        self.rg = resource_group(c, SERVICE, self)
        self.vnet = _vnet(c, self.rg, self)
        diagnostics(f"diag-vnet-{c.key}", resource_uri=self.vnet.id, workspace_id=hub.workspace_id, parent=self)
        route_table = _route_table(c, self.rg, [
            _via_firewall("default-via-hub-firewall", "0.0.0.0/0", hub.firewall_ip),
            _via_firewall("consortium-via-hub-firewall", c.supernet, hub.firewall_ip),
        ], self)
        self.segments = _Segments(self, c, self.rg, self.vnet, route_table, hub.workspace_id)
        # This council's side of its peering with the hub. The hub's side belongs to the hub stack (config `spokes`
        # lists this council once its spoke exists): until the hub runs again this side stays `Initiated`.
        peering(f"peer-{c.key}-to-hub", "to-hub", vnet_name=self.vnet.name, rg_name=self.rg.name,
                remote_id=hub.vnet_id, parent=self)
        self.register_outputs({"vnetId": self.vnet.id})
