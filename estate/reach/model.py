"""The planned Azure network, read from the planned resources alone (wire-format inputs, as CrossGuard sees them).

References between resources (a subnet's NSG and route table, a peering's remote network, the firewall's policy,
a NIC's subnet) are resolved by resource group, type and name: the path of an Azure resource id after the
subscription, compared without case (ids are case-insensitive) and with the type in the singular, so the plan's
mock ids (estate.plan.mock_id) and real ids from `pulumi stack export` resolve alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from estate.azure import PLATFORM_SUBNETS, RESERVED_AT_START
from estate.plan import mock_id
from estate.reach.addresses import (
    ANY_PORT,
    EMPTY,
    AddressSet,
    Ports,
    address_set,
    parse_address,
    parse_network,
    ports,
    show_interval,
)

VNET = "azure-native:network:VirtualNetwork"
SUBNET = "azure-native:network:Subnet"
NSG = "azure-native:network:NetworkSecurityGroup"
SECURITY_RULE = "azure-native:network:SecurityRule"
ROUTE_TABLE = "azure-native:network:RouteTable"
ROUTE = "azure-native:network:Route"
PEERING = "azure-native:network:VirtualNetworkPeering"
FIREWALL = "azure-native:network:AzureFirewall"
POLICY = "azure-native:network:FirewallPolicy"
RULE_GROUP = "azure-native:network:FirewallPolicyRuleCollectionGroup"
NIC = "azure-native:network:NetworkInterface"
BASTION = "azure-native:network:BastionHost"
GATEWAY = "azure-native:network:VirtualNetworkGateway"
VM = "azure-native:compute:VirtualMachine"
VMSS = "azure-native:compute:VirtualMachineScaleSet"

# Subnets that hold an Azure service rather than hosts (Azure's names).
# Azure Firewall's private IP (the next hop of routes through it) is set by Azure at deployment, so the plan does not
# carry it: it is the first address Azure leaves free in AzureFirewallSubnet (estate.azure.RESERVED_AT_START), as
# every deployment in learn.microsoft.com/azure/firewall/tutorial-firewall-deploy-portal shows.


class Planned(Protocol):
    """What the verifier reads of a planned resource (estate.plan.PlannedResource has this shape)."""

    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def stack(self) -> str: ...
    @property
    def inputs(self) -> Mapping[str, Any]: ...


def _singular(kind: str) -> str:
    kind = kind.lower()
    if kind.endswith("ies"):
        return kind[:-3] + "y"
    if kind.endswith("sses"):
        return kind[:-2]
    return kind[:-1] if kind.endswith("s") else kind


def ref(resource_id: object) -> str:
    """An Azure resource id as a key: resource group, then each type (singular) and name, lower case."""
    if not isinstance(resource_id, str):
        return ""
    parts = resource_id.strip("/").split("/")
    low = [p.lower() for p in parts]
    group = low[low.index("resourcegroups") + 1] if "resourcegroups" in low[:-1] else ""
    if "providers" not in low[:-2]:
        return f"{group}|{'/'.join(low)}"
    rest = low[low.index("providers") + 2:]
    pairs = [f"{_singular(rest[i])}:{rest[i + 1]}" for i in range(0, len(rest) - 1, 2)]
    return f"{group}|{'/'.join(pairs)}"


def own_ref(res: Planned) -> str:
    return ref(mock_id(res.type, res.name, dict(res.inputs)))


def _id(value: Any) -> str:
    return ref(value.get("id")) if isinstance(value, Mapping) else ""


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _maps(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in _list(value) if isinstance(v, Mapping)]


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):  # "inf" reads as a float but is no integer
        return default


def _flag(value: Any, default: bool) -> bool:
    return value if isinstance(value, bool) else default


def _both(data: Mapping[str, Any], single: str, plural: str) -> tuple[str, ...]:
    """A field Azure takes in the singular or the plural form (NSG prefixes and ports)."""
    out = [str(v) for v in _list(data.get(plural))]
    if data.get(single) is not None:
        out.append(str(data.get(single)))
    return tuple(out)


# --------------------------------------------------------------------------- network security groups


@dataclass(frozen=True)
class SecurityRule:
    name: str
    priority: int
    inbound: bool
    allow: bool
    protocol: str            # tcp | udp | icmp | * ... (lower case)
    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    ports: Ports
    default: bool = False    # one of Azure's default rules

    def matches(self, protocol: str, port: int) -> bool:
        return (self.protocol in ("*", "any") or self.protocol == protocol) and port in self.ports


def _security_rule(data: Mapping[str, Any]) -> SecurityRule:
    return SecurityRule(
        name=_str(data.get("name")) or "(unnamed)",
        priority=_int(data.get("priority"), 65535),
        inbound=_str(data.get("direction")).lower() == "inbound",
        allow=_str(data.get("access")).lower() == "allow",
        protocol=_str(data.get("protocol") or "*").lower(),
        sources=_both(data, "sourceAddressPrefix", "sourceAddressPrefixes"),
        destinations=_both(data, "destinationAddressPrefix", "destinationAddressPrefixes"),
        ports=ports(_both(data, "destinationPortRange", "destinationPortRanges")),
    )


# Azure's default rules, in every NSG below the custom ones (priorities 100-4096):
# learn.microsoft.com/azure/virtual-network/network-security-groups-overview#default-security-rules
DEFAULT_RULES = (
    SecurityRule("AllowVnetInBound", 65000, True, True, "*", ("VirtualNetwork",), ("VirtualNetwork",), Ports(None),
                 True),
    SecurityRule("AllowAzureLoadBalancerInBound", 65001, True, True, "*", ("AzureLoadBalancer",), ("*",), Ports(None),
                 True),
    SecurityRule("DenyAllInBound", 65500, True, False, "*", ("*",), ("*",), Ports(None), True),
    SecurityRule("AllowVnetOutBound", 65000, False, True, "*", ("VirtualNetwork",), ("VirtualNetwork",), Ports(None),
                 True),
    SecurityRule("AllowInternetOutBound", 65001, False, True, "*", ("*",), ("Internet",), Ports(None), True),
    SecurityRule("DenyAllOutBound", 65500, False, False, "*", ("*",), ("*",), Ports(None), True),
)


@dataclass
class Nsg:
    key: str
    name: str
    stack: str
    rules: list[SecurityRule]

    def ordered(self, inbound: bool) -> list[SecurityRule]:
        """The rules of one direction in the order Azure applies them: priority, custom before default."""
        mine = sorted((r for r in self.rules if r.inbound == inbound), key=lambda r: r.priority)
        return [*mine, *(r for r in DEFAULT_RULES if r.inbound == inbound)]


# --------------------------------------------------------------------------- routes


@dataclass(frozen=True)
class Route:
    name: str
    first: int
    last: int
    length: int
    next_hop: str            # VirtualAppliance | VnetLocal | Internet | None | VirtualNetworkGateway | VNetPeering
    next_hop_ip: int | None
    user: bool               # a user-defined route (wins over a system route of the same prefix)
    table: str               # the route table's name, or the system's
    remote: str = ""         # VNetPeering: the remote network's key

    @property
    def prefix(self) -> str:
        return show_interval(self.first, self.last)


_HOP_TYPES = {t.lower(): t for t in ("VirtualAppliance", "VnetLocal", "Internet", "None", "VirtualNetworkGateway")}


def _route(data: Mapping[str, Any], table: str) -> Route | None:
    parsed = parse_network(_str(data.get("addressPrefix")))
    if parsed is None:
        return None  # a service-tag route: not modelled
    hop = _HOP_TYPES.get(_str(data.get("nextHopType")).lower(), "None")
    return Route(_str(data.get("name")) or "(unnamed)", parsed[0], parsed[1], parsed[2], hop,
                 parse_address(_str(data.get("nextHopIpAddress"))), True, table)


@dataclass
class RouteTable:
    key: str
    name: str
    stack: str
    routes: list[Route]


# --------------------------------------------------------------------------- virtual networks


@dataclass
class Peering:
    name: str
    stack: str
    local: str               # the key of the network it is on
    remote: str              # the key of the network it reaches
    allow_access: bool
    allow_forwarded: bool


@dataclass
class Subnet:
    key: str
    name: str
    stack: str
    vnet: VNet
    first: int
    last: int
    nsg: Nsg | None = None
    route_table: RouteTable | None = None
    default_outbound: bool = True
    nat_gateway: bool = False
    nsg_key: str = ""
    route_table_key: str = ""

    @property
    def platform(self) -> bool:
        return self.name in PLATFORM_SUBNETS

    @property
    def label(self) -> str:
        return f"{self.vnet.name}/{self.name}"

    def first_free(self) -> int:
        return self.first + RESERVED_AT_START


@dataclass
class VNet:
    key: str
    name: str
    stack: str
    prefixes: list[tuple[int, int]]
    subnets: list[Subnet] = field(default_factory=list)
    peerings: dict[str, Peering] = field(default_factory=dict)  # by remote key

    def holds(self, addr: int) -> bool:
        return any(lo <= addr <= hi for lo, hi in self.prefixes)

    def subnet_at(self, addr: int) -> Subnet | None:
        for s in self.subnets:
            if s.first <= addr <= s.last:
                return s
        return None

    @property
    def space(self) -> AddressSet:
        return AddressSet(tuple(self.prefixes))


# --------------------------------------------------------------------------- firewall


@dataclass(frozen=True)
class FirewallRule:
    group: str
    group_priority: int
    collection: str
    collection_priority: int
    kind: str                  # dnat | network | application
    allow: bool
    name: str
    sources: AddressSet
    protocols: frozenset[str]  # network: tcp, udp, icmp, any; application: tcp
    destinations: AddressSet = EMPTY
    fqdns: tuple[str, ...] = ()      # network rules' destinationFqdns, application rules' targetFqdns
    fqdn_tags: frozenset[str] = frozenset()
    ports: Ports = ANY_PORT
    app_ports: frozenset[int] = frozenset()
    translated: int | None = None    # DNAT: the translated address

    @property
    def label(self) -> str:
        return f"{self.group}/{self.collection}/{self.name}"

    @property
    def order(self) -> tuple[int, int, int]:
        return ({"dnat": 0, "network": 1, "application": 2}[self.kind], self.group_priority, self.collection_priority)


def fqdn_matches(pattern: str, name: str) -> bool:
    """Azure Firewall's target FQDNs: exact, `*.domain` (any name below it), or `*` (anything)."""
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])
    return pattern == name


