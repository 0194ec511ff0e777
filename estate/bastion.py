"""Azure Bastion's NSG rules: what Microsoft requires of a network security group on AzureBastionSubnet.

Azure's constants, not facts about a council (as role ids are), from "Configure NSG rules for Azure Bastion"
(learn.microsoft.com/azure/bastion/bastion-nsg): "If you apply an NSG to your Azure Bastion resource, you **must**
create all of the following ingress and egress traffic rules. Omitting any rule blocks your Bastion host from
receiving platform updates". Its table:

| Rule name | Direction | Source | Destination | Port(s) | Protocol |
| AllowHttpsInbound | Inbound | Internet | * | 443 | TCP |
| AllowGatewayManagerInbound | Inbound | GatewayManager | * | 443 | TCP |
| AllowBastionHostCommunication | Inbound | VirtualNetwork | VirtualNetwork | 8080, 5701 | * |
| AllowAzureLoadBalancerInbound | Inbound | AzureLoadBalancer | * | 443 | TCP |
| AllowSshRdpOutbound | Outbound | * | VirtualNetwork | 22, 3389 | * |
| AllowAzureCloudOutbound | Outbound | * | AzureCloud | 443 | TCP |
| AllowBastionCommunication | Outbound | VirtualNetwork | VirtualNetwork | 8080, 5701 | * |
| AllowHttpOutbound | Outbound | * | Internet | 80 | * |

The page's own script creates every one of them with protocol TCP: that is what the estate plans (a '*' where the
table says '*' is accepted too). Azure refuses an NSG on AzureBastionSubnet without the control plane's rules: "If
you do not add these rules, the NSG creation/update will fail: Inbound on 443 from GatewayManager; Outbound on 443
to AzureCloud; Outbound for 3389 and 22 to VirtualNetwork" (the same page, section "Apply NSGs to
AzureBastionSubnet", in its editions of 2019 and 2020: MicrosoftDocs/azure-docs articles/bastion/bastion-nsg.md).
The outbound rule to the target VMs takes the VMs' SSH and RDP ports; with Bastion's custom ports (Standard SKU)
"allow outbound traffic to the VirtualNetwork service tag" on those: the estate gives it the framework's
administration ports (network.administration).

Plain data and wire-format matching only: read by the stacks (which generate the rules), the compliance rules
(NET-003, NET-004, NET-007), the platform contract and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

BASTION_NSG_URL = "https://learn.microsoft.com/azure/bastion/bastion-nsg"
SSH_RDP = ("22", "3389")  # the page's ports to the target VMs


@dataclass(frozen=True)
class PlatformRule:
    """One rule Azure Bastion needs on its subnet's NSG."""

    name: str
    direction: str                  # Inbound | Outbound
    source: str
    destination: str
    ports: tuple[str, ...]
    any_protocol: bool              # the page's table allows '*' (else TCP only)
    description: str
    refused_without: bool = False   # Azure refuses the NSG without it
    admin: bool = False             # to the target VMs: on the administration ports

    def with_ports(self, ports: Sequence[str]) -> PlatformRule:
        return replace(self, ports=tuple(ports))


REQUIRED: tuple[PlatformRule, ...] = (
    PlatformRule("AllowHttpsInbound", "Inbound", "Internet", "*", ("443",), False,
                 "Azure Bastion: users' HTTPS to its public IP"),
    PlatformRule("AllowGatewayManagerInbound", "Inbound", "GatewayManager", "*", ("443",), False,
                 "Azure Bastion: its control plane (GatewayManager)", refused_without=True),
    PlatformRule("AllowAzureLoadBalancerInbound", "Inbound", "AzureLoadBalancer", "*", ("443",), False,
                 "Azure Bastion: Azure Load Balancer's health probes"),
    PlatformRule("AllowBastionHostCommunication", "Inbound", "VirtualNetwork", "VirtualNetwork", ("8080", "5701"),
                 True, "Azure Bastion: its instances' data plane"),
    PlatformRule("AllowSshRdpOutbound", "Outbound", "*", "VirtualNetwork", SSH_RDP, True,
                 "Azure Bastion: SSH and RDP to the target VMs", refused_without=True, admin=True),
    PlatformRule("AllowAzureCloudOutbound", "Outbound", "*", "AzureCloud", ("443",), False,
                 "Azure Bastion: diagnostics and metering to Azure's public endpoints", refused_without=True),
    PlatformRule("AllowBastionCommunication", "Outbound", "VirtualNetwork", "VirtualNetwork", ("8080", "5701"), True,
                 "Azure Bastion: its instances' data plane"),
    PlatformRule("AllowHttpOutbound", "Outbound", "*", "Internet", ("80",), True,
                 "Azure Bastion: session validation, shareable links and certificate validation"),
)


