"""pydantic models of the framework spec (framework.yaml) and of a council's inventory.

Every model forbids unknown keys and is strict about types: a typo in a YAML file is an error with
its file and line (see `estate.loader`), never a silently ignored setting.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)


class FieldError(ValueError):
    """A model-level check that knows which sub-field is wrong: the loader reports that field's line."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class Strict(BaseModel):
    # strict: no true for a number, no "3" for 3; allow_inf_nan=False: NaN and infinity are not numbers here.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


def _network(value: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"not an IPv4 network in CIDR form: {exc}") from None
    return str(net)


Cidr = Annotated[str, AfterValidator(_network)]
# A name that becomes a folder, a stack, a VLAN or an Azure resource name: a council key is one.
SLUG = r"[a-z][a-z0-9-]*[a-z0-9]"
SLUG_MAX = 40
Slug = Annotated[str, Field(pattern=rf"^{SLUG}$", max_length=SLUG_MAX)]
COUNCIL_KEY_RULE = f"lower-case letters, digits and '-', 2 to {SLUG_MAX} characters"


def is_council_key(name: str) -> bool:
    """A council key (a folder under inventories/, a stack name): the whole name, no trailing newline."""
    return len(name) <= SLUG_MAX and re.fullmatch(SLUG, name) is not None
PrefixLen = Annotated[int, Field(ge=8, le=30)]
# mandatory_on_create: a new resource (one the deployed state does not hold) must pass, an existing one only warns
Enforcement = Literal["mandatory", "mandatory_on_create", "advisory", "disabled"]
ControlId = Annotated[str, Field(pattern=r"^\d+\.\d+$")]
_PORT = re.compile(r"(\d{1,5})(?:-(\d{1,5}))?")


def _port(value: str) -> str:
    match = _PORT.fullmatch(value)
    if not match:
        raise ValueError("a port is a number or a range 'LOW-HIGH'")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if not 1 <= low <= high <= 65535:
        raise ValueError("ports run from 1 to 65535, low before high")
    return value


Port = Annotated[str, AfterValidator(_port)]


# --------------------------------------------------------------------------- framework


class Standard(Strict):
    id: str
    title: str


class Control(Strict):
    """A clause of the framework: id (section.number), title, the standard clause, enforcement."""

    id: ControlId
    title: str
    clause: str
    enforcement: Enforcement

    @field_validator("clause")
    @classmethod
    def _clause_names_a_standard(cls, value: str) -> str:
        if ":" not in value:
            raise ValueError("a clause reads 'STANDARD: clause', e.g. 'CE: Firewalls'")
        return value


class HubSegment(Strict):
    name: Slug
    azure_name: str
    prefix: PrefixLen
    purpose: str
    # The SKU of the platform appliance in this segment (Azure Firewall tier, Bastion SKU); read by stacks/.
    sku: str | None = None


class Hub(Strict):
    block: Cidr
    segments: list[HubSegment] = Field(min_length=1)


HostRole = Literal["thin_client", "app_server", "dc_services", "router", "helpdesk", "log_collector"]


class Vlan(Strict):
    id: Annotated[int, Field(ge=2, le=4094)]
    name: Slug
    prefix: PrefixLen
    purpose: str


FlowScope = Literal["intra", "hub", "inter", "hub-internal"]


class Flow(Strict):
    id: Annotated[str, Field(pattern=r"^FL-\d{2,3}$")]
    description: str
    scope: FlowScope
    source: str
    destination: str
    protocol: Literal["tcp", "udp"]
    ports: list[Port] = Field(min_length=1)
    # `administration`: a path administrators use (network.administration names its sources and ports)
    kind: Literal["service", "administration"] = "service"

    @property
    def source_is_hub(self) -> bool:
        return self.source.startswith("hub/")

    @property
    def destination_is_hub(self) -> bool:
        return self.destination.startswith("hub/")


