"""Everything a stack needs, derived from framework.yaml, inventories/ and the stack config, and validated
before any resource is declared.

`build(estate, stack, config)` returns `HubProps` (stack `shared`) or `CouncilProps`; every problem it finds
is collected into one `EstateError` (one line per problem, naming the file and field), so a bad spec or a
missing config value never leaves a half-declared stack. Nothing here imports Pulumi or azure-native.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address

from estate import ipam
from estate.azure import BASTION_SUBNET, FIREWALL_SUBNET, NO_NSG_SUBNETS, PLATFORM_SUBNETS, RESERVED_AT_START
from estate.errors import EstateError, Problem
from estate.loader import Estate, host_addresses
from estate.models import ImageControl
from estate.stackfile import (
    CFG_ADMIN_GROUP,
    CFG_ADMIN_GROUP_NAME,
    CFG_AVD_SERVICE_PRINCIPAL,
    CFG_COUNCIL,
    CFG_HUB_STACK,
    CFG_KEY_VAULT_GENERATION,
    CFG_LOCATION,
    CFG_REGISTRATION_EXPIRY,
    CFG_SPOKES,
    CFG_SSH_KEY,
    CFG_USERS_GROUP,
)

from .flows import (
    BASELINE_PRIORITY,
    Egress,
    FirewallRule,
    RuleSpec,
    bastion_rules,
    egress_rules,
    firewall_rules,
    segment_rules,
)

PROJECT = "shared-estate"
HUB = ipam.HUB


# Which VLAN each kind of machine joins comes from framework.yaml `onboarding.hosts` (role -> VLAN).
ROLE_SESSION_HOSTS = "thin_client"  # AVD session hosts sit where the council's desktops sit
ROLE_SERVERS = "app_server"  # council servers, unless the council's hosts.yml places one elsewhere
ROLE_SERVICES = "dc_services"  # the council's infrastructure services: Key Vault private endpoint
ROLE_HELPDESK = "helpdesk"  # the hub host (inventories/shared/hosts.yml) that runs the shared helpdesk


# Stack config keys, in the project namespace unless they carry their own (`pulumi config set KEY VALUE`): one list,
# in estate.stackfile, which also refuses a stack file that sets any other.
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")

# PostgreSQL flexible server tiers by SKU family (Standard_B2s -> Burstable).
_PG_TIERS = {"B": "Burstable", "D": "GeneralPurpose", "E": "MemoryOptimized"}


@dataclass(frozen=True)
class StackConfig:
    """The stack's Pulumi config: only what Pulumi needs and the estate cannot say (region, tenant ids)."""

    stack: str
    location: str | None
    council: str | None = None
    hub_stack: str | None = None
    admin_group: str | None = None
    admin_group_name: str | None = None
    desktop_users_group: str | None = None
    avd_service_principal: str | None = None
    ssh_public_key: str | None = None
    registration_expiry: str | None = None
    key_vault_generation: str | None = None  # a positive integer; unset is 1
    spokes: tuple[str, ...] | None = None  # hub: councils whose spoke VNet is deployed (the hub connects those)


@dataclass(frozen=True)
class Subnet:
    segment: str  # VLAN or hub segment name
    name: str  # Azure subnet name
    prefix: str
    vlan_id: int | None
    nsg: bool  # False for AzureFirewallSubnet and GatewaySubnet (Azure refuses one)
    rules: tuple[RuleSpec, ...]
    platform: bool = False  # one of Azure's platform subnets: no route table, Azure's default outbound access


@dataclass(frozen=True)
class Image:
    publisher: str
    offer: str
    sku: str
    version: str

    @classmethod
    def of(cls, control: ImageControl) -> Image:
        return cls(control.publisher, control.offer, control.sku, control.version)


@dataclass(frozen=True)
class Server:
    name: str
    role: str
    size: str
    segment: str
    private_ip: str | None  # static address from hosts.yml, else None (Azure allocates)


@dataclass(frozen=True)
class Backup:
    frequency: str
    time: str
    daily_days: int
    weekly_weeks: int


