"""Azure's own names and numbers that the stacks, the rules and the reachability verifier share: the subnets Azure
reserves for its appliances and the addresses it keeps in every subnet. Azure's facts, not the estate's; each
with the page Azure publishes it on."""

from __future__ import annotations

FIREWALL_SUBNET = "AzureFirewallSubnet"
FIREWALL_MANAGEMENT_SUBNET = "AzureFirewallManagementSubnet"
BASTION_SUBNET = "AzureBastionSubnet"
GATEWAY_SUBNET = "GatewaySubnet"
ROUTE_SERVER_SUBNET = "RouteServerSubnet"

# Subnets Azure reserves for its own services: they get no route table and no workload of ours.
PLATFORM_SUBNETS = frozenset({FIREWALL_SUBNET, FIREWALL_MANAGEMENT_SUBNET, BASTION_SUBNET, GATEWAY_SUBNET,
                              ROUTE_SERVER_SUBNET})
# Platform subnets that take no NSG: Azure refuses one on the firewall's (learn.microsoft.com/azure/firewall/
# firewall-faq), "configuring NSGs on the GatewaySubnet isn't supported" (learn.microsoft.com/azure/vpn-gateway/
# vpn-gateway-about-vpn-gateway-settings), and Route Server manages its own. AzureBastionSubnet is not among them:
# it takes an NSG carrying the rules Microsoft requires (estate.bastion).
NO_NSG_SUBNETS = frozenset({FIREWALL_SUBNET, FIREWALL_MANAGEMENT_SUBNET, GATEWAY_SUBNET, ROUTE_SERVER_SUBNET})

# Azure keeps the first four addresses of every subnet (learn.microsoft.com/azure/virtual-network/
# virtual-networks-faq, "Are there any restrictions on using IP addresses within these subnets?"): the first address
# a NIC or an appliance can take is the fifth (.4 of the subnet's network address).
RESERVED_AT_START = 4