# An FQDN Azure Firewall can match: labels of letters, digits and hyphens, a leading `*.` wildcard, or `*` alone
# (learn.microsoft.com/azure/firewall/firewall-faq "How do wildcards work in target URLs and target FQDNs").
Fqdn = Annotated[str, Field(pattern=r"^(\*|(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})$")]
Tag = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9.]*$", max_length=80)]
AppProtocol = Annotated[str, Field(pattern=r"^(Http|Https):\d{1,5}$")]


class ApplicationEgress(Strict):
    """An Azure Firewall application rule: HTTP(S) to FQDNs or FQDN tags."""

    protocols: list[AppProtocol] = Field(min_length=1)  # "Https:443", "Http:80"
    fqdns: list[Fqdn] = []
    fqdn_tags: list[Tag] = []

    @model_validator(mode="after")
    def _destination(self) -> ApplicationEgress:
        if not self.fqdns and not self.fqdn_tags:
            raise ValueError("an application purpose names fqdns or fqdn_tags")
        for i, text in enumerate(self.protocols):
            if not 1 <= int(text.split(":")[1]) <= 65535:
                raise FieldError(("protocols", i), "ports run from 1 to 65535")
        return self

    @property
    def ports(self) -> list[str]:
        return sorted({p.split(":")[1] for p in self.protocols}, key=int)


class NetworkEgress(Strict):
    """An Azure Firewall network rule: TCP/UDP ports to FQDNs (resolved by the firewall's DNS proxy) or
    service tags. FQDN tags exist only in application rules (learn.microsoft.com/azure/firewall/fqdn-tags)."""

    protocol: Literal["tcp", "udp"]
    ports: list[Port] = Field(min_length=1)
    fqdns: list[Fqdn] = []
    service_tags: list[Tag] = []

    @model_validator(mode="after")
    def _destination(self) -> NetworkEgress:
        if not self.fqdns and not self.service_tags:
            raise ValueError("a network purpose names fqdns or service_tags")
        if "*" in self.fqdns:
            raise FieldError(("fqdns",), "a network rule cannot allow every FQDN")
        return self


class EgressPurpose(Strict):
    """A named reason to leave the estate for the internet: who may (council VLANs, hub/<segment>), what to."""

    name: Slug
    description: str
    sources: list[str] = Field(min_length=1)
    reference: Annotated[str, Field(pattern=r"^https://")]  # the public page that names these destinations
    application: ApplicationEgress | None = None
    network: NetworkEgress | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> EgressPurpose:
        if (self.application is None) == (self.network is None):
            raise ValueError("a purpose is either `application` (HTTP/S to FQDNs) or `network` (TCP/UDP)")
        return self

    @property
    def protocol(self) -> str:
        return "tcp" if self.application is not None else self.network.protocol  # type: ignore[union-attr]

    @property
    def ports(self) -> list[str]:
        return self.application.ports if self.application is not None else list(self.network.ports)  # type: ignore[union-attr]


class EgressControl(Control):
    purposes: list[EgressPurpose] = Field(min_length=1)


class AdministrationControl(Control):
    """Who administers hosts and on which ports: every `administration` flow starts at one of `sources`."""

    sources: list[str] = Field(min_length=1)
    linux_port: Port
    windows_port: Port


class FlowLogsControl(Control):
    retention_days: Annotated[int, Field(ge=1, le=365)]
    traffic_analytics_minutes: Literal[10, 60]
    storage_sku: str