@dataclass(frozen=True)
class FlowLogs:
    retention_days: int
    traffic_analytics_minutes: int
    storage_sku: str


@dataclass(frozen=True)
class Common:
    """What every component of a stack shares: the site, region, tags and naming."""

    key: str  # "shared" or the council key
    name: str  # display name
    location: str
    supernet: str
    block: str
    subnets: tuple[Subnet, ...]
    tag_values: Mapping[str, str]  # every required tag but `service`
    admin_group: str
    ssh_public_key: str
    server_image: Image
    encryption_at_host: bool
    backup: Backup
    key_vault_sku: str
    key_vault_soft_delete_days: int
    flow_logs: FlowLogs

    def tags(self, service: str) -> dict[str, str]:
        return {**self.tag_values, "service": service}

    def rg(self, service: str) -> str:
        return rg_name(self.key, service)


@dataclass(frozen=True)
class Spoke:
    """A council's spoke as the hub stack knows it, by the naming convention (`names`) alone: the hub connects it
    (both peerings, its links on the hub's private DNS zones) and pins its subnets to the route table and NSGs its
    council's stack gives them (an Azure Policy deny assignment on the spoke's network resource group)."""

    key: str
    rg: str  # the spoke's network resource group
    vnet: str
    route_table: str
    nsgs: tuple[str, ...]  # the NSG of each of its subnets that has one


@dataclass(frozen=True)
class HubProps:
    common: Common
    firewall_sku: str
    firewall_ip: str
    bastion_sku: str
    firewall_rules: tuple[FirewallRule, ...]
    egress: Egress  # framework.yaml network.egress: the firewall policy's application and network rules
    log_retention_days: int
    log_sku: str
    helpdesk: HelpdeskProps
    admin_group_name: str  # the operations group's Entra display name: the helpdesk database's administrator
    flow_log_storage: str  # the storage account (a global name) that keeps every VNet's flow logs
    spokes: tuple[Spoke, ...]  # config `spokes`: the councils whose spoke is deployed, for the hub to connect


@dataclass(frozen=True)
class HelpdeskProps:
    vm_name: str
    segment: str
    private_ip: str
    vm_size: str
    db_sku: str
    db_tier: str
    db_version: str
    db_storage_gb: int
    db_backup_days: int
    db_server_name: str
    platform: str


@dataclass(frozen=True)
class DesktopProps:
    session_hosts: int
    segment: str
    size: str
    image: Image
    host_pool_type: str
    load_balancer_type: str
    preferred_app_group_type: str
    max_sessions: int
    start_vm_on_connect: bool
    validation_environment: bool
    usb_storage_blocked: bool
    automatic_updates: bool
    registration_expiry: str
    computer_name_prefix: str
    users_group: str
    avd_service_principal: str  # powers session hosts on when start_vm_on_connect


@dataclass(frozen=True)
class CouncilProps:
    common: Common
    code: str
    hub_stack: str
    servers: tuple[Server, ...]
    services_segment: str
    desktop: DesktopProps
    key_vault_name: str


Props = HubProps | CouncilProps


def session_host_count(desktop_users: int, concurrency: float, max_sessions_per_host: int) -> int:
    """Session hosts for a council: concurrent users (rounded up) over sessions per host (rounded up)."""
    concurrent = math.ceil(round(desktop_users * concurrency, 6))
    return math.ceil(concurrent / max_sessions_per_host)


def firewall_address(prefix: str) -> str:
    """Azure Firewall takes the first address Azure leaves free in AzureFirewallSubnet (.4)."""
    return str(ipam.parse_network(prefix).network_address + RESERVED_AT_START)


def vnet_name(key: str) -> str:
    return f"vnet-{key}"


def route_table_name(key: str) -> str:
    return f"rt-{key}"


def nsg_name(key: str, segment: str) -> str:
    return f"nsg-{key}-{segment}"


def rg_name(key: str, service: str) -> str:
    return f"rg-{key}-{service}"


