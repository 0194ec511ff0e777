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

CONTROL = declare()


@rule
class SharedHelpdesk(Rule):
    id = "HLP-001"

    def assets(self, key: str, council: Council, ctx: Context) -> Iterable[Outcome]:
        ok, why = on_shared_platform(council, ctx)
        h = council.assets.helpdesk
        yield Outcome(h.system if h is not None else UNREGISTERED, ok, why)


@rule
class HelpdeskVmSize(ResourceValueCheck):
    id = "HLP-003"
    types = COMPUTE

    def applies(self, res: CloudResource, ctx: Context) -> bool:
        return service_of(res) == HELPDESK

    def value(self, res: CloudResource) -> Any:
        return vm_size(res)

    def expected(self, ctx: Context) -> Collection[Any]:
        return (ctx.fw.helpdesk.platform.vm_size,)


@rule
class HelpdeskDatabase(Rule):
    id = "HLP-004"
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