def _firewall_rules(group: Mapping[str, Any], name: str) -> list[FirewallRule]:
    out: list[FirewallRule] = []
    gp = _int(group.get("priority"), 65000)
    for coll in _maps(group.get("ruleCollections")):
        cname, cp = _str(coll.get("name")) or "(unnamed)", _int(coll.get("priority"), 65000)
        action = _str((coll.get("action") or {}).get("type") if isinstance(coll.get("action"), Mapping) else "")
        allow = action.lower() in ("allow", "dnat")
        for r in _maps(coll.get("rules")):
            rtype = _str(r.get("ruleType"))
            sources = address_set(_list(r.get("sourceAddresses")))
            common: dict[str, Any] = {"group": name, "group_priority": gp, "collection": cname,
                                      "collection_priority": cp, "allow": allow,
                                      "name": _str(r.get("name")) or "(unnamed)", "sources": sources}
            if rtype == "NetworkRule":
                out.append(FirewallRule(
                    kind="network", protocols=frozenset(str(p).lower() for p in _list(r.get("ipProtocols"))),
                    destinations=address_set(_list(r.get("destinationAddresses"))),
                    fqdns=tuple(str(f) for f in _list(r.get("destinationFqdns"))),
                    ports=ports(_list(r.get("destinationPorts"))), **common))
            elif rtype == "ApplicationRule":
                app_ports = frozenset(_int(p.get("port")) for p in _maps(r.get("protocols")))
                out.append(FirewallRule(
                    kind="application", protocols=frozenset({"tcp"}),
                    fqdns=tuple(str(f) for f in _list(r.get("targetFqdns"))),
                    fqdn_tags=frozenset(str(t).lower() for t in _list(r.get("fqdnTags"))), app_ports=app_ports,
                    **common))
            elif rtype == "NatRule":
                out.append(FirewallRule(
                    kind="dnat", protocols=frozenset(str(p).lower() for p in _list(r.get("ipProtocols"))),
                    destinations=address_set(_list(r.get("destinationAddresses"))),
                    ports=ports(_list(r.get("destinationPorts"))),
                    translated=parse_address(_str(r.get("translatedAddress"))), **common))
    return out


