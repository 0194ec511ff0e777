"""Azure's service rules that an ARM deployment schema cannot express, each a small declared check citing
the public page it comes from. Rules read the planned inputs (azure-native's flattened shape) and report
properties as JSON paths in the ARM request body (`$.properties...`), as the schema findings do.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from estate import azure, bastion
from estate.contract.findings import ContractFinding
from estate.contract.types import ARM_TYPES
from estate.errors import describe
from estate.plan import PlannedResource

NAME_RULES_URL = "https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules"
NSG_URL = "https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview"
FIREWALL_FAQ_URL = "https://learn.microsoft.com/azure/firewall/firewall-faq"
BASTION_URL = "https://learn.microsoft.com/azure/bastion/configuration-settings"
BASTION_NSG_URL = bastion.BASTION_NSG_URL
GATEWAY_URL = "https://learn.microsoft.com/azure/vpn-gateway/vpn-gateway-about-vpn-gateway-settings"
BACKUP_URL = "https://learn.microsoft.com/azure/backup/backup-azure-vms-enhanced-policy"
FLEX_URL = "https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-orchestration-modes"
PE_DNS_URL = "https://learn.microsoft.com/azure/private-link/private-endpoint-dns"
AVD_HOSTS_URL = "https://learn.microsoft.com/azure/virtual-desktop/add-session-hosts-host-pool"
AVD_TEMPLATES_URL = "https://github.com/Azure/RDS-Templates"
FW_RULES_URL = "https://learn.microsoft.com/azure/firewall/rule-processing"
FW_FQDN_TAGS_URL = "https://learn.microsoft.com/azure/firewall/fqdn-tags"
FW_FQDN_NETWORK_URL = "https://learn.microsoft.com/azure/firewall/fqdn-filtering-network-rules"
VNET_FLOW_LOGS_URL = "https://learn.microsoft.com/azure/network-watcher/vnet-flow-logs-overview"
TRAFFIC_ANALYTICS_URL = "https://learn.microsoft.com/azure/network-watcher/traffic-analytics"

P = "$.properties"


def _t(name: str) -> str:
    return f"azure-native:{name}"


class PlanIndex:
    """The plan's resources by type, and look-ups of one resource by the names in a (mock) resource id."""

    def __init__(self, resources: Sequence[PlannedResource], now: dt.datetime) -> None:
        self.now = now
        self.by_type: dict[str, list[PlannedResource]] = {}
        for res in resources:
            self.by_type.setdefault(res.type, []).append(res)

    def of(self, type_name: str) -> list[PlannedResource]:
        return self.by_type.get(_t(type_name), [])

    def without(self, urns: set[str]) -> PlanIndex:
        """The index less the resources in `urns` (one a rule could not read: judged no further)."""
        return PlanIndex([r for rs in self.by_type.values() for r in rs if r.urn not in urns], self.now)

    def find(self, type_name: str, **inputs: str) -> PlannedResource | None:
        """The resource of `type_name` whose inputs match (case-insensitive, as Azure compares names)."""
        for res in self.of(type_name):
            if all(str(res.inputs.get(k, "")).lower() == v.lower() for k, v in inputs.items()):
                return res
        return None


def id_segment(resource_id: Any, after: str) -> str | None:
    """The path segment after `after` (case-insensitive) in a resource id; mock ids spell plurals their own
    way (`protectionPolicys`), so callers name the parent segments, and the last segment is the name."""
    if not isinstance(resource_id, str):
        return None
    parts = resource_id.strip("/").split("/")
    for i, part in enumerate(parts[:-1]):
        if part.lower() == after.lower():
            return parts[i + 1]
    return None


def last_segment(resource_id: Any) -> str | None:
    return resource_id.rstrip("/").rsplit("/", 1)[-1] if isinstance(resource_id, str) and resource_id else None


def reference_time(resources: Sequence[PlannedResource]) -> dt.datetime:
    """The plan's own clock: the first day of the framework version's month (estate.plan plans with the
    framework version's month, so that nothing depends on today), read from the resources'
    `framework-version` tag; today (UTC) when no resource carries one."""
    for res in resources:
        tags = res.inputs.get("tags")
        version = tags.get("framework-version") if isinstance(tags, dict) else None
        if isinstance(version, str) and re.match(r"^\d{4}\.\d{1,2}", version):
            year, month = version.split(".")[:2]
            return dt.datetime(int(year), int(month), 1, tzinfo=dt.UTC)
    return dt.datetime.now(dt.UTC)


class WrongShape(Exception):
    """A property a service rule reads holds a value of the wrong JSON type (a number where a list is meant):
    the rule reports it as a finding on the resource, naming the property, instead of a traceback."""

    def __init__(self, res: PlannedResource, path: str, value: Any, expected: str) -> None:
        self.res, self.path = res, path
        super().__init__(f"property {path} is {describe(value)}, expected {expected}")


def _seq(res: PlannedResource, value: Any, path: str) -> list[Any]:
    """A list property: [] when absent or null; any other type is a WrongShape."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise WrongShape(res, path, value, "a list")
    return value


def _obj(res: PlannedResource, value: Any, path: str) -> dict[str, Any]:
    """An object property: {} when absent or null; any other type (a boolean, a number, a string, a list) is a
    WrongShape."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WrongShape(res, path, value, "an object")
    return value