def required(admin_ports: Sequence[str] | None = None) -> tuple[PlatformRule, ...]:
    """Microsoft's required rules; with `admin_ports`, the rule to the target VMs on those ports instead of 22, 3389."""
    if admin_ports is None:
        return REQUIRED
    return tuple(r.with_ports(admin_ports) if r.admin else r for r in REQUIRED)


# ---- wire-format NSG rules (camelCase inputs, as the plan and CrossGuard see them) ---------------------------


def _values(rule: Mapping[str, Any], single: str, plural: str) -> list[str]:
    raw = rule.get(plural)
    out = [str(v) for v in (raw if isinstance(raw, list | tuple) else [])]
    if rule.get(single) is not None:
        out.append(str(rule.get(single)))
    return out


def _ports(values: Iterable[str]) -> set[int] | None:
    """The ports a list of NSG port ranges names; None for '*' or anything unreadable."""
    out: set[int] = set()
    for text in values:
        text = text.strip()
        low, _, high = text.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            return None
        out.update(range(int(low), int(high or low) + 1))
    return out


def _same(values: Sequence[str], wanted: str) -> bool:
    return len(values) == 1 and values[0].strip().lower() == wanted.lower()


def _same_ends(rule: Mapping[str, Any], p: PlatformRule) -> bool:
    """An allow of `p`'s direction, protocol, source and destination (whatever its ports)."""
    if str(rule.get("access", "")).lower() != "allow" or str(rule.get("direction", "")).lower() != p.direction.lower():
        return False
    protocol = str(rule.get("protocol", "")).lower()
    if protocol != "tcp" and not (p.any_protocol and protocol in ("*", "any")):
        return False
    return (_same(_values(rule, "sourceAddressPrefix", "sourceAddressPrefixes"), p.source)
            and _same(_values(rule, "destinationAddressPrefix", "destinationAddressPrefixes"), p.destination))


def _shape(rule: Mapping[str, Any], p: PlatformRule) -> set[int] | None:
    """The rule's ports when it is an allow of `p`'s ends (None for '*' or another shape)."""
    if not _same_ends(rule, p):
        return None
    return _ports(_values(rule, "destinationPortRange", "destinationPortRanges"))


def within(rule: Mapping[str, Any], p: PlatformRule) -> bool:
    """The wire-format rule allows no more than `p` does (same ends and direction, its ports or fewer)."""
    got = _shape(rule, p)
    wanted = _ports(p.ports)
    return bool(got) and wanted is not None and got is not None and got <= wanted


def to_target_vms(rule: Mapping[str, Any]) -> bool:
    """An allow of the shape of Bastion's rule to the target VMs (AllowSshRdpOutbound), on whatever ports."""
    return any(_same_ends(rule, p) for p in REQUIRED if p.admin)


def carries(rules: Iterable[Mapping[str, Any]], p: PlatformRule) -> bool:
    """Some allow rule of the NSG opens everything `p` needs (its ends, direction and every port)."""
    wanted = _ports(p.ports) or set()
    got: set[int] = set()
    for rule in rules:
        ports = _shape(rule, p)
        if ports:
            got |= ports
    return wanted <= got


def platform_rule(rule: Mapping[str, Any], admin_ports: Sequence[str] | None = None) -> PlatformRule | None:
    """The required rule this wire-format allow rule stays within, if any (the admin rule on `admin_ports`)."""
    return next((p for p in required(admin_ports) if within(rule, p)), None)


def missing(rules: Iterable[Mapping[str, Any]], admin_ports: Sequence[str] | None = None) -> list[PlatformRule]:
    listed = [r for r in rules if isinstance(r, Mapping)]
    return [p for p in required(admin_ports) if not carries(listed, p)]