@dataclass
class Policy:
    key: str
    name: str
    stack: str
    dns_proxy: bool
    rules: list[FirewallRule] = field(default_factory=list)  # in processing order once the network is built


@dataclass
class Firewall:
    key: str
    name: str
    stack: str
    subnet_key: str
    policy_key: str
    public: bool
    subnet: Subnet | None = None
    policy: Policy | None = None

    @property
    def address(self) -> int | None:
        return self.subnet.first_free() if self.subnet is not None else None


# --------------------------------------------------------------------------- machines


@dataclass
class Nic:
    key: str
    name: str
    stack: str
    configs: list[tuple[str, int | None, bool]]  # (subnet key, private address, has a public IP)
    nsg_key: str = ""
    nsg: Nsg | None = None


@dataclass
class Machine:
    """A VM (its NICs' addresses) or a scale set (its subnets: instances take addresses at run time)."""

    name: str
    stack: str
    scale_set: bool
    os: str | None                      # linux | windows | None (unknown)
    nic_keys: list[str] = field(default_factory=list)
    subnet_keys: list[str] = field(default_factory=list)  # scale sets
    public: bool = False                # scale sets: a public IP configuration per instance
    nsg_key: str = ""


def _os(profile: Mapping[str, Any]) -> str | None:
    os_profile = profile.get("osProfile")
    if isinstance(os_profile, Mapping):
        if isinstance(os_profile.get("linuxConfiguration"), Mapping):
            return "linux"
        if isinstance(os_profile.get("windowsConfiguration"), Mapping):
            return "windows"
    disk = profile.get("storageProfile")
    os_type = _str(disk.get("osDisk", {}).get("osType")) if isinstance(disk, Mapping) and isinstance(
        disk.get("osDisk"), Mapping) else ""
    return os_type.lower() or None


