"""4.1 Councils use the shared helpdesk (framework.yaml `helpdesk.platform`).

One Request Tracker for every council, on the hub: a VM and a PostgreSQL server of the agreed size, signing in
with Entra identities. Enforced by the helpdesk role (tag `control_4.1`: Request Tracker installed, served over
HTTPS) and the hub stack; judged on each council's register (HLP-001) and on the hub's planned or deployed
resources (HLP-003, HLP-004, HLP-005).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

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
from estate.controls.checks import ResourceValueCheck
from estate.controls.helpdesk.common import on_shared_platform
from estate.controls.spec import declare
from estate.models import Council

HELPDESK = "helpdesk"  # the service (tag, or component module) of the helpdesk's resources
POSTGRES = "azure-native:dbforpostgresql:Server"
POSTGRES_ADMIN = "azure-native:dbforpostgresql:Administrator"
UNREGISTERED = "(no helpdesk registered)"

CONTROL = declare(
    "helpdesk.platform",
    rationale=("One service desk for every council halves the licences and the servers to patch, and gives the "
               "consortium one place where incidents are raised; it is built to one agreed size, and its "
               "database takes only named Entra sign-ins."),
    # CAF: the platform conforms to its defined build (B4.b.A.2: VM size, database SKU, version, storage), and
    # only authorised, individually authenticated users sign in to its database (B2.a.A.2: Entra identities, no
    # shared password). The same ids and statements in 3.2 and 4.0.
    caf={"3.2": ("B4.b.A.2", "B2.a.A.2"),
         "4.0": ("B4.b.A.2", "B2.a.A.2")},
    # Cyber Essentials: users are authenticated before they reach organisational data (CE-SC.5): the database
    # takes Entra sign-ins only, and an Entra administrator is who can sign in.
    ce=("CE-SC.5",),
    roles=("helpdesk",),
)


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
class HelpdeskVmSize(ResourceValueCheck):
    id = "HLP-003"
    title = "the helpdesk server uses the agreed VM size"
    severity = "low"
    control = "helpdesk.platform"
    area = "helpdesk"
    fix = "Set the helpdesk VM's hardwareProfile.vmSize to {c.vm_size}."
    types = COMPUTE
    passing = "{name} is {value}"
    failing = "helpdesk server {name} is {value}, not {expected}"

    def applies(self, res: CloudResource, ctx: Context) -> bool:
        return service_of(res) == HELPDESK

    def value(self, res: CloudResource) -> Any:
        return vm_size(res)

    def expected(self, ctx: Context) -> Collection[Any]:
        return (ctx.fw.helpdesk.platform.vm_size,)


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