class Network(Strict):
    supernet: Cidr
    council_prefix: PrefixLen
    hub: Hub
    vlans: list[Vlan] = Field(min_length=1)
    flows: list[Flow]
    address_plan: Control
    segmentation: Control
    hub_routing: Control
    egress: EgressControl
    administration: AdministrationControl
    flow_logs: FlowLogsControl

    def endpoint_known(self, end: str) -> bool:
        """A flow or purpose endpoint: a VLAN name, or hub/<segment>."""
        if end.startswith("hub/"):
            return end[4:] in {s.name for s in self.hub.segments}
        return end in {v.name for v in self.vlans}

    @model_validator(mode="after")
    def _consistent(self) -> Network:
        supernet = ipaddress.IPv4Network(self.supernet)
        if self.council_prefix <= supernet.prefixlen:
            raise FieldError(("council_prefix",),
                             f"council_prefix /{self.council_prefix} must be longer than the supernet's")
        hub = ipaddress.IPv4Network(self.hub.block)
        if not hub.subnet_of(supernet):
            raise FieldError(("hub", "block"), f"hub block {hub} lies outside the supernet {supernet}")
        seen_ids: set[int] = set()
        seen_names: set[str] = set()
        for i, vlan in enumerate(self.vlans):
            if vlan.id in seen_ids:
                raise FieldError(("vlans", i, "id"), f"duplicate VLAN id {vlan.id}")
            if vlan.name in seen_names:
                raise FieldError(("vlans", i, "name"), f"duplicate VLAN name {vlan.name!r}")
            if vlan.prefix < self.council_prefix:
                raise FieldError(("vlans", i, "prefix"),
                                 f"VLAN {vlan.name} /{vlan.prefix} is larger than a council block")
            seen_ids.add(vlan.id)
            seen_names.add(vlan.name)
        segments = {s.name for s in self.hub.segments}
        flow_ids: set[str] = set()
        for i, flow in enumerate(self.flows):
            if flow.id in flow_ids:
                raise FieldError(("flows", i, "id"), f"duplicate flow id {flow.id}")
            flow_ids.add(flow.id)
            for end_field in ("source", "destination"):
                end = getattr(flow, end_field)
                if end.startswith("hub/"):
                    if end[4:] not in segments:
                        raise FieldError(("flows", i, end_field), f"unknown hub segment {end!r}")
                    if flow.scope not in ("hub", "hub-internal"):
                        raise FieldError(("flows", i, "scope"), "a hub endpoint needs scope 'hub' or 'hub-internal'")
                elif end not in seen_names:
                    raise FieldError(("flows", i, end_field), f"unknown VLAN {end!r}")
            if flow.scope == "hub" and flow.source_is_hub == flow.destination_is_hub:
                raise FieldError(("flows", i, "scope"), "scope 'hub' joins one council VLAN and one hub segment")
            if flow.scope == "hub-internal" and not (flow.source_is_hub and flow.destination_is_hub):
                raise FieldError(("flows", i, "scope"), "scope 'hub-internal' joins two hub segments")
            if flow.kind == "administration" and flow.source not in self.administration.sources:
                raise FieldError(("flows", i, "source"), f"an administration flow starts at one of "
                                                         f"network.administration.sources, not {flow.source!r}")
        for i, source in enumerate(self.administration.sources):
            if not self.endpoint_known(source):
                raise FieldError(("administration", "sources", i), f"unknown VLAN or hub segment {source!r}")
        names: set[str] = set()
        for i, purpose in enumerate(self.egress.purposes):
            if purpose.name in names:
                raise FieldError(("egress", "purposes", i, "name"), f"duplicate egress purpose {purpose.name!r}")
            names.add(purpose.name)
            for j, source in enumerate(purpose.sources):
                if not self.endpoint_known(source):
                    raise FieldError(("egress", "purposes", i, "sources", j),
                                     f"unknown VLAN or hub segment {source!r}")
        return self


class AvdControl(Control):
    host_pool_type: Literal["Pooled", "Personal"]
    load_balancer_type: Literal["BreadthFirst", "DepthFirst", "Persistent"]
    preferred_app_group_type: Literal["Desktop", "RailApplications"]
    max_sessions_per_host: Annotated[int, Field(ge=1, le=999)]
    concurrency: Annotated[float, Field(gt=0, le=1)]
    start_vm_on_connect: bool
    validation_environment: bool


class ImageControl(Control):
    publisher: str
    offer: str
    sku: str
    version: str