@dataclass
class Bastion:
    name: str
    stack: str
    subnet_key: str


# --------------------------------------------------------------------------- reading the plan


@dataclass
class Model:
    vnets: dict[str, VNet] = field(default_factory=dict)
    subnets: dict[str, Subnet] = field(default_factory=dict)
    nsgs: dict[str, Nsg] = field(default_factory=dict)
    route_tables: dict[str, RouteTable] = field(default_factory=dict)
    firewalls: list[Firewall] = field(default_factory=list)
    policies: dict[str, Policy] = field(default_factory=dict)
    nics: dict[str, Nic] = field(default_factory=dict)
    machines: list[Machine] = field(default_factory=list)
    bastions: list[Bastion] = field(default_factory=list)
    gateway_subnets: set[str] = field(default_factory=set)  # subnet keys a VirtualNetworkGateway is deployed in


def read(resources: Iterable[Planned]) -> Model:
    """The network model of the planned resources; anything unresolved is left out (and so denies)."""
    m = Model()
    pending: dict[str, list[Planned]] = {}
    for res in resources:
        pending.setdefault(res.type, []).append(res)
    for res in pending.get(VNET, []):
        _vnet(m, res)
    for res in pending.get(NSG, []):
        key = own_ref(res)
        m.nsgs[key] = Nsg(key, _str(res.inputs.get("networkSecurityGroupName")) or res.name, res.stack,
                          [_security_rule(r) for r in _maps(res.inputs.get("securityRules"))])
    for res in pending.get(SECURITY_RULE, []):
        parent = ref(_parent_id(res, "networkSecurityGroupName", "networkSecurityGroups"))
        if parent in m.nsgs:
            m.nsgs[parent].rules.append(_security_rule({**res.inputs, "name": _str(res.inputs.get(
                "securityRuleName")) or res.inputs.get("name") or res.name}))
    for res in pending.get(ROUTE_TABLE, []):
        key = own_ref(res)
        name = _str(res.inputs.get("routeTableName")) or res.name
        routes = [r for r in (_route(d, name) for d in _maps(res.inputs.get("routes"))) if r is not None]
        m.route_tables[key] = RouteTable(key, name, res.stack, routes)
    for res in pending.get(ROUTE, []):
        parent = ref(_parent_id(res, "routeTableName", "routeTables"))
        table = m.route_tables.get(parent)
        if table is not None:
            route = _route({**res.inputs, "name": _str(res.inputs.get("routeName")) or res.name}, table.name)
            if route is not None:
                table.routes.append(route)
    for res in pending.get(SUBNET, []):
        vnet = m.vnets.get(ref(_parent_id(res, "virtualNetworkName", "virtualNetworks")))
        if vnet is not None:
            _subnet(m, vnet, own_ref(res), _str(res.inputs.get("subnetName")) or res.name, res.stack, res.inputs)
    for subnet in m.subnets.values():
        subnet.nsg = m.nsgs.get(subnet.nsg_key)
        subnet.route_table = m.route_tables.get(subnet.route_table_key)
    for res in pending.get(PEERING, []):
        local = ref(_parent_id(res, "virtualNetworkName", "virtualNetworks"))
        remote = _id(res.inputs.get("remoteVirtualNetwork"))
        if local in m.vnets and remote:
            m.vnets[local].peerings[remote] = Peering(
                _str(res.inputs.get("virtualNetworkPeeringName")) or res.name, res.stack, local, remote,
                _flag(res.inputs.get("allowVirtualNetworkAccess"), True),
                _flag(res.inputs.get("allowForwardedTraffic"), False))
    _firewalls(m, pending)
    _machines(m, pending)
    for res in pending.get(BASTION, []):
        bastion_configs = _maps(res.inputs.get("ipConfigurations"))
        where = _id(bastion_configs[0].get("subnet")) if bastion_configs else ""
        m.bastions.append(Bastion(_str(res.inputs.get("bastionHostName")) or res.name, res.stack, where))
    for res in pending.get(GATEWAY, []):
        m.gateway_subnets.update(k for k in (_id(c.get("subnet")) for c in _maps(res.inputs.get("ipConfigurations")))
                                 if k)
    return m


