"""Data-centre rules (DCN): regions, VM SKUs and images, encryption, backup, logs, Key Vault, servers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from estate.controls.azure import COMPUTE, DESKTOP, VM, image_of, vm_profile, vm_size
from estate.controls.base import (
    CloudResource,
    Context,
    HostRule,
    Outcome,
    Rule,
    failed,
    get,
    items,
    mapping,
    number,
    objects,
    passed,
    rule,
    service_of,
    text,
)
from estate.controls.facts import HostFacts
from estate.controls.support import supported
from estate.models import Council

VAULT = "azure-native:keyvault:Vault"
WORKSPACE = "azure-native:operationalinsights:Workspace"
PROTECTION_POLICY = "azure-native:recoveryservices:ProtectionPolicy"
PROTECTED_ITEM = "azure-native:recoveryservices:ProtectedItem"
# Locations that are no region: the resource is global by nature (DNS zones, policy assignments).
NOT_A_REGION = frozenset({"global"})


@rule
class Regions(Rule):
    id = "DCN-001"
    title = "cloud resources are deployed in approved UK regions"
    severity = "high"
    control = "data_centre.regions"
    area = "datacentre"
    fix = "Deploy in {c.primary} (disaster recovery pair {c.dr_pair}); allowed: {c.allowed}."
    types = ("azure-native:*",)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        location = res.inputs.get("location")
        if not isinstance(location, str) or location.lower() in NOT_A_REGION:
            return []
        allowed = ctx.fw.data_centre.regions.allowed
        normal = location.replace(" ", "").lower()
        if normal in allowed:
            return [passed(res.urn, f"{res.name} is in {location}")]
        return [failed(res.urn, f"{res.name} is in {location}, outside {', '.join(allowed)}")]


@rule
class ServerSku(Rule):
    id = "DCN-002"
    title = "servers use an approved VM SKU"
    severity = "medium"
    control = "data_centre.vm_skus"
    area = "datacentre"
    fix = "Set hardwareProfile.vmSize (or the register's sku) to one of {c.allowed} (default {c.default})."
    types = COMPUTE

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        if service_of(res) == DESKTOP:
            return []
        allowed = ctx.fw.data_centre.vm_skus.allowed
        size = vm_size(res)
        if size in allowed:
            return [passed(res.urn, f"{res.name} is {size}")]
        return [failed(res.urn, f"server {res.name} is {size}, not one of {', '.join(allowed)}")]

    def assets(self, key: str, council: Council, ctx: Context) -> Iterable[Outcome]:
        allowed = ctx.fw.data_centre.vm_skus.allowed
        for s in council.assets.servers:
            if s.location != "azure":
                continue
            if s.sku in allowed:
                yield passed(s.name, f"{s.name} is {s.sku}")
            else:
                yield failed(s.name, f"Azure server {s.name} is {s.sku or 'of no recorded SKU'}, "
                                     f"not one of {', '.join(allowed)}")


@rule
class ServerImage(Rule):
    id = "DCN-003"
    title = "servers run the approved server image"
    severity = "high"
    control = "data_centre.server_image"
    area = "datacentre"
    fix = "Build servers from storageProfile.imageReference {c.publisher}/{c.offer}/{c.sku} version {c.version}."
    types = COMPUTE

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        if service_of(res) == DESKTOP:
            return []
        c = ctx.fw.data_centre.server_image
        got = image_of(res)
        want = (c.publisher, c.offer, c.sku, c.version)
        shown = "/".join(str(x) for x in got)
        if got == want:
            return [passed(res.urn, f"{res.name} runs {shown}")]
        return [failed(res.urn, f"server {res.name} runs image {shown}, not {'/'.join(want)}")]


@rule
class Encryption(Rule):
    id = "DCN-004"
    title = "servers encrypt data at rest (virtual machines at host)"
    severity = "high"
    control = "data_centre.encryption_at_host"
    area = "datacentre"
    fix = ("Enable securityProfile.encryptionAtHost on every VM; encrypt the disks of servers outside "
           "Azure (BitLocker, LUKS, or the SAN's encryption).")
    types = COMPUTE

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        if not ctx.fw.data_centre.encryption_at_host.required:
            return []
        if get(vm_profile(res), "securityProfile.encryptionAtHost") is True:
            return [passed(res.urn, f"{res.name} encrypts at host")]
        return [failed(res.urn, f"{res.name} does not encrypt at host (securityProfile.encryptionAtHost unset)")]

    def assets(self, key: str, council: Council, ctx: Context) -> Iterable[Outcome]:
        if not ctx.fw.data_centre.encryption_at_host.required:
            return
        for s in council.assets.servers:
            if s.encrypted:
                yield passed(s.name, f"{s.name} encrypts its data at rest")
            else:
                yield failed(s.name, f"{s.name} ({s.location}) does not encrypt its data at rest")


@rule
class NoPublicIpServers(Rule):
    id = "DCN-005"
    title = "no server has a public IP address"
    severity = "critical"
    control = "data_centre.public_ip"
    area = "datacentre"
    fix = "Remove the public IP; publish the service through the hub firewall (framework control {c.id})."

    def assets(self, key: str, council: Council, ctx: Context) -> Iterable[Outcome]:
        if ctx.fw.data_centre.public_ip.allowed:
            return
        for s in council.assets.servers:
            if s.public_ip:
                yield failed(s.name, f"{s.name} has a public IP address")
            else:
                yield passed(s.name, f"{s.name} has no public IP address")


@rule
class ServersBackedUp(Rule):
    id = "DCN-006"
    title = "servers are backed up"
    severity = "high"
    control = "data_centre.backup"
    area = "datacentre"
    fix = ("Protect the server with the consortium backup policy ({c.frequency} at {c.time}, "
           "{c.retention_days} days).")

    def assets(self, key: str, council: Council, ctx: Context) -> Iterable[Outcome]:
        for s in council.assets.servers:
            if s.backed_up:
                yield passed(s.name, f"{s.name} is backed up")
            else:
                yield failed(s.name, f"{s.name} is not backed up")


@rule
class BackupPolicy(Rule):
    id = "DCN-007"
    title = "VM backup policies follow the agreed schedule and retention"
    severity = "medium"
    control = "data_centre.backup"
    area = "datacentre"
    fix = ("Set the policy to run {c.frequency} at {c.time} and keep daily points {c.retention_days} days and "
           "weekly points {c.weekly_retention_weeks} weeks.")
    types = (PROTECTION_POLICY,)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        props = mapping(res, "properties")
        if props.get("backupManagementType") != "AzureIaasVM":
            return []
        c = ctx.fw.data_centre.backup
        wrong = []
        freq = get(props, "schedulePolicy.scheduleRunFrequency")
        if freq != c.frequency:
            wrong.append(f"runs {freq!r}, not {c.frequency}")
        times = run_times(props)
        when = _time_of_day(times[0]) if times else None
        if when != c.time:
            wrong.append(f"starts at {when!r}, not {c.time}")
        for kind, unit, least in (("daily", "Days", c.retention_days), ("weekly", "Weeks", c.weekly_retention_weeks)):
            path = f"properties.retentionPolicy.{kind}Schedule.retentionDuration"
            count = number(res, f"{path}.count")
            if text(res, f"{path}.durationType") != unit or (count or 0) < least:
                wrong.append(f"keeps {kind} points {get(res.inputs, path + '.count')!r} "
                             f"{get(res.inputs, path + '.durationType')}, not {least} {unit}")
        if wrong:
            return [failed(res.urn, f"{res.name}: " + "; ".join(wrong))]
        return [passed(res.urn, f"{res.name} runs {c.frequency} at {c.time}, keeps {c.retention_days} days")]


def run_times(props: Mapping[str, Any]) -> list[Any]:
    """A VM policy's run times: a Standard (V1) schedule has them in scheduleRunTimes, an Enhanced (V2) one in
    its dailySchedule or weeklySchedule."""
    schedule = mapping(props, "schedulePolicy", "properties")
    where = "properties.schedulePolicy"
    if schedule.get("schedulePolicyType") == "SimpleSchedulePolicyV2":
        for key in ("dailySchedule", "weeklySchedule", "hourlySchedule"):
            times = items(schedule, f"{key}.scheduleRunTimes", where)
            if times:
                return times
        start = get(schedule, "hourlySchedule.scheduleWindowStartTime")
        return [start] if start else []
    return items(schedule, "scheduleRunTimes", where)


def _time_of_day(value: object) -> str | None:
    """'2026-01-01T01:00:00Z' -> '01:00'."""
    try:
        stamp = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp.strftime("%H:%M")


@rule
class LogRetention(Rule):
    id = "DCN-008"
    title = "Log Analytics keeps platform logs for the agreed period"
    severity = "medium"
    control = "data_centre.log_analytics"
    area = "datacentre"
    fix = "Set retentionInDays to at least {c.retention_days} and sku.name to {c.sku}."
    types = (WORKSPACE,)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        c = ctx.fw.data_centre.log_analytics
        days = number(res, "retentionInDays")
        sku = get(res.inputs, "sku.name")
        wrong = []
        if days is None or days < c.retention_days:
            wrong.append(f"keeps logs {days!r} days, not {c.retention_days}")
        if sku != c.sku:
            wrong.append(f"sku {sku!r}, not {c.sku}")
        if wrong:
            return [failed(res.urn, f"{res.name}: " + "; ".join(wrong))]
        return [passed(res.urn, f"{res.name} keeps logs {days:g} days on {sku}")]


@rule
class ServerOs(Rule):
    id = "DCN-009"
    title = "servers run a supported operating system"
    severity = "high"
    control = "data_centre.server_operating_systems"
    area = "datacentre"
    fix = "Upgrade or rebuild the server on an operating system that is on the supported list: {c.supported}."

    def assets(self, key: str, council: Council, ctx: Context) -> Iterable[Outcome]:
        catalogue = ctx.fw.data_centre.server_operating_systems.supported
        for s in council.assets.servers:
            ok, why = supported(catalogue, s.os, s.version, ctx.today)
            yield Outcome(s.name, ok, f"{s.name}: {why}")


@rule
class KeyVaultAccess(Rule):
    id = "DCN-010"
    title = "Key Vaults use RBAC and purge protection"
    severity = "high"
    control = "data_centre.key_vault"
    area = "datacentre"
    fix = ("Set properties.enableRbacAuthorization to {c.rbac} and properties.enablePurgeProtection to "
           "{c.purge_protection}.")
    types = (VAULT,)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        c = ctx.fw.data_centre.key_vault
        props = mapping(res, "properties")
        wrong = []
        if c.rbac and props.get("enableRbacAuthorization") is not True:
            wrong.append("RBAC authorisation is off")
        if c.purge_protection and props.get("enablePurgeProtection") is not True:
            wrong.append("purge protection is off")
        if wrong:
            return [failed(res.urn, f"{res.name}: " + " and ".join(wrong))]
        return [passed(res.urn, f"{res.name} uses RBAC and purge protection")]


@rule
class KeyVaultRecovery(Rule):
    id = "DCN-011"
    title = "Key Vaults keep deleted secrets for the agreed period on the agreed SKU"
    severity = "medium"
    control = "data_centre.key_vault"
    area = "datacentre"
    fix = "Set properties.softDeleteRetentionInDays to {c.soft_delete_days} and properties.sku.name to {c.sku}."
    types = (VAULT,)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        c = ctx.fw.data_centre.key_vault
        days = number(res, "properties.softDeleteRetentionInDays")
        sku = get(res.inputs, "properties.sku.name")
        wrong = []
        if days is None or days < c.soft_delete_days:
            wrong.append(f"keeps deleted secrets {days!r} days, not {c.soft_delete_days}")
        if sku != c.sku:
            wrong.append(f"sku {sku!r}, not {c.sku}")
        if wrong:
            return [failed(res.urn, f"{res.name}: " + "; ".join(wrong))]
        return [passed(res.urn, f"{res.name} keeps deleted secrets {days:g} days on {sku}")]


@rule
class ServerRegion(Rule):
    id = "DCN-012"
    title = "Azure servers in the asset register are in approved regions"
    severity = "high"
    control = "data_centre.regions"
    area = "datacentre"
    fix = "Move the server to {c.primary} (disaster recovery pair {c.dr_pair})."

    def assets(self, key: str, council: Council, ctx: Context) -> Iterable[Outcome]:
        allowed = ctx.fw.data_centre.regions.allowed
        for s in council.assets.servers:
            if s.location != "azure":
                continue
            if s.region in allowed:
                yield passed(s.name, f"{s.name} is in {s.region}")
            else:
                yield failed(s.name, f"{s.name} is in {s.region or 'no recorded region'}, "
                                     f"outside {', '.join(allowed)}")


@rule
class HostServerOs(HostRule):
    id = "DCN-013"
    title = "servers answer with a supported operating system"
    severity = "high"
    control = "data_centre.server_operating_systems"
    area = "datacentre"
    fix = "Rebuild the host on a supported operating system from framework control {c.id}."
    skip_roles = ("thin_client",)

    def check(self, facts: HostFacts, ctx: Context) -> tuple[bool, str]:
        ok, why = supported(ctx.fw.data_centre.server_operating_systems.supported, facts.os, facts.os_version,
                            ctx.today)
        return ok, f"{facts.host}: {why}"


def _last(resource_id: object, after: str | None = None) -> str:
    """The last segment of an ARM id, or the segment that follows `after` (e.g. "vaults")."""
    parts = str(resource_id or "").strip("/").split("/")
    if after is None:
        return parts[-1] if parts else ""
    lowered = [p.lower() for p in parts]
    return parts[lowered.index(after) + 1] if after in lowered and lowered.index(after) + 1 < len(parts) else ""


def trusted_launch(res: CloudResource) -> bool:
    return str(get(vm_profile(res), "securityProfile.securityType", "")).lower() == "trustedlaunch"


@rule
class TrustedLaunchBackupPolicy(Rule):
    id = "DCN-014"
    title = "Trusted Launch VMs are protected by an Enhanced (V2) backup policy"
    severity = "high"
    control = "data_centre.backup"
    area = "datacentre"
    fix = ("Protect Trusted Launch VMs with an Enhanced policy (properties.policyType V2, schedulePolicy "
           "SimpleSchedulePolicyV2 running {c.frequency} at {c.time}): below REST API 2025-01-01 Azure Backup "
           "refuses them under a Standard policy.")

    def stack(self, resources: Sequence[CloudResource], ctx: Context) -> Iterable[Outcome]:
        vms = {str(r.inputs.get("vmName") or r.name): r for r in resources if r.type == VM and trusted_launch(r)}
        policies = {(str(r.inputs.get("vaultName", "")), str(r.inputs.get("policyName") or r.name)): r
                    for r in resources if r.type == PROTECTION_POLICY}
        for item in (r for r in resources if r.type == PROTECTED_ITEM):
            props = mapping(item, "properties")
            vm = vms.get(_last(props.get("sourceResourceId")))
            if vm is None:
                continue
            policy_id = props.get("policyId")
            policy = policies.get((_last(policy_id, "vaults") or str(item.inputs.get("vaultName", "")),
                                   _last(policy_id)))
            if policy is None:
                yield failed(vm.urn, f"{vm.name} is protected by {item.name} under policy {policy_id!r}, "
                                     "which is no policy of this stack (its type cannot be judged)")
                continue
            kind = get(policy.inputs, "properties.policyType")
            schedule = get(policy.inputs, "properties.schedulePolicy.schedulePolicyType")
            if kind == "V2" and schedule == "SimpleSchedulePolicyV2":
                yield passed(vm.urn, f"Trusted Launch VM {vm.name} is protected by Enhanced policy {policy.name}")
            else:
                yield failed(vm.urn, f"Trusted Launch VM {vm.name} is protected by {policy.name}, a "
                                     f"{kind or 'Standard'} policy ({schedule}): Azure Backup refuses it")


RECOVERY_VAULT = "azure-native:recoveryservices:Vault"
POSTGRES_SERVER = "azure-native:dbforpostgresql:Server"


@rule
class NoPublicNetworkAccess(Rule):
    id = "DCN-015"
    title = "Key Vaults, Recovery Services vaults and PostgreSQL servers refuse public network access"
    severity = "high"
    control = "data_centre.public_network_access"
    area = "datacentre"
    fix = ("Set publicNetworkAccess to Disabled (properties.publicNetworkAccess on vaults, "
           "network.publicNetworkAccess on PostgreSQL flexible servers) and reach the service over its private "
           "endpoint. Azure enables it when unset.")
    types = (VAULT, RECOVERY_VAULT, POSTGRES_SERVER)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        if ctx.fw.data_centre.public_network_access.allowed:
            return []
        path = "network.publicNetworkAccess" if res.type == POSTGRES_SERVER else "properties.publicNetworkAccess"
        value = get(res.inputs, path)
        if str(value).lower() == "disabled":
            return [passed(res.urn, f"{res.name} refuses public network access")]
        shown = "unset (Azure enables it)" if value is None else repr(value)
        return [failed(res.urn, f"{res.name}: {path} is {shown}, not Disabled")]


VM_EXTENSION = "azure-native:compute:VirtualMachineExtension"
GUEST_ATTESTATION = "GuestAttestation"
# Azure's Guest Attestation publishers per OS (learn.microsoft.com/azure/virtual-machines/trusted-launch-existing-vm).
ATTESTATION_PUBLISHERS = {"linux": "Microsoft.Azure.Security.LinuxAttestation",
                          "windows": "Microsoft.Azure.Security.WindowsAttestation"}


def _os_of(res: CloudResource) -> str:
    where = "virtualMachineProfile" if res.type != VM else ""
    profile = mapping(vm_profile(res), "osProfile", where)
    return "windows" if "windowsConfiguration" in profile else "linux"


@rule
class TrustedLaunchAttested(Rule):
    id = "DCN-016"
    title = "virtual machines and scale sets use Trusted Launch with Secure Boot, vTPM and guest attestation"
    severity = "high"
    control = "data_centre.trusted_launch"
    area = "datacentre"
    fix = ("Set securityProfile.securityType TrustedLaunch with uefiSettings.secureBootEnabled {c.secure_boot} and "
           "vTpmEnabled {c.vtpm}, and install the GuestAttestation extension (Microsoft.Azure.Security."
           "LinuxAttestation or WindowsAttestation): a VirtualMachineExtension on a VM, an entry of a scale set's "
           "extensionProfile.")

    def stack(self, resources: Sequence[CloudResource], ctx: Context) -> Iterable[Outcome]:
        c = ctx.fw.data_centre.trusted_launch
        extensions = [r for r in resources if r.type == VM_EXTENSION]
        for machine in (r for r in resources if r.type in COMPUTE):
            where = "virtualMachineProfile" if machine.type != VM else ""
            security = mapping(vm_profile(machine), "securityProfile", where)
            wrong = []
            if not trusted_launch(machine):
                wrong.append(f"security type {security.get('securityType')!r}, not TrustedLaunch")
            if c.secure_boot and get(security, "uefiSettings.secureBootEnabled") is not True:
                wrong.append("Secure Boot is off")
            if c.vtpm and get(security, "uefiSettings.vTpmEnabled") is not True:
                wrong.append("vTPM is off")
            if c.guest_attestation:
                publisher = ATTESTATION_PUBLISHERS[_os_of(machine)]
                if machine.type == VM:
                    names = {machine.name, str(machine.inputs.get("vmName", ""))}
                    mine = [e.inputs for e in extensions if str(e.inputs.get("vmName")) in names]
                else:
                    mine = objects(vm_profile(machine), "extensionProfile.extensions", where)
                if not any(e.get("type") == GUEST_ATTESTATION and e.get("publisher") == publisher for e in mine):
                    wrong.append(f"no {publisher} {GUEST_ATTESTATION} extension")
            if wrong:
                yield failed(machine.urn, f"{machine.name}: " + "; ".join(wrong))
            else:
                yield passed(machine.urn, f"{machine.name} is Trusted Launch with Secure Boot, vTPM and attestation")