class SizesControl(Control):
    allowed: list[str] = Field(min_length=1)
    default: str

    @model_validator(mode="after")
    def _default_allowed(self) -> SizesControl:
        if self.default not in self.allowed:
            raise ValueError(f"default {self.default!r} is not in the allowed list")
        return self


class ScreenLockControl(Control):
    minutes: Annotated[int, Field(ge=1, le=60)]


class UsbControl(Control):
    blocked: bool


class UpdatesControl(Control):
    automatic: bool


class RdpClientControl(Control):
    package: str
    command: str


class LocalAdminControl(Control):
    allowed: bool


class SupportedOs(Strict):
    os: str
    version: str
    end_of_support: dt.date


class OsControl(Control):
    supported: list[SupportedOs] = Field(min_length=1)


class Desktop(Strict):
    avd: AvdControl
    image: ImageControl
    vm_sizes: SizesControl
    screen_lock: ScreenLockControl
    usb_storage: UsbControl
    updates: UpdatesControl
    rdp_client: RdpClientControl
    local_admin: LocalAdminControl
    operating_systems: OsControl


class RegionsControl(Control):
    allowed: list[str] = Field(min_length=1)
    primary: str
    dr_pair: str

    @model_validator(mode="after")
    def _in_allowed(self) -> RegionsControl:
        for field in ("primary", "dr_pair"):
            if getattr(self, field) not in self.allowed:
                raise ValueError(f"{field} {getattr(self, field)!r} is not an allowed region")
        if self.primary == self.dr_pair:
            raise ValueError("dr_pair must differ from primary")
        return self


class RequiredControl(Control):
    required: bool


class AllowedControl(Control):
    allowed: bool


class BackupControl(Control):
    frequency: Literal["Daily", "Weekly"]
    time: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
    retention_days: Annotated[int, Field(ge=7, le=9999)]
    weekly_retention_weeks: Annotated[int, Field(ge=1, le=5163)]


class LogAnalyticsControl(Control):
    retention_days: Annotated[int, Field(ge=30, le=730)]
    sku: str


class KeyVaultControl(Control):
    rbac: bool
    purge_protection: bool
    soft_delete_days: Annotated[int, Field(ge=7, le=90)]
    sku: Literal["standard", "premium"]


class SupportControl(Control):
    support_required: bool


class TrustedLaunchControl(Control):
    secure_boot: bool
    vtpm: bool
    guest_attestation: bool


class DataCentre(Strict):
    regions: RegionsControl
    vm_skus: SizesControl
    server_image: ImageControl
    encryption_at_host: RequiredControl
    public_ip: AllowedControl
    backup: BackupControl
    log_analytics: LogAnalyticsControl
    key_vault: KeyVaultControl
    server_operating_systems: OsControl
    network_equipment: SupportControl
    trusted_launch: TrustedLaunchControl
    public_network_access: AllowedControl
    platform_contract: Control


class PlatformControl(Control):
    name: str
    version: str
    vm_size: str
    database_sku: str
    database_version: str
    database_storage_gb: Annotated[int, Field(ge=32, le=16384)]


class QueuesControl(Control):
    per_council: bool


class SlaTarget(Strict):
    priority: Annotated[str, Field(pattern=r"^P[1-9]$")]
    response_hours: Annotated[int, Field(ge=1)]
    resolution_hours: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _order(self) -> SlaTarget:
        if self.resolution_hours < self.response_hours:
            raise ValueError("resolution_hours is shorter than response_hours")
        return self


class SlaControl(Control):
    priorities: list[SlaTarget] = Field(min_length=1)


class TicketSettings(Strict):
    """How `estate tickets sync` files compliance findings in the helpdesk (estate.tickets): the consortium
    operations queue (the hub's findings; the helpdesk role creates it), the ticket custom field holding a finding's
    fingerprint (the role creates it on every council queue and the operations queue), and the SLA priority of
    each finding severity (its resolution hours make the ticket's due date)."""

    operations_queue: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
    fingerprint_field: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9]{1,62}$")]
    severity_priority: dict[Literal["critical", "high", "medium", "low"], Annotated[str, Field(pattern=r"^P[1-9]$")]]

    @model_validator(mode="after")
    def _every_severity(self) -> TicketSettings:
        missing = [s for s in ("critical", "high", "medium", "low") if s not in self.severity_priority]
        if missing:
            raise FieldError(("severity_priority",), f"no priority for severity {', '.join(missing)}")
        return self


