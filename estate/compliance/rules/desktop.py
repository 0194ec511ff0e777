"""Desktop rules (DSK): Azure Virtual Desktop, session hosts, thin clients, desktop operating systems."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from estate.controls.azure import COMPUTE, DESKTOP, image_of, vm_size
from estate.controls.base import (
    CloudResource,
    Context,
    HostRule,
    Outcome,
    Rule,
    failed,
    number,
    passed,
    rule,
    service_of,
)
from estate.controls.facts import HostFacts
from estate.controls.support import supported
from estate.models import Council

HOST_POOL = "azure-native:desktopvirtualization:HostPool"


@rule
class HostPoolPattern(Rule):
    id = "DSK-001"
    title = "AVD host pools use the agreed pool type and load balancing"
    severity = "medium"
    control = "desktop.avd"
    area = "desktop"
    fix = "Set hostPoolType to {c.host_pool_type} and loadBalancerType to {c.load_balancer_type}."
    types = (HOST_POOL,)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        c = ctx.fw.desktop.avd
        got = (res.inputs.get("hostPoolType"), res.inputs.get("loadBalancerType"))
        if got == (c.host_pool_type, c.load_balancer_type):
            return [passed(res.urn, f"{res.name} is a {got[0]} pool balanced {got[1]}")]
        return [failed(res.urn, f"{res.name} is a {got[0]} pool balanced {got[1]}; the framework wants "
                                f"{c.host_pool_type} balanced {c.load_balancer_type}")]


@rule
class HostPoolSessions(Rule):
    id = "DSK-002"
    title = "AVD host pools cap the sessions per host"
    severity = "medium"
    control = "desktop.avd"
    area = "desktop"
    fix = "Set maxSessionLimit to at most {c.max_sessions_per_host}."
    types = (HOST_POOL,)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        limit = ctx.fw.desktop.avd.max_sessions_per_host
        got = number(res, "maxSessionLimit")
        if got is not None and 1 <= got <= limit:
            return [passed(res.urn, f"{res.name} allows {got:g} sessions per host (limit {limit})")]
        return [failed(res.urn, f"{res.name} allows {got!r} sessions per host; the limit is {limit}")]


@rule
class HostPoolSettings(Rule):
    id = "DSK-003"
    title = "AVD host pools publish desktops, start hosts on connect and are not validation pools"
    severity = "low"
    control = "desktop.avd"
    area = "desktop"
    fix = ("Set preferredAppGroupType to {c.preferred_app_group_type}, startVMOnConnect to "
           "{c.start_vm_on_connect} and validationEnvironment to {c.validation_environment}.")
    types = (HOST_POOL,)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        c = ctx.fw.desktop.avd
        wanted = {"preferredAppGroupType": c.preferred_app_group_type,
                  "startVMOnConnect": c.start_vm_on_connect,
                  "validationEnvironment": c.validation_environment}
        defaults = {"startVMOnConnect": False, "validationEnvironment": False}
        wrong = [f"{k}={res.inputs.get(k, defaults.get(k))!r} (want {v!r})" for k, v in wanted.items()
                 if res.inputs.get(k, defaults.get(k)) != v]
        if wrong:
            return [failed(res.urn, f"{res.name}: " + ", ".join(wrong))]
        return [passed(res.urn, f"{res.name} publishes {c.preferred_app_group_type} and starts hosts on connect")]


@rule
class SessionHostImage(Rule):
    id = "DSK-004"
    title = "session hosts run the approved desktop image"
    severity = "high"
    control = "desktop.image"
    area = "desktop"
    fix = ("Build session hosts from storageProfile.imageReference {c.publisher}/{c.offer}/{c.sku} "
           "version {c.version}.")
    types = COMPUTE

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        if service_of(res) != DESKTOP:
            return []
        c = ctx.fw.desktop.image
        got = image_of(res)
        want = (c.publisher, c.offer, c.sku, c.version)
        shown = "/".join(str(x) for x in got)
        if got == want:
            return [passed(res.urn, f"{res.name} runs {shown}")]
        return [failed(res.urn, f"{res.name} runs image {shown}, not {'/'.join(want)}")]


@rule
class SessionHostSize(Rule):
    id = "DSK-005"
    title = "session hosts use an approved VM size"
    severity = "medium"
    control = "desktop.vm_sizes"
    area = "desktop"
    fix = "Set hardwareProfile.vmSize (a scale set's sku.name) to one of {c.allowed} (default {c.default})."
    types = COMPUTE

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        if service_of(res) != DESKTOP:
            return []
        allowed = ctx.fw.desktop.vm_sizes.allowed
        size = vm_size(res)
        if size in allowed:
            return [passed(res.urn, f"{res.name} is {size}")]
        return [failed(res.urn, f"session host {res.name} is {size}, not one of {', '.join(allowed)}")]


@rule
class ScreenLock(HostRule):
    id = "DSK-006"
    title = "thin clients lock the screen after inactivity"
    severity = "medium"
    control = "desktop.screen_lock"
    area = "desktop"
    fix = "Lock the screen after at most {c.minutes} minutes of inactivity (the thin_client role does this)."
    roles = ("thin_client",)

    def check(self, facts: HostFacts, ctx: Context) -> tuple[bool, str]:
        limit = ctx.fw.desktop.screen_lock.minutes
        got = facts.screen_lock_minutes
        if got is not None and 0 < got <= limit:
            return True, f"{facts.host} locks after {got} minutes"
        shown = "never" if got is None or got <= 0 else f"after {got} minutes"
        return False, f"{facts.host} locks {shown}; the framework wants at most {limit} minutes"


@rule
class UsbStorage(HostRule):
    id = "DSK-007"
    title = "thin clients block USB mass storage"
    severity = "medium"
    control = "desktop.usb_storage"
    area = "desktop"
    fix = "Block the usb-storage kernel module (blacklist it) on thin clients."
    roles = ("thin_client",)

    def check(self, facts: HostFacts, ctx: Context) -> tuple[bool, str]:
        if not ctx.fw.desktop.usb_storage.blocked or facts.usb_storage_blocked:
            return True, f"{facts.host} blocks USB mass storage"
        return False, f"{facts.host} allows USB mass storage"


@rule
class DesktopOs(Rule):
    id = "DSK-009"
    title = "desktops run a supported operating system"
    severity = "high"
    control = "desktop.operating_systems"
    area = "desktop"
    fix = "Move these desktops to an operating system that is on the supported list and in support: {c.supported}."

    def assets(self, key: str, council: Council, ctx: Context) -> Iterable[Outcome]:
        counts: dict[str, int] = {}
        for d in council.assets.desktops:
            name = f"{d.os} {d.version}"
            counts[name] = counts.get(name, 0) + d.count
        for d in council.assets.desktops:
            name = f"{d.os} {d.version}"
            if name not in counts:
                continue
            n = counts.pop(name)
            ok, why = supported(ctx.fw.desktop.operating_systems.supported, d.os, d.version, ctx.today)
            yield Outcome(name, ok, f"{n} desktops: {why}")


@rule
class ThinClientUpdates(HostRule):
    id = "DSK-008"
    title = "thin clients update automatically"
    severity = "high"
    control = "desktop.updates"
    area = "desktop"
    fix = "Install and enable unattended-upgrades on thin clients."
    roles = ("thin_client",)

    def check(self, facts: HostFacts, ctx: Context) -> tuple[bool, str]:
        if not ctx.fw.desktop.updates.automatic or facts.unattended_upgrades:
            return True, f"{facts.host} installs updates automatically"
        return False, f"{facts.host} does not install updates automatically"


@rule
class RdpClient(HostRule):
    id = "DSK-010"
    title = "thin clients run the approved RDP client"
    severity = "low"
    control = "desktop.rdp_client"
    area = "desktop"
    fix = "Install {c.package} (command {c.command}) as the thin client's RDP client."
    roles = ("thin_client",)

    def check(self, facts: HostFacts, ctx: Context) -> tuple[bool, str]:
        want = ctx.fw.desktop.rdp_client.package
        if facts.rdp_client == want:
            return True, f"{facts.host} runs {want}"
        return False, f"{facts.host} runs {facts.rdp_client or 'no RDP client'}, not {want}"


@rule
class NoLocalAdmin(HostRule):
    id = "DSK-011"
    title = "desktop users have no local administrator rights"
    severity = "high"
    control = "desktop.local_admin"
    area = "desktop"
    fix = "Remove the kiosk user from sudo (and the sudo group) on thin clients."
    roles = ("thin_client",)

    def check(self, facts: HostFacts, ctx: Context) -> tuple[bool, str]:
        if ctx.fw.desktop.local_admin.allowed or facts.kiosk_sudo is False:
            return True, f"{facts.host}: the desktop user has no administrator rights"
        if facts.kiosk_sudo is None:
            return False, f"{facts.host}: whether the desktop user can sudo is unknown"
        return False, f"{facts.host}: the desktop user can sudo"


@rule
class ThinClientOs(HostRule):
    id = "DSK-012"
    title = "thin clients run a supported operating system"
    severity = "high"
    control = "desktop.operating_systems"
    area = "desktop"
    fix = "Rebuild the thin client on a supported operating system from framework control {c.id}."
    roles = ("thin_client",)

    def check(self, facts: HostFacts, ctx: Context) -> tuple[bool, str]:
        ok, why = supported(ctx.fw.desktop.operating_systems.supported, facts.os, facts.os_version, ctx.today)
        return ok, f"{facts.host}: {why}"


ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
# Azure's built-in Desktop Virtualization Power On Contributor (the same id in every tenant).
POWER_ON_CONTRIBUTOR = "489581de-a3bd-480d-9518-53dea7416b33"


@rule
class StartVmOnConnectRole(Rule):
    id = "DSK-013"
    title = "host pools that start VMs on connect let the AVD service principal power them on"
    severity = "high"
    control = "desktop.avd"
    area = "desktop"
    fix = ("Assign Desktop Virtualization Power On Contributor ({POWER_ON_CONTRIBUTOR}) to the Azure Virtual "
           "Desktop service principal (principalType ServicePrincipal) over the session hosts; without it "
           "startVMOnConnect ({c.start_vm_on_connect}) starts nothing.").replace("{POWER_ON_CONTRIBUTOR}",
                                                                                POWER_ON_CONTRIBUTOR)

    def stack(self, resources: Sequence[CloudResource], ctx: Context) -> Iterable[Outcome]:
        grants = [r for r in resources if r.type == ROLE_ASSIGNMENT
                  and str(r.inputs.get("roleDefinitionId", "")).endswith(f"/{POWER_ON_CONTRIBUTOR}")
                  and str(r.inputs.get("principalType", "")) == "ServicePrincipal"]
        for pool in (r for r in resources if r.type == HOST_POOL and r.inputs.get("startVMOnConnect") is True):
            if grants:
                yield passed(pool.urn, f"{pool.name} starts VMs on connect and {grants[0].name} lets AVD power "
                                       "them on")
            else:
                yield failed(pool.urn, f"{pool.name} starts VMs on connect, but no role assignment lets the AVD "
                                       "service principal power them on")