def deterministic_guid(*parts: str) -> str:
    """A stable GUID for names Azure wants as GUIDs (role assignments): same inputs, same name."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "shared-estate:" + "/".join(parts)))


def key_vault_name(key: str, consortium: str, generation: int = 1) -> str:
    """Key Vault names are global, 3-24 characters: kv-<key, cut>-<6 hex of the consortium, key and generation>.
    A deleted vault keeps its name for its soft-delete days (purge protection forbids purging it), so a council
    that rebuilds its vault sooner takes the next generation; generation 1 keeps the name vaults always had."""
    what = f"{consortium}/{key}" if generation == 1 else f"{consortium}/{key}/{generation}"
    digest = uuid.uuid5(uuid.NAMESPACE_URL, what).hex[:6]
    return f"kv-{key[:13].rstrip('-')}-{digest}"


def storage_account_name(consortium: str, what: str) -> str:
    """Storage account names are global, 3-24 lower-case letters and digits: st<what><12 hex of consortium>."""
    digest = uuid.uuid5(uuid.NAMESPACE_URL, f"{consortium}/{what}").hex[:12]
    return f"st{what}{digest}"[:24]


def global_name(prefix: str, consortium: str, what: str) -> str:
    digest = uuid.uuid5(uuid.NAMESPACE_URL, f"{consortium}/{what}").hex[:8]
    return f"{prefix}-{what}-{digest}"


class _Problems:
    def __init__(self, estate: Estate, stack: str) -> None:
        self.estate = estate
        self.stack_file = f"Pulumi.{stack}.yaml"
        self.items: list[Problem] = []

    def config(self, key: str, message: str) -> None:
        self.items.append(Problem(self.stack_file, 0, key, message))

    def framework(self, loc: tuple[str | int, ...], message: str) -> None:
        src = self.estate.framework_source
        self.items.append(Problem(src.file, src.line(loc), _dotted(loc), message))

    def raise_if_any(self) -> None:
        if self.items:
            raise EstateError(self.items)


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _guid(problems: _Problems, key: str, value: str | None, what: str) -> str:
    if not value:
        problems.config(f"{PROJECT}:{key}", f"not set: the Entra object id of {what} "
                                            f"(pulumi config set {key} <object-id>)")
        return ""
    if not _GUID.fullmatch(value):
        problems.config(f"{PROJECT}:{key}", f"{value!r} is not an object id (a GUID)")
    return value


def build(estate: Estate, stack: str, config: StackConfig) -> Props:
    """The validated props of stack `stack`; raises EstateError listing every problem."""
    problems = _Problems(estate, stack)
    fw = estate.framework
    key = HUB if stack == HUB else (config.council or stack)
    if stack == HUB and config.council not in (None, HUB):
        problems.config(f"{PROJECT}:{CFG_COUNCIL}", "the hub stack 'shared' takes no council")
    if stack != HUB and config.council and config.council != stack:
        problems.config(f"{PROJECT}:{CFG_COUNCIL}",
                        f"{config.council!r} differs from the stack name {stack!r}: a council's stack is its key")
    if key != HUB:
        estate.council(key)  # unknown council: its own one-line error, listing the known ones

    regions = fw.data_centre.regions
    location = config.location
    if not location:
        problems.config(CFG_LOCATION, f"not set (pulumi config set {CFG_LOCATION} {regions.primary})")
        location = regions.primary
    elif location not in regions.allowed:
        problems.config(CFG_LOCATION, f"{location!r} is not an approved region "
                                      f"(framework control {regions.id}: {', '.join(regions.allowed)})")

    tag_values: dict[str, str] = {}
    sources = {
        "council": key,
        "cost-centre": "consortium" if key == HUB else estate.council(key).council.code,
        "framework-version": fw.version,
    }
    for i, tag in enumerate(fw.security.tagging.required):
        if tag == "service":
            continue
        if tag not in sources:
            problems.framework(("security", "tagging", "required", i),
                               f"the stacks have no value for required tag {tag!r} "
                               f"(known: council, service, cost-centre, framework-version)")
            continue
        tag_values[tag] = sources[tag]

    site = estate.addresses.site(key)
    subnets = tuple(
        Subnet(
            segment=seg.name,
            name=seg.azure_name,
            prefix=str(seg.network),
            vlan_id=seg.vlan_id,
            nsg=seg.azure_name not in NO_NSG_SUBNETS,
            rules=_subnet_rules(estate, key, seg.name, seg.azure_name),
            platform=seg.azure_name in PLATFORM_SUBNETS,
        )
        for seg in site.segments
    )
    for s in subnets:
        if any(r.priority >= BASELINE_PRIORITY and not r.baseline for r in s.rules):
            problems.framework(("network", "flows"), f"segment {s.segment} needs more allow rules than an NSG's "
                                                     f"priority band holds")

    dc = fw.data_centre
    backup = Backup(dc.backup.frequency, dc.backup.time, dc.backup.retention_days, dc.backup.weekly_retention_weeks)
    admin_group = _guid(problems, CFG_ADMIN_GROUP, config.admin_group,
                        "the consortium operations group" if key == HUB else f"{key}'s administrators group")
    if not config.ssh_public_key:
        problems.config(f"{PROJECT}:{CFG_SSH_KEY}",
                        "not set: the administrators' SSH public key for Linux VMs "
                        f"(pulumi config set {CFG_SSH_KEY} \"$(cat ~/.ssh/id_ed25519.pub)\")")
    common = Common(
        key=key,
        name="Shared Estate hub" if key == HUB else estate.council(key).council.name,
        location=location,
        supernet=fw.network.supernet,
        block=str(site.block),
        subnets=subnets,
        tag_values=tag_values,
        admin_group=admin_group,
        ssh_public_key=config.ssh_public_key or "",
        server_image=Image.of(dc.server_image),
        encryption_at_host=dc.encryption_at_host.required,
        backup=backup,
        key_vault_sku=dc.key_vault.sku,
        key_vault_soft_delete_days=dc.key_vault.soft_delete_days,
        flow_logs=FlowLogs(fw.network.flow_logs.retention_days, fw.network.flow_logs.traffic_analytics_minutes,
                           fw.network.flow_logs.storage_sku),
    )
    props: Props = _hub(estate, common, config, problems) if key == HUB else _council(estate, common, config, problems)
    problems.raise_if_any()
    return props


def _subnet_rules(estate: Estate, key: str, segment: str, azure_name: str) -> tuple[RuleSpec, ...]:
    if azure_name == BASTION_SUBNET:
        return tuple(bastion_rules(estate))
    if azure_name in PLATFORM_SUBNETS:
        return ()
    return tuple(segment_rules(estate, key, segment))


def _segment_by_azure_name(estate: Estate, azure_name: str, problems: _Problems) -> tuple[int, str | None]:
    for i, seg in enumerate(estate.framework.network.hub.segments):
        if seg.azure_name == azure_name:
            if not seg.sku:
                problems.framework(("network", "hub", "segments", i, "sku"),
                                   f"the {azure_name} segment needs `sku:` (the appliance SKU the hub deploys)")
            return i, seg.sku
    problems.framework(("network", "hub", "segments"), f"the hub needs a segment with azure_name {azure_name}")
    return -1, None


def _hub(estate: Estate, common: Common, config: StackConfig, problems: _Problems) -> HubProps:
    fw = estate.framework
    if not config.admin_group_name:
        problems.config(f"{PROJECT}:{CFG_ADMIN_GROUP_NAME}",
                        "not set: the display name of the consortium operations group, the helpdesk database's "
                        f"Entra administrator (pulumi config set {CFG_ADMIN_GROUP_NAME} <group display name>)")
    _, firewall_sku = _segment_by_azure_name(estate, FIREWALL_SUBNET, problems)
    _, bastion_sku = _segment_by_azure_name(estate, BASTION_SUBNET, problems)
    firewall_subnet = next((s for s in common.subnets if s.name == FIREWALL_SUBNET), None)
    platform = fw.helpdesk.platform
    helpdesk = _helpdesk_host(estate, problems)
    family = re.match(r"^Standard_([A-Z])", platform.database_sku)
    db_tier = _PG_TIERS.get(family.group(1), "") if family else ""
    if not db_tier:
        problems.framework(("helpdesk", "platform", "database_sku"),
                           f"{platform.database_sku!r} is not a PostgreSQL flexible server SKU "
                           f"(Standard_B..., Standard_D..., Standard_E...)")
    if platform.vm_size not in fw.data_centre.vm_skus.allowed:
        problems.framework(("helpdesk", "platform", "vm_size"),
                           f"{platform.vm_size!r} is not an approved server SKU "
                           f"(control {fw.data_centre.vm_skus.id}: {', '.join(fw.data_centre.vm_skus.allowed)})")
    return HubProps(
        common=common,
        firewall_sku=firewall_sku or "",
        firewall_ip=firewall_address(firewall_subnet.prefix) if firewall_subnet else "",
        bastion_sku=bastion_sku or "",
        firewall_rules=tuple(firewall_rules(estate)),
        egress=egress_rules(estate),
        log_retention_days=fw.data_centre.log_analytics.retention_days,
        log_sku=fw.data_centre.log_analytics.sku,
        helpdesk=HelpdeskProps(
            vm_name=helpdesk[0],
            segment=helpdesk[1],
            private_ip=helpdesk[2],
            vm_size=platform.vm_size,
            db_sku=platform.database_sku,
            db_tier=db_tier,
            db_version=platform.database_version,
            db_storage_gb=platform.database_storage_gb,
            # flexible servers keep 7 to 35 days of backups: the spec's retention, capped
            db_backup_days=max(7, min(35, fw.data_centre.backup.retention_days)),
            db_server_name=global_name("psql", fw.name, "helpdesk"),
            platform=f"{platform.name} {platform.version}",
        ),
        admin_group_name=config.admin_group_name or "",
        flow_log_storage=storage_account_name(fw.name, "flowlogs"),
        spokes=_spokes(estate, config, problems),
    )


def _spokes(estate: Estate, config: StackConfig, problems: _Problems) -> tuple[Spoke, ...]:
    out = []
    for i, key in enumerate(config.spokes or ()):
        if key not in estate.councils:
            problems.config(f"{PROJECT}:{CFG_SPOKES}[{i}]", f"{key!r} is not a council in inventories/ "
                                                           f"(known: {', '.join(sorted(estate.councils))})")
            continue
        segments = estate.addresses.site(key).segments
        out.append(Spoke(key=key, rg=rg_name(key, "network"), vnet=vnet_name(key), route_table=route_table_name(key),
                         nsgs=tuple(nsg_name(key, seg.name) for seg in segments
                                    if seg.azure_name not in NO_NSG_SUBNETS)))
    return tuple(out)


def _helpdesk_host(estate: Estate, problems: _Problems) -> tuple[str, str, str]:
    source = estate.hub_hosts_source
    where = source.file if source else f"inventories/{HUB}/hosts.yml"
    for name, role, seg, address in host_addresses(estate, HUB):
        if role == ROLE_HELPDESK:
            _check_azure_address(seg, address, problems, name, where)
            return name, seg.name, str(address)
    problems.items.append(Problem(where, 0, "hosts", f"no host with role {ROLE_HELPDESK}: the hub stack puts the "
                                                     "shared helpdesk VM where that host is"))
    return "", "", ""


def _check_azure_address(seg: ipam.Segment, address: IPv4Address, problems: _Problems, host: str,
                         where: str) -> None:
    if int(address) - int(seg.network.network_address) < RESERVED_AT_START:
        problems.items.append(Problem(where, 0, host, f"{address} is one of the addresses Azure keeps "
                                                      f"in {seg.network} (.0 to .3): use address_index >= 4"))


def _role_vlan(estate: Estate, role: str, problems: _Problems) -> str:
    onboarding = estate.framework.onboarding
    for host in onboarding.hosts if onboarding else []:
        if host.role == role:
            return host.vlan
    problems.framework(("onboarding", "hosts"), f"no VLAN for role {role}: the stacks place machines by "
                                                "onboarding.hosts (role -> VLAN)")
    return ""


def _council(estate: Estate, common: Common, config: StackConfig, problems: _Problems) -> CouncilProps:
    fw = estate.framework
    record = estate.council(common.key)
    council = record.council
    dc = fw.data_centre
    servers_vlan = _role_vlan(estate, ROLE_SERVERS, problems)
    services_vlan = _role_vlan(estate, ROLE_SERVICES, problems)
    session_vlan = _role_vlan(estate, ROLE_SESSION_HOSTS, problems)
    placed = {name: (seg, address) for name, _, seg, address in host_addresses(estate, common.key)}
    servers = []
    for asset in council.assets.servers:
        size = asset.sku if asset.sku in dc.vm_skus.allowed else dc.vm_skus.default
        if asset.name in placed:
            seg, address = placed[asset.name]
            hosts_file = record.hosts_source.file if record.hosts_source else ""
            _check_azure_address(seg, address, problems, asset.name, hosts_file)
            servers.append(Server(asset.name, asset.role, size, seg.name, str(address)))
        else:
            servers.append(Server(asset.name, asset.role, size, servers_vlan, None))
    avd = fw.desktop.avd
    users_group = _guid(problems, CFG_USERS_GROUP, config.desktop_users_group, f"{common.key}'s desktop users group")
    avd_principal = _guid(problems, CFG_AVD_SERVICE_PRINCIPAL, config.avd_service_principal,
                          "the Azure Virtual Desktop service principal in this tenant (app id "
                          "9cdead84-a844-4324-93f2-b2e6bb768d07: az ad sp show --id <app id> --query id)"
                          ) if avd.start_vm_on_connect else ""
    expiry = config.registration_expiry or ""
    if not _RFC3339.fullmatch(expiry):
        problems.config(f"{PROJECT}:{CFG_REGISTRATION_EXPIRY}", f"{expiry!r} is not a UTC time like "
                                                               "2026-12-01T00:00:00Z")
    desktop = DesktopProps(
        session_hosts=session_host_count(council.users.desktop, avd.concurrency, avd.max_sessions_per_host),
        segment=session_vlan,
        size=fw.desktop.vm_sizes.default,
        image=Image.of(fw.desktop.image),
        host_pool_type=avd.host_pool_type,
        load_balancer_type=avd.load_balancer_type,
        preferred_app_group_type=avd.preferred_app_group_type,
        max_sessions=avd.max_sessions_per_host,
        start_vm_on_connect=avd.start_vm_on_connect,
        validation_environment=avd.validation_environment,
        usb_storage_blocked=fw.desktop.usb_storage.blocked,
        automatic_updates=fw.desktop.updates.automatic,
        registration_expiry=expiry,
        # Windows computer names are 15 characters; a flexible scale set appends 6: avd + the code's last 6 digits
        computer_name_prefix=f"avd{council.code[-6:]}".lower(),
        users_group=users_group,
        avd_service_principal=avd_principal,
    )
    generation = (config.key_vault_generation or "1").strip()
    if not generation.isdigit() or int(generation) < 1:
        problems.config(f"{PROJECT}:{CFG_KEY_VAULT_GENERATION}", f"{generation!r} is not a positive whole number "
                                                                "(the Key Vault's generation; 1 unless rebuilt)")
        generation = "1"
    hub_stack = config.hub_stack or ""
    if hub_stack.count("/") != 2:
        problems.config(f"{PROJECT}:{CFG_HUB_STACK}", f"{hub_stack!r} is not a stack reference 'org/project/stack'")
    return CouncilProps(
        common=common,
        code=council.code,
        hub_stack=hub_stack,
        servers=tuple(servers),
        services_segment=services_vlan,
        desktop=desktop,
        key_vault_name=key_vault_name(common.key, fw.name, int(generation)),
    )