class Helpdesk(Strict):
    platform: PlatformControl
    queues: QueuesControl
    sla: SlaControl
    categories: list[str] = Field(min_length=1)
    tickets: TicketSettings

    @model_validator(mode="after")
    def _ticket_priorities(self) -> Helpdesk:
        known = {t.priority for t in self.sla.priorities}
        for severity, priority in self.tickets.severity_priority.items():
            if priority not in known:
                raise FieldError(("tickets", "severity_priority", severity),
                                 f"{priority} is not one of the SLA's priorities ({', '.join(sorted(known))})")
        return self


class PatchingControl(Control):
    critical_days: Annotated[int, Field(ge=1, le=14)]


class LockoutControl(Control):
    max_attempts: Annotated[int, Field(ge=1, le=10)]
    unlock_minutes: Annotated[int, Field(ge=1)]


class PasswordControl(Control):
    min_length: Annotated[int, Field(ge=8, le=128)]


class MfaControl(Control):
    admin: bool
    cloud: bool


class DefaultAccountsControl(Control):
    forbidden: list[str]


class FirewallControl(Control):
    default_policy: Literal["drop", "reject"]


class SshControl(Control):
    permit_root_login: Literal["no", "prohibit-password"]
    password_authentication: bool
    max_auth_tries: Annotated[int, Field(ge=1, le=10)]
    x11_forwarding: bool


class LoggingControl(Control):
    retention_days: Annotated[int, Field(ge=30)]
    forward_port: Annotated[int, Field(ge=1, le=65535)]


class TaggingControl(Control):
    required: list[str] = Field(min_length=1)


class Security(Strict):
    patching: PatchingControl
    lockout: LockoutControl
    passwords: PasswordControl
    mfa: MfaControl
    default_accounts: DefaultAccountsControl
    host_firewall: FirewallControl
    ssh: SshControl
    logging: LoggingControl
    time_sync: RequiredControl
    tagging: TaggingControl


Area = Literal["network", "identity", "datacentre", "desktop", "telephony", "helpdesk"]


class MigrationArea(Strict):
    area: Area
    depends_on: list[Area]


class ChannelShift(Strict):
    face_to_face: Annotated[float, Field(ge=0)]
    phone: Annotated[float, Field(ge=0)]
    web: Annotated[float, Field(ge=0)]


class Migration(Strict):
    areas: list[MigrationArea] = Field(min_length=1)
    shared_service_annual_cost: dict[Area, Annotated[float, Field(ge=0)]]
    channel_shift: ChannelShift
    # The supplier name of the consortium's own contracts: such a contract is the framework service
    # itself, so it never holds an area back and retires no cost (see estate.roadmap).
    shared_service_supplier: str | None = None

    @model_validator(mode="after")
    def _acyclic(self) -> Migration:
        known = {a.area for a in self.areas}
        for i, a in enumerate(self.areas):
            missing = [d for d in a.depends_on if d not in known]
            if missing:
                raise FieldError(("areas", i, "depends_on"), f"area {a.area} depends on undeclared {missing}")
        done: set[str] = set()
        pending = {a.area: set(a.depends_on) for a in self.areas}
        while pending:
            ready = [k for k, deps in pending.items() if deps <= done]
            if not ready:
                raise FieldError(("areas",), f"areas {sorted(pending)} depend on each other in a cycle")
            for k in ready:
                done.add(k)
                del pending[k]
        return self


class OnboardingHost(Strict):
    role: HostRole
    vlan: Slug