def _parent_id(res: Planned, name_key: str, plural: str) -> str:
    """The id of the resource a child resource names by `<parent>Name` (a subnet's network, a rule's NSG)."""
    group = _str(res.inputs.get("resourceGroupName"))
    parent = _str(res.inputs.get(name_key))
    return f"/resourceGroups/{group}/providers/Microsoft.Network/{plural}/{parent}"


def _vnet(m: Model, res: Planned) -> None:
    key = own_ref(res)
    space = res.inputs.get("addressSpace")
    prefixes = [p for p in (parse_network(str(t)) for t in _list(space.get("addressPrefixes") if isinstance(
        space, Mapping) else None)) if p is not None]
    vnet = VNet(key, _str(res.inputs.get("virtualNetworkName")) or res.name, res.stack,
                [(lo, hi) for lo, hi, _ in prefixes])
    m.vnets[key] = vnet
    for inline in _maps(res.inputs.get("subnets")):
        name = _str(inline.get("name"))
        if name:
            _subnet(m, vnet, f"{key}/subnet:{name.lower()}", name, res.stack, inline)


def _subnet(m: Model, vnet: VNet, key: str, name: str, stack: str, data: Mapping[str, Any]) -> None:
    parsed = parse_network(_str(data.get("addressPrefix")) or next(
        (str(p) for p in _list(data.get("addressPrefixes"))), ""))
    if parsed is None:
        return
    subnet = Subnet(key, name, stack, vnet, parsed[0], parsed[1],
                    default_outbound=_flag(data.get("defaultOutboundAccess"), True),
                    nat_gateway=bool(_id(data.get("natGateway"))),
                    nsg_key=_id(data.get("networkSecurityGroup")), route_table_key=_id(data.get("routeTable")))
    vnet.subnets.append(subnet)
    m.subnets[key] = subnet