def _field(res: PlannedResource, parent: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    """The object `parent[key]`, whose JSON path is `path.key`."""
    return _obj(res, parent.get(key), f"{path}.{key}")


def _number(value: Any) -> TypeGuard[int | float]:
    """A JSON number (NaN and infinities included: the range checks report them); a boolean is none."""
    return isinstance(value, int | float) and not isinstance(value, bool)


Finder = Callable[[PlanIndex], Iterator[tuple[PlannedResource, str, str]]]


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    source: str
    finder: Finder  # yields (resource, JSON path, message)

    def check(self, index: PlanIndex) -> list[ContractFinding]:
        """The rule's findings; a resource whose property the rule cannot read (WrongShape) is one finding naming
        the property, and the rule runs again without it, so every other resource is still judged."""
        unreadable: list[ContractFinding] = []
        while True:
            skip = {f.resource for f in unreadable}
            try:
                return unreadable + [ContractFinding(self.id, res.urn, res.name, path, message, self.source)
                                     for res, path, message in self.finder(index.without(skip) if skip else index)]
            except WrongShape as exc:
                unreadable.append(ContractFinding(self.id, exc.res.urn, exc.res.name, exc.path, str(exc),
                                                  self.source))


# ---- names ------------------------------------------------------------------------------------------------

_ALNUM_UNDERSCORE_PERIOD_HYPHEN = r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$"


@dataclass(frozen=True)
class NameRule:
    min: int
    max: int
    pattern: str
    characters: str  # the page's words


NAME_RULES: dict[str, NameRule] = {
    "Microsoft.Resources/resourceGroups": NameRule(
        1, 90, r"^[-\w._()]*[-\w_()]$", "underscores, hyphens, periods, parentheses and letters or digits; "
        "can't end with a period"),
    "Microsoft.Network/virtualNetworks": NameRule(
        2, 64, _ALNUM_UNDERSCORE_PERIOD_HYPHEN, "alphanumerics, underscores, periods and hyphens; start with an "
        "alphanumeric, end with an alphanumeric or underscore"),
    **{t: NameRule(1, 80, _ALNUM_UNDERSCORE_PERIOD_HYPHEN, "alphanumerics, underscores, periods and hyphens; "
                   "start with an alphanumeric, end with an alphanumeric or underscore")
       for t in ("Microsoft.Network/virtualNetworks/subnets", "Microsoft.Network/networkSecurityGroups",
                 "Microsoft.Network/routeTables", "Microsoft.Network/networkInterfaces",
                 "Microsoft.Network/publicIPAddresses", "Microsoft.Network/azureFirewalls",
                 "Microsoft.Network/bastionHosts", "Microsoft.Network/firewallPolicies",
                 "Microsoft.Network/virtualNetworks/virtualNetworkPeerings")},
    "Microsoft.Network/privateEndpoints": NameRule(
        2, 64, _ALNUM_UNDERSCORE_PERIOD_HYPHEN, "alphanumerics, underscores, periods and hyphens; start with an "
        "alphanumeric, end with an alphanumeric or underscore"),
    "Microsoft.KeyVault/vaults": NameRule(
        3, 24, r"^[A-Za-z](?!.*--)[A-Za-z0-9-]*[A-Za-z0-9]$", "alphanumerics and hyphens; start with a letter, end "
        "with a letter or digit, no consecutive hyphens"),
    "Microsoft.DBforPostgreSQL/flexibleServers": NameRule(
        3, 63, r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$", "lowercase letters, digits and hyphens; can't start or end "
        "with a hyphen"),
    "Microsoft.RecoveryServices/vaults": NameRule(
        2, 50, r"^[A-Za-z][A-Za-z0-9-]*$", "alphanumerics and hyphens; start with a letter"),
    "Microsoft.OperationalInsights/workspaces": NameRule(
        4, 63, r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$", "alphanumerics and hyphens; start and end with an "
        "alphanumeric"),
    "Microsoft.Storage/storageAccounts": NameRule(3, 24, r"^[a-z0-9]+$", "lowercase letters and numbers"),
}
# Names unique across Azure (the page's scope "global"): two in one plan is a certain clash; a clash with
# someone else's is for `az storage account check-name` (estate preflight lists the names).
GLOBAL_NAMES = ("Microsoft.Storage/storageAccounts", "Microsoft.KeyVault/vaults")

# Windows computer names: 15 characters at most, no spaces or special characters, not all digits, no leading
# underscore, no trailing period or hyphen; Linux: 64.
_COMPUTER_NAME = re.compile(r"^(?!_)(?![0-9]+$)[^\s~!@#$%^&*()=+_\[\]{}\\|;:.'\",<>/?]*(?<![.-])$")
COMPUTER_NAME_MAX = {"windows": 15, "linux": 64}
# A scale set appends 6 characters to its computer name prefix: Windows prefixes are at most 15 - 6 = 9.
PREFIX_SUFFIX = 6


def _os(os_profile: dict[str, Any]) -> str:
    return "windows" if "windowsConfiguration" in os_profile else "linux"


def _names(index: PlanIndex) -> Iterator[tuple[PlannedResource, str, str]]:
    for type_token, arm in ARM_TYPES.items():
        # the resource group, the parents' names and the scope are segments of the request URL, not of the body
        # the schema judges: text, or the URL is not the one meant
        for res in index.by_type.get(type_token, []):
            for param in arm.path_params:
                value = res.inputs.get(param)
                if value is not None and not isinstance(value, str):
                    yield res, f"{param} (request URL)", (f"{param} is {describe(value)}; the request URL names "
                                                          "the resource's scope and parents by text")
        rule = NAME_RULES.get(arm.resource_type)
        if rule is None:
            continue
        seen: dict[str, PlannedResource] = {}
        for res in index.by_type.get(type_token, []):
            name = res.inputs.get(arm.name_param)
            if not isinstance(name, str):
                continue
            first = seen.setdefault(name.lower(), res)
            if arm.resource_type in GLOBAL_NAMES and first is not res:
                yield res, "$.name", (f"{arm.resource_type} name {name!r} is unique across Azure; the plan has it "
                                      f"twice ({first.urn})")
            if not rule.min <= len(name) <= rule.max:
                yield res, "$.name", (f"{arm.resource_type} name {name!r} is {len(name)} characters; "
                                      f"allowed {rule.min}-{rule.max}")
            elif not re.fullmatch(rule.pattern, name):
                yield res, "$.name", f"{arm.resource_type} name {name!r}: {rule.characters}"
    for res in index.of("compute:VirtualMachine"):
        profile = res.inputs.get("osProfile")
        if isinstance(profile, dict) and isinstance(profile.get("computerName"), str):
            yield from _computer_name(res, f"{P}.osProfile.computerName", profile["computerName"],
                                      COMPUTER_NAME_MAX[_os(profile)], _os(profile))
    for res in index.of("compute:VirtualMachineScaleSet"):
        vm_profile = res.inputs.get("virtualMachineProfile")
        profile = vm_profile.get("osProfile") if isinstance(vm_profile, dict) else None
        if isinstance(profile, dict) and isinstance(profile.get("computerNamePrefix"), str):
            yield from _computer_name(res, f"{P}.virtualMachineProfile.osProfile.computerNamePrefix",
                                      profile["computerNamePrefix"],
                                      COMPUTER_NAME_MAX[_os(profile)] - PREFIX_SUFFIX, _os(profile))


def _computer_name(res: PlannedResource, path: str, name: str, most: int,
                   os_name: str) -> Iterator[tuple[PlannedResource, str, str]]:
    if not 1 <= len(name) <= most:
        yield res, path, f"{os_name} computer name {name!r} is {len(name)} characters; at most {most}"
    elif not _COMPUTER_NAME.fullmatch(name):
        yield res, path, (f"computer name {name!r}: no spaces or special characters, not only digits, no "
                          "leading underscore, no trailing period or hyphen")


# ---- subnets ----------------------------------------------------------------------------------------------

# reserved subnet name -> (largest prefix length allowed, source)
RESERVED_SUBNETS: dict[str, tuple[int, str]] = {
    azure.FIREWALL_SUBNET: (26, FIREWALL_FAQ_URL),
    azure.FIREWALL_MANAGEMENT_SUBNET: (26, FIREWALL_FAQ_URL),
    azure.BASTION_SUBNET: (26, BASTION_URL),
    azure.GATEWAY_SUBNET: (27, GATEWAY_URL),
}
NO_NSG_SUBNETS: dict[str, str] = {azure.FIREWALL_SUBNET: FIREWALL_FAQ_URL,
                                  azure.FIREWALL_MANAGEMENT_SUBNET: FIREWALL_FAQ_URL, azure.GATEWAY_SUBNET: GATEWAY_URL}
NO_ROUTE_TABLE_SUBNETS: dict[str, str] = {azure.BASTION_SUBNET: BASTION_URL}


def _subnets(index: PlanIndex) -> Iterator[tuple[PlannedResource, str, str, dict[str, Any]]]:
    """(resource, JSON path of the subnet's properties, name, flattened subnet inputs): Subnet resources and
    subnets declared inside a virtual network."""
    for res in index.of("network:Subnet"):
        yield res, P, str(res.inputs.get("subnetName", "")), res.inputs
    for res in index.of("network:VirtualNetwork"):
        for i, sub in enumerate(_seq(res, res.inputs.get("subnets"), f"{P}.subnets")):
            if isinstance(sub, dict):
                yield res, f"{P}.subnets[{i}].properties", str(sub.get("name", "")), sub


def _prefixes(res: PlannedResource, path: str, subnet: dict[str, Any]) -> list[tuple[str, str]]:
    out = [("addressPrefix", subnet["addressPrefix"])] if isinstance(subnet.get("addressPrefix"), str) else []
    for i, prefix in enumerate(_seq(res, subnet.get("addressPrefixes"), f"{path}.addressPrefixes")):
        if isinstance(prefix, str):
            out.append((f"addressPrefixes[{i}]", prefix))
    return out


def _reserved_sizes(source: str) -> Finder:
    def finder(index: PlanIndex) -> Iterator[tuple[PlannedResource, str, str]]:
        for res, path, name, subnet in _subnets(index):
            reserved = RESERVED_SUBNETS.get(name)
            if reserved is None or reserved[1] != source:
                continue
            for key, prefix in _prefixes(res, path, subnet):
                try:
                    length = ipaddress.ip_network(prefix, strict=False).prefixlen
                except ValueError:
                    continue  # not an address: the schema or other rules judge it
                if length > reserved[0]:
                    yield res, f"{path}.{key}", f"{name} is {prefix}; it must be /{reserved[0]} or larger"
    return finder


def _subnet_attachment(key: str, table: dict[str, str], source: str, what: str) -> Finder:
    def finder(index: PlanIndex) -> Iterator[tuple[PlannedResource, str, str]]:
        for res, path, name, subnet in _subnets(index):
            if table.get(name) == source and subnet.get(key):
                yield res, f"{path}.{key}", f"{name} can't have {what}"
    return finder


def _bastion_nsg(index: PlanIndex) -> Iterator[tuple[PlannedResource, str, str]]:
    """An NSG on AzureBastionSubnet carries every rule Microsoft requires (estate.bastion): Azure refuses to create
    or update one without the control plane's rules, and the others keep the host healthy and updated."""
    for _, _, name, subnet in _subnets(index):
        ref = subnet.get("networkSecurityGroup")
        rid = ref.get("id") if isinstance(ref, dict) else None
        if name != azure.BASTION_SUBNET or not isinstance(rid, str):
            continue
        group = id_segment(rid, "resourceGroups")
        found = index.find("network:NetworkSecurityGroup", networkSecurityGroupName=last_segment(rid) or "",
                           **({"resourceGroupName": group} if group else {}))
        if found is None:
            continue  # an NSG outside the plan: not judged
        rules = [r for r in _seq(found, found.inputs.get("securityRules"), f"{P}.securityRules")
                 if isinstance(r, dict)]
        for p in bastion.missing(rules):
            source = "" if p.source == "*" else f" from {p.source}"
            destination = "" if p.destination == "*" else f" to {p.destination}"
            refused = "; Azure refuses the NSG without it" if p.refused_without else ""
            yield found, f"{P}.securityRules", (f"{found.name} is on AzureBastionSubnet but no rule allows "
                                                f"{p.direction.lower()} {', '.join(p.ports)}{source}{destination} "
                                                f"({p.name}: {p.description}){refused}")


# ---- NSG rules --------------------------------------------------------------------------------------------

NSG_PAIRS = (("sourceAddressPrefix", "sourceAddressPrefixes", "sourceApplicationSecurityGroups"),
             ("destinationAddressPrefix", "destinationAddressPrefixes", "destinationApplicationSecurityGroups"),
             ("sourcePortRange", "sourcePortRanges", None),
             ("destinationPortRange", "destinationPortRanges", None))
_PORT = re.compile(r"^(\*|\d{1,5}(-\d{1,5})?)$")


def _security_rules(index: PlanIndex) -> Iterator[tuple[PlannedResource, str, dict[str, Any]]]:
    for res in index.of("network:NetworkSecurityGroup"):
        for i, rule in enumerate(_seq(res, res.inputs.get("securityRules"), f"{P}.securityRules")):
            if isinstance(rule, dict):
                yield res, f"{P}.securityRules[{i}].properties", rule


def _nsg_priority(index: PlanIndex) -> Iterator[tuple[PlannedResource, str, str]]:
    seen: dict[tuple[str, str, float], str] = {}
    for res, path, rule in _security_rules(index):
        priority = rule.get("priority")
        if not _number(priority):
            continue  # the schema reports a missing or mistyped priority
        if not 100 <= priority <= 4096:
            yield res, f"{path}.priority", f"rule {rule.get('name')!r} has priority {priority:g}; allowed 100-4096"
        key = (res.urn, str(rule.get("direction")), float(priority))
        if key in seen:
            yield res, f"{path}.priority", (f"rule {rule.get('name')!r} has priority {priority:g}, as "
                                            f"{seen[key]!r} has, in direction {rule.get('direction')}")
        else:
            seen[key] = str(rule.get("name"))


def _nsg_fields(index: PlanIndex) -> Iterator[tuple[PlannedResource, str, str]]:
    for res, path, rule in _security_rules(index):
        for singular, plural, groups in NSG_PAIRS:
            given = [k for k in (singular, plural, groups) if k and rule.get(k) not in (None, "", [])]
            if len(given) > 1:
                yield res, f"{path}.{given[1]}", (f"rule {rule.get('name')!r} sets both {given[0]} and {given[1]}; "
                                                 "give one form")
            elif not given:
                yield res, f"{path}.{singular}", f"rule {rule.get('name')!r} sets neither {singular} nor {plural}"


def _nsg_ports(index: PlanIndex) -> Iterator[tuple[PlannedResource, str, str]]:
    for res, path, rule in _security_rules(index):
        for single, many in (("sourcePortRange", "sourcePortRanges"),
                             ("destinationPortRange", "destinationPortRanges")):
            values = [(single, rule.get(single))] + [(f"{many}[{i}]", v) for i, v in
                                                     enumerate(_seq(res, rule.get(many), f"{path}.{many}"))]
            for key, value in values:
                if value is None or not isinstance(value, str):
                    continue
                if not _port_ok(value) or (key.startswith(many) and value == "*"):
                    yield res, f"{path}.{key}", (f"rule {rule.get('name')!r}: port {value!r} is not '*', a port or "
                                                 "a range low-high within 0-65535" +
                                                 (" ('*' only in the singular field)" if value == "*" else ""))


def _port_ok(value: str) -> bool:
    if not _PORT.fullmatch(value):
        return False
    if value == "*":
        return True
    low, _, high = value.partition("-")
    return 0 <= int(low) <= int(high or low) <= 65535


# ---- backup of Trusted Launch VMs ---------------------------------------------------------------------------

STANDARD_POLICY_TL_API = "2025-01-01"  # the first REST API version that backs up Trusted Launch with Standard


def _backup_trusted_launch(index: PlanIndex) -> Iterator[tuple[PlannedResource, str, str]]:
    api = ARM_TYPES[_t("recoveryservices:ProtectedItem")].api_version
    if api >= STANDARD_POLICY_TL_API:
        return
    for item in index.of("recoveryservices:ProtectedItem"):
        props = _obj(item, item.inputs.get("properties"), P)
        vm_id, policy_id = props.get("sourceResourceId"), props.get("policyId")
        vm = index.find("compute:VirtualMachine", vmName=last_segment(vm_id) or "",
                        resourceGroupName=id_segment(vm_id, "resourceGroups") or "")
        policy = index.find("recoveryservices:ProtectionPolicy", policyName=last_segment(policy_id) or "",
                            vaultName=id_segment(policy_id, "vaults") or "")
        if vm is None or policy is None:
            continue
        security = _field(vm, vm.inputs, "securityProfile", P)
        if security.get("securityType") != "TrustedLaunch":
            continue
        policy_type = _obj(policy, policy.inputs.get("properties"), P).get("policyType")
        if policy_type != "V2":
            yield item, f"{P}.policyId", (
                f"VM {vm.name} is Trusted Launch and its backup policy {policy.name} has policyType "
                f"{policy_type or 'unset (Standard, V1)'}; REST API {api} protects Trusted Launch VMs only with "
                f"the Enhanced policy (policyType V2); Standard needs {STANDARD_POLICY_TL_API} or later")


# ---- Flexible scale sets ----------------------------------------------------------------------------------

def _flexible(index: PlanIndex) -> Iterator[tuple[PlannedResource, str, str]]:
    for res in index.of("compute:VirtualMachineScaleSet"):
        inputs = res.inputs
        if inputs.get("orchestrationMode") != "Flexible":
            continue
        if inputs.get("platformFaultDomainCount") is None:
            yield res, f"{P}.platformFaultDomainCount", "Flexible orchestration needs platformFaultDomainCount"
        if inputs.get("singlePlacementGroup") is True:
            yield res, f"{P}.singlePlacementGroup", "Flexible orchestration needs singlePlacementGroup false"
        profile = _field(res, inputs, "virtualMachineProfile", P)
        network = _field(res, profile, "networkProfile", f"{P}.virtualMachineProfile")
        if network.get("networkInterfaceConfigurations") and not network.get("networkApiVersion"):
            yield res, f"{P}.virtualMachineProfile.networkProfile.networkApiVersion", (
                "Flexible orchestration with network interface configurations needs networkApiVersion "
                "(2020-11-01 or later)")
        if _field(res, inputs, "upgradePolicy", P).get("mode") not in (None, "Manual"):
            yield res, f"{P}.upgradePolicy.mode", "Flexible orchestration supports only upgradePolicy mode Manual"


# ---- private endpoints ------------------------------------------------------------------------------------

PRIVATE_DNS_ZONES: dict[str, str] = {
    "vault": "privatelink.vaultcore.azure.net",
    "postgresqlServer": "privatelink.postgres.database.azure.com",
    "sqlServer": "privatelink.database.windows.net",
    "blob": "privatelink.blob.core.windows.net",
    "file": "privatelink.file.core.windows.net",
}


def _pe_zones(index: PlanIndex) -> Iterator[tuple[PlannedResource, str, str]]:
    for group in index.of("network:PrivateDnsZoneGroup"):
        endpoint = index.find("network:PrivateEndpoint",
                              privateEndpointName=str(group.inputs.get("privateEndpointName", "")),
                              resourceGroupName=str(group.inputs.get("resourceGroupName", "")))
        if endpoint is None:
            continue
        group_ids = {g for _, _, g in _group_ids(endpoint) if isinstance(g, str)}
        expected = {PRIVATE_DNS_ZONES[g] for g in group_ids if g in PRIVATE_DNS_ZONES}
        if not expected:
            continue
        configs = _seq(group, group.inputs.get("privateDnsZoneConfigs"), f"{P}.privateDnsZoneConfigs")
        for i, config in enumerate(configs):
            zone = last_segment(_obj(group, config, f"{P}.privateDnsZoneConfigs[{i}]").get("privateDnsZoneId"))
            if zone is not None and zone.lower() not in expected:
                yield group, f"{P}.privateDnsZoneConfigs[{i}].properties.privateDnsZoneId", (
                    f"endpoint {endpoint.name} connects group {sorted(group_ids)}, whose zone is "
                    f"{sorted(expected)}, not {zone}")
    for endpoint in index.of("network:PrivateEndpoint"):
        for path, _, group_id in _group_ids(endpoint):
            if not isinstance(group_id, str):
                continue  # the schema reports a group id that is not text
            if group_id not in PRIVATE_DNS_ZONES and group_id.lower() in {g.lower() for g in PRIVATE_DNS_ZONES}:
                yield endpoint, path, (
                    f"group id {group_id!r} is spelt differently from the service's sub-resource name")


def _group_ids(endpoint: PlannedResource) -> Iterator[tuple[str, int, Any]]:
    """(JSON path, index, value) of each group id of each of the endpoint's private link service connections."""
    conns = _seq(endpoint, endpoint.inputs.get("privateLinkServiceConnections"), f"{P}.privateLinkServiceConnections")
    for i, conn in enumerate(conns):
        path = f"{P}.privateLinkServiceConnections[{i}].properties"
        ids = _seq(endpoint, _obj(endpoint, conn, f"{P}.privateLinkServiceConnections[{i}]").get("groupIds"),
                   f"{path}.groupIds")
        for j, group_id in enumerate(ids):
            yield f"{path}.groupIds[{j}]", j, group_id


# ---- Azure Virtual Desktop --------------------------------------------------------------------------------

TOKEN_MIN = dt.timedelta(hours=1)
TOKEN_MAX = dt.timedelta(days=30)


def _host_pool(index: PlanIndex) -> Iterator[tuple[PlannedResource, str, str]]:
    for pool in index.of("desktopvirtualization:HostPool"):
        inputs = pool.inputs
        if inputs.get("hostPoolType") == "Pooled":
            limit = inputs.get("maxSessionLimit")
            if not _number(limit) or not limit >= 1:  # NaN is not 1 or more
                yield pool, f"{P}.maxSessionLimit", "a Pooled host pool needs maxSessionLimit of 1 or more"
            if inputs.get("loadBalancerType") not in ("BreadthFirst", "DepthFirst"):
                yield pool, f"{P}.loadBalancerType", "a Pooled host pool balances BreadthFirst or DepthFirst"
        if inputs.get("hostPoolType") == "Personal" and inputs.get("loadBalancerType") not in (None, "Persistent"):
            yield pool, f"{P}.loadBalancerType", "a Personal host pool's loadBalancerType is Persistent"


def _token_window(index: PlanIndex) -> Iterator[tuple[PlannedResource, str, str]]:
    for pool in index.of("desktopvirtualization:HostPool"):
        info = _field(pool, pool.inputs, "registrationInfo", P)
        expiry = info.get("expirationTime")
        if not isinstance(expiry, str) or expiry.startswith("["):
            continue
        try:
            when = dt.datetime.fromisoformat(expiry.replace("Z", "+00:00"))
        except ValueError:
            yield pool, f"{P}.registrationInfo.expirationTime", f"{expiry!r} is not an ISO 8601 time"
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        left = when - index.now
        if not TOKEN_MIN <= left <= TOKEN_MAX:
            yield pool, f"{P}.registrationInfo.expirationTime", (
                f"the registration token expires {expiry}, {left} after the plan's time {index.now.isoformat()}; "
                "it must be between 1 hour and 30 days ahead")


TOKEN_REF = "PrivateSettingsRef:RegistrationInfoToken"


def _dsc_extensions(index: PlanIndex) -> Iterator[tuple[PlannedResource, str, dict[str, Any]]]:
    for res in index.of("compute:VirtualMachineScaleSet"):
        vm_profile = _field(res, res.inputs, "virtualMachineProfile", P)
        profile = _field(res, vm_profile, "extensionProfile", f"{P}.virtualMachineProfile")
        extensions = _seq(res, profile.get("extensions"), f"{P}.virtualMachineProfile.extensionProfile.extensions")
        for i, ext in enumerate(extensions):
            if isinstance(ext, dict) and ext.get("type") == "DSC" and ext.get("publisher") == "Microsoft.Powershell":
                yield res, f"{P}.virtualMachineProfile.extensionProfile.extensions[{i}].properties", ext
    for res in index.of("compute:VirtualMachineExtension"):
        if res.inputs.get("type") == "DSC" and res.inputs.get("publisher") == "Microsoft.Powershell":
            yield res, P, res.inputs


def _dsc_token(index: PlanIndex) -> Iterator[tuple[PlannedResource, str, str]]:
    """The AddSessionHost configuration reads the token from `protectedSettings.Items.RegistrationInfoToken`
    through `settings.properties.registrationInfoTokenCredential` (Password `PrivateSettingsRef:...`), as
    Microsoft's templates wire it. A redacted `protectedSettings` ("[secret]") cannot be read: then only the
    settings half is judged."""
    for res, path, ext in _dsc_extensions(index):
        settings = _field(res, ext, "settings", path)
        if "AddSessionHost" not in str(settings.get("configurationFunction", "")):
            continue
        props = _field(res, settings, "properties", f"{path}.settings")
        credential = props.get("registrationInfoTokenCredential")
        if not isinstance(credential, dict) or credential.get("Password") != TOKEN_REF:
            yield res, f"{path}.settings.properties.registrationInfoTokenCredential", (
                f"the AddSessionHost DSC configuration finds no token: settings.properties."
                f"registrationInfoTokenCredential must be {{UserName: ..., Password: {TOKEN_REF!r}}}")
        protected = ext.get("protectedSettings")
        if isinstance(protected, dict):
            items = protected.get("Items")
            if not isinstance(items, dict) or "RegistrationInfoToken" not in items:
                yield res, f"{path}.protectedSettings.Items.RegistrationInfoToken", (
                    "the registration token must be protectedSettings.Items.RegistrationInfoToken; found keys "
                    f"{sorted(protected)}")
        pool_name = props.get("hostPoolName")
        # The reference is judged where the resources judged hold host pools (a whole stack); a lone resource
        # (a policy pack's per-resource look, a fixture) cannot show that its pool is missing.
        pools = index.of("desktopvirtualization:HostPool")
        if isinstance(pool_name, str) and pools and not index.find("desktopvirtualization:HostPool",
                                                                   hostPoolName=pool_name):
            yield res, f"{path}.settings.properties.hostPoolName", f"no host pool {pool_name!r} in the plan"


# ---- Azure Firewall policy --------------------------------------------------------------------------------

APPLICATION_PROTOCOLS = ("Http", "Https", "Mssql")


def _rule_groups(index: PlanIndex) -> Iterator[tuple[PlannedResource, int, dict[str, Any]]]:
    for group in index.of("network:FirewallPolicyRuleCollectionGroup"):
        for i, coll in enumerate(_seq(group, group.inputs.get("ruleCollections"), f"{P}.ruleCollections")):
            if isinstance(coll, dict):
                yield group, i, coll


def _fw_priority(index: PlanIndex) -> Iterator[tuple[PlannedResource, str, str]]:
    for group in index.of("network:FirewallPolicyRuleCollectionGroup"):
        priority = group.inputs.get("priority")
        if _number(priority) and not 100 <= priority <= 65000:
            yield group, f"{P}.priority", f"rule collection group priority {priority:g}; allowed 100-65000"
    for group, i, coll in _rule_groups(index):
        priority = coll.get("priority")
        if _number(priority) and not 100 <= priority <= 65000:
            yield group, f"{P}.ruleCollections[{i}].priority", (
                f"rule collection {coll.get('name')!r} priority {priority:g}; allowed 100-65000")


def _rules_of(index: PlanIndex) -> Iterator[tuple[PlannedResource, str, dict[str, Any]]]:
    for group, i, coll in _rule_groups(index):
        for j, rule in enumerate(_seq(group, coll.get("rules"), f"{P}.ruleCollections[{i}].rules")):
            if isinstance(rule, dict):
                yield group, f"{P}.ruleCollections[{i}].rules[{j}]", rule


def _fw_fqdn_tags(index: PlanIndex) -> Iterator[tuple[PlannedResource, str, str]]:
    for group, path, rule in _rules_of(index):
        if rule.get("fqdnTags") and rule.get("ruleType") != "ApplicationRule":
            yield group, f"{path}.fqdnTags", (f"rule {rule.get('name')!r} is a {rule.get('ruleType')}; FQDN tags "
                                              "exist only in application rules")


def _fw_app_protocols(index: PlanIndex) -> Iterator[tuple[PlannedResource, str, str]]:
    for group, path, rule in _rules_of(index):
        if rule.get("ruleType") != "ApplicationRule":
            continue
        for k, proto in enumerate(_seq(group, rule.get("protocols"), f"{path}.protocols")):
            kind = proto.get("protocolType") if isinstance(proto, dict) else None
            if kind not in APPLICATION_PROTOCOLS:
                yield group, f"{path}.protocols[{k}].protocolType", (
                    f"application rule {rule.get('name')!r} uses {kind!r}; application rules take "
                    f"{', '.join(APPLICATION_PROTOCOLS)} (other ports need a network rule)")


def _fw_dns_proxy(index: PlanIndex) -> Iterator[tuple[PlannedResource, str, str]]:
    for group, path, rule in _rules_of(index):
        if rule.get("ruleType") != "NetworkRule" or not rule.get("destinationFqdns"):
            continue
        policy = index.find("network:FirewallPolicy",
                            firewallPolicyName=str(group.inputs.get("firewallPolicyName", "")),
                            resourceGroupName=str(group.inputs.get("resourceGroupName", "")))
        dns = _field(policy, policy.inputs, "dnsSettings", P) if policy else {}
        if policy is not None and dns.get("enableProxy") is not True:
            yield group, f"{path}.destinationFqdns", (
                f"network rule {rule.get('name')!r} filters by FQDN; firewall policy {policy.name} must enable the "
                "DNS proxy (dnsSettings.enableProxy)")


# ---- Network Watcher flow logs ----------------------------------------------------------------------------

TRAFFIC_ANALYTICS_INTERVALS = (10, 60)  # minutes


def _flow_log_targets(index: PlanIndex) -> Iterator[tuple[PlannedResource, PlannedResource | None,
                                                          PlannedResource | None]]:
    """(flow log, its target virtual network, its storage account), each looked up in the plan by the names in
    the flow log's resource ids; None where the plan does not hold it (another stack planned alone)."""
    for log in index.of("network:FlowLog"):
        target, storage = log.inputs.get("targetResourceId"), log.inputs.get("storageId")
        vnet = index.find("network:VirtualNetwork", virtualNetworkName=last_segment(target) or "",
                          resourceGroupName=id_segment(target, "resourceGroups") or "")
        account = index.find("storage:StorageAccount", accountName=last_segment(storage) or "",
                             resourceGroupName=id_segment(storage, "resourceGroups") or "")
        yield log, vnet, account


def _region(res: PlannedResource | None) -> str | None:
    where = res.inputs.get("location") if res is not None else None
    return where.replace(" ", "").lower() if isinstance(where, str) and not where.startswith("[") else None


def _flow_log_storage(index: PlanIndex) -> Iterator[tuple[PlannedResource, str, str]]:
    """The storage account of a VNet flow log: in the VNet's region, standard tier (premium is not supported);
    the flow log itself lives in the Network Watcher of the VNet's region."""
    for log, vnet, account in _flow_log_targets(index):
        vnet_region, account_region, log_region = _region(vnet), _region(account), _region(log)
        if vnet_region and account_region and vnet_region != account_region:
            yield log, f"{P}.storageId", (f"storage account {account.name if account else ''} is in {account_region}; "
                                          f"the flow log's virtual network {vnet.name if vnet else ''} is in "
                                          f"{vnet_region}: the storage account must be in the VNet's region")
        if vnet_region and log_region and vnet_region != log_region:
            yield log, "$.location", (f"the flow log is in {log_region} and its virtual network in {vnet_region}; "
                                      "a flow log belongs to the Network Watcher of its target's region")
        sku = _field(account, account.inputs, "sku", "$").get("name") if account is not None else None
        if isinstance(sku, str) and not sku.startswith("Standard_"):
            yield log, f"{P}.storageId", (f"storage account {account.name if account else ''} is {sku}; flow logs "
                                          "need a standard storage account (premium is not supported)")


def _traffic_analytics(index: PlanIndex) -> Iterator[tuple[PlannedResource, str, str]]:
    """Traffic analytics processes every 10 or 60 minutes, into a workspace the flow log names by resource id
    and region (the region the workspace is in)."""
    for log in index.of("network:FlowLog"):
        analytics = _field(log, log.inputs, "flowAnalyticsConfiguration", P)
        config = _field(log, analytics, "networkWatcherFlowAnalyticsConfiguration", f"{P}.flowAnalyticsConfiguration")
        if config.get("enabled") is not True:
            continue
        path = f"{P}.flowAnalyticsConfiguration.networkWatcherFlowAnalyticsConfiguration"
        interval = config.get("trafficAnalyticsInterval")
        if _number(interval) and interval not in TRAFFIC_ANALYTICS_INTERVALS:
            yield log, f"{path}.trafficAnalyticsInterval", (
                f"traffic analytics interval {interval:g} minutes; allowed "
                f"{' or '.join(map(str, TRAFFIC_ANALYTICS_INTERVALS))}")
        workspace_id = config.get("workspaceResourceId")
        if not workspace_id:
            yield log, f"{path}.workspaceResourceId", "traffic analytics is enabled without a workspace"
            continue
        workspace = index.find("operationalinsights:Workspace", workspaceName=last_segment(workspace_id) or "",
                               resourceGroupName=id_segment(workspace_id, "resourceGroups") or "")
        region = config.get("workspaceRegion")
        if workspace is not None and isinstance(region, str) and _region(workspace) not in (None, region.lower()):
            yield log, f"{path}.workspaceRegion", (f"workspaceRegion is {region}; workspace {workspace.name} is in "
                                                   f"{_region(workspace)}")


# ---- the catalogue ----------------------------------------------------------------------------------------

RULES: tuple[Rule, ...] = (
    Rule("ARM-NAME", "resource and computer names within Azure's lengths and characters", NAME_RULES_URL, _names),
    Rule("ARM-SUBNET-FIREWALL-SIZE", "AzureFirewallSubnet is /26 or larger", FIREWALL_FAQ_URL,
         _reserved_sizes(FIREWALL_FAQ_URL)),
    Rule("ARM-SUBNET-BASTION-SIZE", "AzureBastionSubnet is /26 or larger", BASTION_URL, _reserved_sizes(BASTION_URL)),
    Rule("ARM-SUBNET-GATEWAY-SIZE", "GatewaySubnet is /27 or larger", GATEWAY_URL, _reserved_sizes(GATEWAY_URL)),
    Rule("ARM-SUBNET-FIREWALL-NSG", "no NSG on AzureFirewallSubnet", FIREWALL_FAQ_URL,
         _subnet_attachment("networkSecurityGroup", NO_NSG_SUBNETS, FIREWALL_FAQ_URL, "a network security group")),
    Rule("ARM-SUBNET-GATEWAY-NSG", "no NSG on GatewaySubnet", GATEWAY_URL,
         _subnet_attachment("networkSecurityGroup", NO_NSG_SUBNETS, GATEWAY_URL, "a network security group")),
    Rule("ARM-SUBNET-BASTION-ROUTES", "no route table on AzureBastionSubnet", BASTION_URL,
         _subnet_attachment("routeTable", NO_ROUTE_TABLE_SUBNETS, BASTION_URL, "a route table")),
    Rule("ARM-SUBNET-BASTION-NSG", "an NSG on AzureBastionSubnet carries every rule Azure Bastion requires",
         BASTION_NSG_URL, _bastion_nsg),
    Rule("ARM-NSG-PRIORITY", "NSG rule priorities 100-4096, unique per direction", NSG_URL, _nsg_priority),
    Rule("ARM-NSG-FIELDS", "an NSG rule gives the singular or the plural form of a field, not both", NSG_URL,
         _nsg_fields),
    Rule("ARM-NSG-PORTS", "NSG port ranges are '*', a port or low-high within 0-65535", NSG_URL, _nsg_ports),
    Rule("ARM-BACKUP-TRUSTED-LAUNCH", "Trusted Launch VMs backed up with the Enhanced policy below REST 2025-01-01",
         BACKUP_URL, _backup_trusted_launch),
    Rule("ARM-VMSS-FLEXIBLE", "Flexible scale sets: fault domain count, no single placement group, "
         "networkApiVersion", FLEX_URL, _flexible),
    Rule("ARM-PE-DNS-ZONE", "a private endpoint's DNS zone is the one of its group id", PE_DNS_URL, _pe_zones),
    Rule("ARM-AVD-HOSTPOOL", "Pooled host pools: maxSessionLimit and a breadth/depth-first balancer", AVD_HOSTS_URL,
         _host_pool),
    Rule("ARM-AVD-TOKEN-WINDOW", "registration token expires between 1 hour and 30 days ahead", AVD_HOSTS_URL,
         _token_window),
    Rule("ARM-AVD-DSC-TOKEN", "the DSC AddSessionHost extension reads the token as Microsoft's templates wire it",
         AVD_TEMPLATES_URL, _dsc_token),
    Rule("ARM-FW-PRIORITY", "rule collection group and collection priorities 100-65000", FW_RULES_URL, _fw_priority),
    Rule("ARM-FW-FQDN-TAGS", "FQDN tags only in application rules", FW_FQDN_TAGS_URL, _fw_fqdn_tags),
    Rule("ARM-FW-APP-PROTOCOL", "application rules use Http, Https or Mssql", FW_FQDN_NETWORK_URL, _fw_app_protocols),
    Rule("ARM-FW-DNS-PROXY", "network rules with destination FQDNs need the policy's DNS proxy", FW_FQDN_NETWORK_URL,
         _fw_dns_proxy),
    Rule("ARM-FLOWLOG-STORAGE", "a VNet flow log's storage account is standard and in the VNet's region, and the "
         "flow log in the VNet's region", VNET_FLOW_LOGS_URL, _flow_log_storage),
    Rule("ARM-FLOWLOG-TRAFFIC-ANALYTICS", "traffic analytics every 10 or 60 minutes into a named workspace in its "
         "own region", TRAFFIC_ANALYTICS_URL, _traffic_analytics),
)