class Onboarding(Strict):
    """What `estate onboard` gives a new council: one lab host per entry, on the VLAN named."""

    hosts: list[OnboardingHost] = Field(min_length=1)


# CalVer, as framework.yaml's `version`: YYYY.MM, or YYYY.MM.N for a further version in the same month.
CALVER = r"^\d{4}\.\d{2}(\.\d+)?$"


def calver(version: str) -> tuple[int, int, int]:
    """A CalVer version as a tuple that orders as the versions do: "2026.11" -> (2026, 11, 0) (so "2026.11.0" is
    the same version as "2026.11", and "2026.11.1" comes after it)."""
    parts = [int(p) for p in version.split(".")]
    return parts[0], parts[1], parts[2] if len(parts) > 2 else 0


class LoggedChange(Strict):
    """One value a framework version changes: its dotted `path` (`security.passwords.min_length`; an item of a list
    of named things by its id or name, `network.vlans[servers].prefix`, any other item by its index), the value it
    had (`from`) and has (`to`), and why. Leave `from` out for a path the version adds, `to` for one it removes.
    `estate framework-diff OLD NEW` checks NEW's entry against the actual differences (estate.framework_change)."""

    # `from` is a Python keyword: the field is `from_`, read and written (model_dump) as `from`
    model_config = ConfigDict(serialize_by_alias=True)

    path: Annotated[str, Field(pattern=r"^[a-z_]+(\.[a-z_0-9]+|\[[^\]\s]+\])*$", max_length=300)]
    from_: Any = Field(default=None, alias="from")
    to: Any = None
    reason: Annotated[str, Field(min_length=1)]


class ChangelogEntry(Strict):
    """What one version of the framework changed, as the board agreed it: its `version`, the `date` it was agreed
    (or proposed), a `summary`, and every value it `changes`. The first version changes nothing: it is the
    framework as first agreed."""

    version: Annotated[str, Field(pattern=CALVER)]
    date: dt.date
    summary: Annotated[str, Field(min_length=1)]
    changes: list[LoggedChange] = []


class Framework(Strict):
    version: Annotated[str, Field(pattern=CALVER)]
    name: str
    owner: str
    standards: list[Standard] = Field(min_length=1)
    network: Network
    desktop: Desktop
    data_centre: DataCentre
    helpdesk: Helpdesk
    security: Security
    migration: Migration
    onboarding: Onboarding | None = None
    # What each version changed, newest first (estate framework-diff checks the newest against the actual differences)
    changelog: list[ChangelogEntry] = []

    @model_validator(mode="after")
    def _changelog(self) -> Framework:
        for i, entry in enumerate(self.changelog):
            if i == 0 and calver(entry.version) > calver(self.version):
                raise FieldError(("changelog", 0, "version"),
                                 f"{entry.version} is newer than the framework's version {self.version}")
            if i and calver(entry.version) >= calver(self.changelog[i - 1].version):
                raise FieldError(("changelog", i, "version"),
                                 f"{entry.version} is not older than changelog[{i - 1}]'s "
                                 f"{self.changelog[i - 1].version}: the change log runs newest first, each version "
                                 "once")
        return self

    @model_validator(mode="after")
    def _controls(self) -> Framework:
        if self.onboarding is not None:
            vlans = {v.name for v in self.network.vlans}
            for i, host in enumerate(self.onboarding.hosts):
                if host.vlan not in vlans:
                    raise FieldError(("onboarding", "hosts", i, "vlan"), f"unknown VLAN {host.vlan!r}")
        standards = {s.id for s in self.standards}
        seen: set[str] = set()
        for path, control in self.controls():
            loc = tuple(path.split("."))
            if control.id in seen:
                raise FieldError((*loc, "id"), f"duplicate control id {control.id}")
            seen.add(control.id)
            std = control.clause.split(":", 1)[0]
            if std not in standards:
                raise FieldError((*loc, "clause"), f"clause names unknown standard {std!r}")
        return self

    def controls(self) -> list[tuple[str, Control]]:
        """Every control of the spec with its dotted path, in file order."""
        found: list[tuple[str, Control]] = []
        for section in ("network", "desktop", "data_centre", "helpdesk", "security"):
            model = getattr(self, section)
            for name in type(model).model_fields:
                value = getattr(model, name)
                if isinstance(value, Control):
                    found.append((f"{section}.{name}", value))
        return found

    def control(self, control_id: str) -> Control:
        for _, control in self.controls():
            if control.id == control_id:
                return control
        raise KeyError(control_id)