def _firewalls(m: Model, pending: Mapping[str, list[Planned]]) -> None:
    for res in pending.get(POLICY, []):
        key = own_ref(res)
        dns = res.inputs.get("dnsSettings")
        m.policies[key] = Policy(key, _str(res.inputs.get("firewallPolicyName")) or res.name, res.stack,
                                 dns_proxy=isinstance(dns, Mapping) and dns.get("enableProxy") is True)
    for res in pending.get(RULE_GROUP, []):
        policy = m.policies.get(ref(_parent_id(res, "firewallPolicyName", "firewallPolicies")))
        if policy is not None:
            name = _str(res.inputs.get("ruleCollectionGroupName")) or res.name
            policy.rules.extend(_firewall_rules(res.inputs, name))
    for policy in m.policies.values():
        policy.rules.sort(key=lambda r: r.order)  # stable: rules keep their order inside a collection
    for res in pending.get(FIREWALL, []):
        configs = _maps(res.inputs.get("ipConfigurations"))
        subnet = next((_id(c.get("subnet")) for c in configs if _id(c.get("subnet"))), "")
        fw = Firewall(own_ref(res), _str(res.inputs.get("azureFirewallName")) or res.name, res.stack, subnet,
                      _id(res.inputs.get("firewallPolicy")), any(_id(c.get("publicIPAddress")) for c in configs))
        fw.subnet = m.subnets.get(fw.subnet_key)
        fw.policy = m.policies.get(fw.policy_key)
        m.firewalls.append(fw)


def _machines(m: Model, pending: Mapping[str, list[Planned]]) -> None:
    for res in pending.get(NIC, []):
        key = own_ref(res)
        configs = [(_id(c.get("subnet")), parse_address(_str(c.get("privateIPAddress"))),
                    bool(_id(c.get("publicIPAddress")))) for c in _maps(res.inputs.get("ipConfigurations"))]
        nic = Nic(key, _str(res.inputs.get("networkInterfaceName")) or res.name, res.stack, configs,
                  _id(res.inputs.get("networkSecurityGroup")))
        nic.nsg = m.nsgs.get(nic.nsg_key)
        m.nics[key] = nic
    for res in pending.get(VM, []):
        profile = res.inputs
        network = profile.get("networkProfile")
        nics = [_id(n) for n in _maps(network.get("networkInterfaces"))] if isinstance(network, Mapping) else []
        m.machines.append(Machine(_str(profile.get("vmName")) or res.name, res.stack, False, _os(profile),
                                  nic_keys=[n for n in nics if n]))
    for res in pending.get(VMSS, []):
        scale = res.inputs.get("virtualMachineProfile")
        if not isinstance(scale, Mapping):
            continue
        network = scale.get("networkProfile")
        nic_configs = _maps(network.get("networkInterfaceConfigurations")) if isinstance(network, Mapping) else []
        ipconfigs = [ip for c in nic_configs for ip in _maps(c.get("ipConfigurations"))]
        nsg = next((_id(c.get("networkSecurityGroup")) for c in nic_configs if _id(c.get("networkSecurityGroup"))),
                   "")
        m.machines.append(Machine(
            _str(res.inputs.get("vmScaleSetName")) or res.name, res.stack, True, _os(scale),
            subnet_keys=[k for k in (_id(ip.get("subnet")) for ip in ipconfigs) if k],
            public=any(isinstance(ip.get("publicIPAddressConfiguration"), Mapping) for ip in ipconfigs),
            nsg_key=nsg))


__all__: Sequence[str] = [
    "Bastion", "Firewall",
    "FirewallRule", "Machine", "Model", "Nic", "Nsg", "Peering", "Policy", "Route", "RouteTable", "SecurityRule",
    "Subnet", "VNet", "fqdn_matches", "read", "ref",
]
