"""Helpdesk rules (HLP): the shared service desk platform, per-council queues, its cloud resources."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from estate.controls.azure import COMPUTE, vm_size
from estate.controls.base import (
    CloudResource,
    Context,
    Outcome,
    Rule,
    failed,
    get,
    mapping,
    number,
    passed,
    rule,
    service_of,
)
from estate.models import Council

HELPDESK = "helpdesk"  # the service (tag, or component module) of the helpdesk's resources
POSTGRES = "azure-native:dbforpostgresql:Server"
POSTGRES_ADMIN = "azure-native:dbforpostgresql:Administrator"


UNREGISTERED = "(no helpdesk registered)"


def on_shared_platform(council: Council, ctx: Context) -> tuple[bool, str]:
    c = ctx.fw.helpdesk.platform
    h = council.assets.helpdesk
    if h is None:
        return False, f"the council has registered no helpdesk, so it is not on the shared {c.name}"
    major = h.version.split(".", 1)[0]
    if h.system.lower() == c.name.lower() and major == c.version.split(".", 1)[0]:
        return True, f"{h.system} {h.version} is the shared {c.name} {c.version}"
    return False, f"{h.system} {h.version} is not the shared {c.name} {c.version}"


@rule
class SharedHelpdesk(Rule):
    id = "HLP-001"
    title = "the council uses the shared helpdesk platform"
    severity = "medium"
    control = "helpdesk.platform"
    area = "helpdesk"
    fix = "Move the council's tickets and agents onto the shared {c.name} {c.version} (estate onboard)."

    def assets(self, key: str, council: Council, ctx: Context) -> Iterable[Outcome]:
        ok, why = on_shared_platform(council, ctx)
        h = council.assets.helpdesk
        yield Outcome(h.system if h is not None else UNREGISTERED, ok, why)


@rule
class CouncilQueue(Rule):
    id = "HLP-002"
    title = "the council has its own queue on the shared helpdesk"
    severity = "high"
    control = "helpdesk.queues"
    area = "helpdesk"
    fix = "Create the council's queue and group on the shared helpdesk, with rights for its agents only."

    def assets(self, key: str, council: Council, ctx: Context) -> Iterable[Outcome]:
        if not ctx.fw.helpdesk.queues.per_council or not on_shared_platform(council, ctx)[0]:
            return  # a council not on the shared platform has no queue there to judge (HLP-001 fails)
        h = council.assets.helpdesk
        if h is None:
            return
        if h.shared_queue:
            yield passed(h.system, f"{key} has its own queue on {h.system}")
        else:
            yield failed(h.system, f"{key} has no queue of its own on {h.system}")


@rule
class HelpdeskVmSize(Rule):
    id = "HLP-003"
    title = "the helpdesk server uses the agreed VM size"
    severity = "low"
    control = "helpdesk.platform"
    area = "helpdesk"
    fix = "Set the helpdesk VM's hardwareProfile.vmSize to {c.vm_size}."
    types = COMPUTE

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        if service_of(res) != HELPDESK:
            return []
        want = ctx.fw.helpdesk.platform.vm_size
        size = vm_size(res)
        if size == want:
            return [passed(res.urn, f"{res.name} is {size}")]
        return [failed(res.urn, f"helpdesk server {res.name} is {size}, not {want}")]


@rule
class HelpdeskDatabase(Rule):
    id = "HLP-004"
    title = "the helpdesk database uses the agreed SKU, version and storage"
    severity = "low"
    control = "helpdesk.platform"
    area = "helpdesk"
    fix = ("Set the helpdesk PostgreSQL server's sku.name to {c.database_sku}, version to {c.database_version} "
           "and storage.storageSizeGB to at least {c.database_storage_gb}.")
    types = (POSTGRES,)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        if service_of(res) != HELPDESK:
            return []
        c = ctx.fw.helpdesk.platform
        sku = get(res.inputs, "sku.name")
        version = res.inputs.get("version")
        storage = number(res, "storage.storageSizeGB")
        wrong = []
        if sku != c.database_sku:
            wrong.append(f"sku {sku!r}, not {c.database_sku}")
        if str(version) != c.database_version:
            wrong.append(f"version {version!r}, not {c.database_version}")
        if storage is None or storage < c.database_storage_gb:
            wrong.append(f"storage {storage!r} GB, not {c.database_storage_gb}")
        if wrong:
            return [failed(res.urn, f"{res.name}: " + "; ".join(wrong))]
        return [passed(res.urn, f"{res.name} is {sku}, PostgreSQL {version}, {storage:g} GB")]


@rule
class EntraDatabaseAdministrator(Rule):
    id = "HLP-005"
    title = "a PostgreSQL server that takes only Entra sign-ins has an Entra administrator"
    severity = "critical"
    control = "helpdesk.platform"
    area = "helpdesk"
    fix = ("Give the server a dbforpostgresql Administrator (objectId, principalName, principalType, tenantId): "
           "the operations group, and the identity of the VM that runs {c.name}. With password authentication off "
           "and no Entra administrator, nothing can sign in.")

    def stack(self, resources: Sequence[CloudResource], ctx: Context) -> Iterable[Outcome]:
        admins = [r for r in resources if r.type == POSTGRES_ADMIN]
        for server in (r for r in resources if r.type == POSTGRES):
            auth = mapping(server, "authConfig")
            if str(auth.get("passwordAuth", "")).lower() != "disabled":
                continue  # a password administrator can sign in
            names = {server.name, str(server.inputs.get("serverName", ""))}
            mine = [a for a in admins if str(a.inputs.get("serverName")) in names and a.inputs.get("objectId")]
            if str(auth.get("activeDirectoryAuth", "")).lower() == "enabled" and mine:
                shown = ", ".join(f"{a.inputs.get('principalName')} ({a.inputs.get('principalType')})" for a in mine)
                yield passed(server.urn, f"{server.name}: Entra administrators {shown}")
            else:
                yield failed(server.urn, f"{server.name} takes no password and has no Entra administrator: "
                                         "nothing can sign in")