# --------------------------------------------------------------------------- council inventory


class Users(Strict):
    staff: Annotated[int, Field(ge=1)]
    desktop: Annotated[int, Field(ge=0)]
    helpdesk_agents: Annotated[int, Field(ge=0)]

    @field_validator("desktop")
    @classmethod
    def _desktop_within_staff(cls, value: int, info: ValidationInfo) -> int:
        staff = info.data.get("staff")
        if isinstance(staff, int) and value > staff:
            raise ValueError(f"{value} desktop users exceed the {staff} staff")
        return value


class DesktopAsset(Strict):
    os: str
    version: str
    count: Annotated[int, Field(ge=0)]
    kind: Literal["thin-client", "laptop", "desktop", "avd"]
    managed_by: str


class ServerAsset(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    role: str
    os: str
    version: str
    location: Literal["on-premises", "azure", "hosted"]
    region: str | None = None
    sku: str | None = None
    encrypted: bool
    backed_up: bool
    public_ip: bool = False


class NetworkAsset(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    kind: Literal["firewall", "router", "switch", "wireless", "wan"]
    vendor: str
    model: str
    end_of_support: dt.date


class HelpdeskAsset(Strict):
    system: str
    version: str
    shared_queue: bool


class Assets(Strict):
    desktops: list[DesktopAsset]
    servers: list[ServerAsset]
    network: list[NetworkAsset]
    # None: the council has not registered its helpdesk yet (a council just onboarded, no register).
    helpdesk: HelpdeskAsset | None = None


class Contract(Strict):
    id: Annotated[str, Field(pattern=r"^[A-Z]{2,5}-C\d{2,3}$")]
    supplier: str
    area: Area
    description: str
    annual_cost: Annotated[float, Field(ge=0)]
    start: dt.date
    end: dt.date

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: dt.date, info: ValidationInfo) -> dt.date:
        start = info.data.get("start")
        if isinstance(start, dt.date) and value <= start:
            raise ValueError(f"{value} is not after the start {start}")
        return value


class Exemption(Strict):
    """A council's accepted risk: a rule it does not meet for the resources `scope` matches, until `expires`, under
    one of its contracts. `owner` is who in the council owns the risk and `approver` who approved it (roles, not
    people: "Head of ICT, Havering", "Chair, consortium security board"); the engine warns 30 days before it expires
    and fails a check where it matches nothing its rule judged."""

    rule: Annotated[str, Field(pattern=r"^[A-Z]{3}-\d{3}$")]
    scope: str = "*"
    reason: str
    contract: str
    expires: dt.date
    owner: Annotated[str, Field(min_length=1)]
    approver: Annotated[str, Field(min_length=1)]


class Attestation(Strict):
    """A council's word for an NCSC CAF indicator no machine judges (MFA on its identity provider, a service level):
    `indicator` by its NCSC id (B2.a.A.4), what is true (`statement`), who attests it (`by`, a role) and on which
    `date`, a link to the `evidence`, and the day it is `review`ed by. Past its review date it lapses, as an exemption
    expires: the indicator needs attestation again. The id must be one of CAF 3.2 or 4.0
    (estate/controls/references/); `estate check` refuses an id neither has, with its line. (`date`, not `on`: YAML
    1.1 reads an unquoted `on:` key as the boolean true.)"""

    indicator: Annotated[str, Field(pattern=r"^[A-D][1-9]\.[a-z]\.(A|PA|NA)\.[1-9][0-9]?$")]
    statement: Annotated[str, Field(min_length=1)]
    by: Annotated[str, Field(min_length=1)]
    date: dt.date
    evidence: Annotated[str, Field(pattern=r"^https?://\S+$")]
    review: dt.date

    @field_validator("review")
    @classmethod
    def _after_date(cls, value: dt.date, info: ValidationInfo) -> dt.date:
        day = info.data.get("date")
        if isinstance(day, dt.date) and value <= day:
            raise ValueError(f"{value} is not after the day it was attested ({day})")
        return value


class Transactions(Strict):
    face_to_face: Annotated[int, Field(ge=0)]
    phone: Annotated[int, Field(ge=0)]
    web: Annotated[int, Field(ge=0)]
    web_share_target: Annotated[float, Field(ge=0, le=1)]


class Exchange(Strict):
    """One inter-council flow this council agrees to with one partner council: `{flow: FL-14, with: newham}`.
    The flow is open between the two only when both councils' inventories declare it (estate.loader checks the
    pair, the flow and the partner across files)."""

    # `with` is a Python keyword: the field is `partner`, read and written (model_dump) as `with`
    model_config = ConfigDict(serialize_by_alias=True)

    flow: Annotated[str, Field(pattern=r"^FL-\d{2,3}$")]
    partner: Slug = Field(alias="with")


class Council(Strict):
    name: str
    code: Annotated[str, Field(pattern=r"^[ENSW]\d{8}$")]
    block: Cidr
    users: Users
    assets: Assets
    contracts: list[Contract]
    exemptions: list[Exemption]
    transactions: Transactions | None = None
    # The inter-council flows (scope `inter`) this council agrees to, per partner; none: it exchanges nothing
    exchanges: list[Exchange] = []
    # NCSC CAF indicators the council attests (no machine judges them); none: every such indicator needs attestation
    attestations: list[Attestation] = []


class Departure(Strict):
    """departed/<folder>/departure.yml, written by `estate offboard`: a council that left (or is leaving) on `leaves`.
    Its block stays reserved up to and including that day: no other council may hold it before then."""

    council: Slug
    name: str
    code: Annotated[str, Field(pattern=r"^[ENSW]\d{8}$")]
    block: Cidr
    leaves: dt.date  # the day it leaves; the block is free from the next day (not `on`: YAML 1.1 reads it as true)
    decided: dt.date  # the day `estate offboard` ran


class LabHost(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")]
    role: HostRole
    vlan: Slug
    address_index: Annotated[int, Field(ge=2)] | None = None


def _ipv4(value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError as exc:
        raise ValueError(f"not an IPv4 address: {exc}") from None


class Connection(Strict):
    """How Ansible reaches a real host (ansible_user, ansible_port, ansible_become, ...); a key or password is
    never here: it comes from the controller's SSH agent or the AWX machine credential."""

    user: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_.-]{0,31}$")] | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    become: bool = True
    become_method: Literal["sudo", "su", "doas"] | None = None
    python_interpreter: Annotated[str, Field(pattern=r"^/[A-Za-z0-9_./-]{1,200}$")] | None = None


class ProductionHost(Strict):
    """A council's real host (inventories/<council>/hosts.yml `production:`), for the Ansible inventory plugin:
    its address in its VLAN (checked against the address plan) and/or the DNS name Ansible connects to."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,62}$")]
    role: HostRole
    vlan: Slug
    address: Annotated[str, AfterValidator(_ipv4)] | None = None
    dns_name: Annotated[str, Field(pattern=r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]"
                                           r"([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$", max_length=253)] | None = None
    connection: Connection = Connection()

    @model_validator(mode="after")
    def _reachable(self) -> ProductionHost:
        if self.address is None and self.dns_name is None:
            raise FieldError(("address",), "a production host needs an address or a dns_name")
        return self


class Hosts(Strict):
    hosts: list[LabHost]
    # A council's real hosts (none: the council has only its lab hosts)
    production: list[ProductionHost] = []
