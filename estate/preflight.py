"""`estate preflight`: what an Azure subscription needs before `pulumi up`, computed from the offline plan.

Four sections, each derived from the planned resources and nothing else about a council:

- providers and features: the resource provider namespace of every azure-native type planned (estate.plan's
  NAMESPACES), and the subscription features a planned property needs (EncryptionAtHost), with the `az`
  commands that register them;
- vCPUs per quota family and region: a VM counts its `hardwareProfile.vmSize`, a scale set `sku.capacity`
  times its `sku.name`; every one also counts against the region's total. `check_quota` compares them with
  the JSON of `az vm list-usage` (`read_usage`);
- the rights the deploying identity needs, per stack and scope: Contributor to create its resource groups
  and deploy into them, role-assignment write wherever it assigns a role, and, for what it does in another
  stack's resource groups (a council's peering into the hub's VNet, its links on the hub's DNS zones, its
  diagnostic settings into the hub's workspace, its VNet's flow log under Network Watcher in NetworkWatcherRG,
  writing to the hub's storage account, traffic analytics into the hub's workspace), the narrow built-in role
  and the action that needs it;
- the names that must be unique across Azure, with the command that checks one is free.

Azure's facts (VM sizes and their quota families, features, role ids, which reference needs which action,
name checks) are data, in estate/preflight.yaml beside this module, each with its source.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from estate.contract.types import ARM_TYPES
from estate.errors import EstateError
from estate.plan import NAMESPACES, Plan, PlannedResource, mock_id
from estate.yamlsrc import display, load_json_list

DATA = Path(__file__).with_name("preflight.yaml")
SUBSCRIPTION_SCOPE = "/subscriptions/<subscription-id>"  # how a scope is shown: the plan's subscription is a stand-in

_VM = "azure-native:compute:VirtualMachine"
_VMSS = "azure-native:compute:VirtualMachineScaleSet"
_RESOURCE_GROUP = "azure-native:resources:ResourceGroup"
_ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
_SUBSCRIPTION = re.compile(r"^/subscriptions/[^/]+", re.IGNORECASE)
_RG = re.compile(r"^/subscriptions/[^/]+/resourceGroups/([^/]+)", re.IGNORECASE)


# --------------------------------------------------------------------------- Azure's facts, as data


@dataclass(frozen=True)
class Size:
    vcpus: int
    family: str


@dataclass(frozen=True)
class Catalogue:
    """estate/preflight.yaml, read."""

    path: str
    sizes: dict[str, Size]
    regional_total: str
    regional_local_name: str
    usage_command: str
    features: list[dict[str, Any]]
    provider_command: str
    roles: dict[str, str]  # name -> role definition id
    rights: dict[str, Any]
    unique_names: dict[str, dict[str, str]]

    def role_name(self, definition_id: str) -> str:
        guid = definition_id.rsplit("/", 1)[-1]
        return next((name for name, rid in self.roles.items() if rid == guid), guid)


@lru_cache(maxsize=4)
def catalogue(path: Path = DATA) -> Catalogue:
    # the tool's own table is named as it sits in the repo (estate/preflight.yaml), whatever the working
    # folder was when it was first read (it is cached)
    shown = "/".join(DATA.parts[-2:]) if path == DATA else display(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        vm = raw["vm_sizes"]
        sizes = {name: Size(int(s["vcpus"]), str(s["family"])) for name, s in vm["sizes"].items()}
        return Catalogue(
            path=shown, sizes=sizes,
            regional_total=str(vm["regional_total"]["family"]),
            regional_local_name=str(vm["regional_total"]["local_name"]),
            usage_command=str(vm["usage_command"]),
            features=list(raw["features"]), provider_command=str(raw["provider_command"]),
            roles={str(k): str(v) for k, v in raw["roles"].items()}, rights=dict(raw["rights"]),
            unique_names={str(k): dict(v) for k, v in raw["unique_names"].items()},
        )
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise EstateError.one(shown, 0, "", f"not a preflight catalogue: {type(exc).__name__}: {detail}") from None


# --------------------------------------------------------------------------- what preflight finds


@dataclass(frozen=True)
class Provider:
    namespace: str
    resources: int
    types: tuple[str, ...]  # ARM resource types planned in this namespace
    command: str


@dataclass(frozen=True)
class Feature:
    namespace: str
    name: str
    resources: tuple[str, ...]  # "stack/resource" that set the property
    commands: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class VcpuItem:
    stack: str
    resource: str
    kind: str  # "vm" or "scale set"
    region: str
    size: str
    instances: int
    family: str
    vcpus: int  # instances x the size's vCPUs


@dataclass(frozen=True)
class VcpuNeed:
    region: str
    family: str  # quota name as `az vm list-usage` reports it (name.value); the regional total is "cores"
    local_name: str
    vcpus: int
    by_stack: dict[str, int]


@dataclass(frozen=True)
class RoleNeed:
    stack: str
    scope: str
    role: str
    action: str
    why: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class UniqueName:
    stack: str
    type: str
    name: str
    dns: str
    check: str


@dataclass(frozen=True)
class Usage:
    family: str
    local_name: str
    current: int
    limit: int


@dataclass(frozen=True)
class QuotaCheck:
    region: str
    family: str
    local_name: str
    need: int
    current: int | None  # None: the family is not in the quota file
    limit: int | None
    source: str

    @property
    def free(self) -> int | None:
        return None if self.limit is None or self.current is None else self.limit - self.current

    @property
    def short(self) -> bool:
        free = self.free
        return free is None or self.need > free

    def describe(self) -> str:
        if self.free is None:
            return f"{self.region} {self.family}: needs {self.need}, not in {self.source}"
        return (f"{self.region} {self.family}: needs {self.need}, {self.free} free "
                f"(limit {self.limit}, {self.current} in use)")


@dataclass(frozen=True)
class Preflight:
    stacks: tuple[str, ...]
    providers: list[Provider]
    features: list[Feature]
    vcpu_items: list[VcpuItem]
    vcpus: list[VcpuNeed]
    roles: list[RoleNeed]
    names: list[UniqueName]
    usage_command: str
    quota: list[QuotaCheck] | None = None
    regions: tuple[str, ...] = field(default=())

    @property
    def short(self) -> list[QuotaCheck]:
        return [q for q in self.quota or [] if q.short]

    def to_json(self) -> str:
        def rows(items: Sequence[Any]) -> list[dict[str, Any]]:
            return [asdict(i) for i in items]

        quota = None if self.quota is None else [{**asdict(q), "free": q.free, "short": q.short} for q in self.quota]
        doc = {
            "stacks": list(self.stacks),
            "providers": rows(self.providers),
            "features": rows(self.features),
            "vcpus": {"needs": rows(self.vcpus), "items": rows(self.vcpu_items),
                      "usage_commands": [self.usage_command.format(region=r) for r in self.regions]},
            "roles": rows(self.roles),
            "unique_names": rows(self.names),
            "quota": quota,
            "short": [q.describe() for q in self.short],
        }
        return json.dumps(doc, indent=2) + "\n"


def preflight(plan: Plan, stacks: Sequence[str] | None = None, cat: Catalogue | None = None) -> Preflight:
    """The prerequisites of the given stacks of the plan (None: every stack planned).

    The plan may hold more stacks than asked for (the hub, to know whose resource groups a council reaches into).
    """
    cat = cat or catalogue()
    keys = tuple(stacks) if stacks is not None else plan.stacks
    chosen = [r for r in plan.resources if r.stack in keys and r.type.startswith("azure-native:")]
    items = vcpu_items(chosen, cat)
    return Preflight(
        stacks=keys, providers=providers(chosen, cat), features=features(chosen, cat), vcpu_items=items,
        vcpus=vcpu_needs(items, cat), roles=roles(plan, keys, cat), names=unique_names(chosen, cat),
        usage_command=cat.usage_command, regions=tuple(sorted({i.region for i in items})),
    )


# --------------------------------------------------------------------------- providers and features


def providers(resources: Sequence[PlannedResource], cat: Catalogue) -> list[Provider]:
    by_ns: dict[str, Counter[str]] = defaultdict(Counter)
    for r in resources:
        module = r.type.split(":")[1]
        namespace = NAMESPACES.get(module)
        if namespace is None:
            raise EstateError.one("estate/plan.py", 0, "NAMESPACES",
                                  f"no resource provider namespace for azure-native module {module!r} ({r.type})")
        by_ns[namespace][_arm_type(r.type)] += 1
    return [Provider(ns, sum(types.values()), tuple(sorted(types)), cat.provider_command.format(namespace=ns))
            for ns, types in sorted(by_ns.items())]


def _true_anywhere(value: Any, key: str) -> bool:
    if isinstance(value, dict):
        return value.get(key) is True or any(_true_anywhere(v, key) for v in value.values())
    if isinstance(value, list):
        return any(_true_anywhere(v, key) for v in value)
    return False


def features(resources: Sequence[PlannedResource], cat: Catalogue) -> list[Feature]:
    out = []
    for rule in cat.features:
        users = tuple(f"{r.stack}/{r.name}" for r in resources if _true_anywhere(r.inputs, rule["property"]))
        if users:
            ns, name = rule["namespace"], rule["name"]
            out.append(Feature(ns, name, users, tuple(c.format(namespace=ns, name=name) for c in rule["commands"]),
                               rule["source"]))
    return out


# --------------------------------------------------------------------------- vCPUs


def vcpu_items(resources: Sequence[PlannedResource], cat: Catalogue) -> list[VcpuItem]:
    out = []
    for r in resources:
        if r.type == _VM:
            size, count, kind = _lookup(r.inputs, "hardwareProfile.vmSize"), 1.0, "vm"
        elif r.type == _VMSS:
            size, count, kind = _lookup(r.inputs, "sku.name"), _lookup(r.inputs, "sku.capacity"), "scale set"
        else:
            continue
        if not isinstance(size, str) or not isinstance(count, int | float) or not math.isfinite(count):
            raise EstateError.one(f"plan of {r.stack}", 0, r.name, f"{kind} without a size or capacity")
        known = cat.sizes.get(size)
        if known is None:
            raise EstateError.one(cat.path, 0, "vm_sizes.sizes",
                                  f"{size} (planned for {r.stack} {r.name}) is not in the table: add its vCPUs "
                                  f"and quota family")
        region = r.inputs.get("location")
        if not isinstance(region, str):
            raise EstateError.one(f"plan of {r.stack}", 0, r.name, f"{kind} without a location")
        n = int(count)
        out.append(VcpuItem(r.stack, r.name, kind, region, size, n, known.family, n * known.vcpus))
    return out


def vcpu_needs(items: Sequence[VcpuItem], cat: Catalogue) -> list[VcpuNeed]:
    """Per region: each family's vCPUs, then the region's total (`cores`)."""
    totals: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for i in items:
        totals[(i.region, i.family)][i.stack] += i.vcpus
        totals[(i.region, cat.regional_total)][i.stack] += i.vcpus
    out = []
    for (region, family), by_stack in sorted(totals.items(), key=lambda kv: (kv[0][0], kv[0][1] == cat.regional_total,
                                                                             kv[0][1])):
        local = cat.regional_local_name if family == cat.regional_total else _family_label(family)
        out.append(VcpuNeed(region, family, local, sum(by_stack.values()), dict(sorted(by_stack.items()))))
    return out


def _family_label(family: str) -> str:
    """standardDSv5Family -> Standard DSv5 Family vCPUs (how `az vm list-usage` names it)."""
    m = re.fullmatch(r"standard(.+)Family", family)
    return f"Standard {m.group(1)} Family vCPUs" if m else family


# --------------------------------------------------------------------------- quota (az vm list-usage)


def read_usage(path: Path) -> list[Usage]:
    """The JSON of `az vm list-usage --location REGION -o json`: a list of {currentValue, limit, localName, name}."""
    shown = display(path)
    data = load_json_list(path, "the JSON list of `az vm list-usage --location REGION -o json`")
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise EstateError.one(shown, 0, f"[{i}]", "expected an object with currentValue, limit and name")
        name = item.get("name")
        family = name.get("value") if isinstance(name, dict) else None
        if not isinstance(family, str) or not family:
            raise EstateError.one(shown, 0, f"[{i}].name.value", "missing, or not a string")
        local = item.get("localName") or (name.get("localizedValue") if isinstance(name, dict) else None) or family
        out.append(Usage(family, str(local), _count(item, "currentValue", shown, i),
                         _count(item, "limit", shown, i)))
    return out


def _count(item: dict[str, Any], key: str, shown: str, i: int) -> int:
    """A whole, non-negative number; `az` prints some as numbers and some versions as strings of digits."""
    value = item.get(key)
    where = f"[{i}].{key}"
    if value is None:
        raise EstateError.one(shown, 0, where, "missing")
    number: float
    if isinstance(value, bool):
        raise EstateError.one(shown, 0, where, f"{value!r} is not a number")
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise EstateError.one(shown, 0, where, f"{value!r} is not a number") from None
    else:
        raise EstateError.one(shown, 0, where, f"{value!r} is not a number")
    if not math.isfinite(number) or number != int(number) or number < 0:
        raise EstateError.one(shown, 0, where, f"{value!r} is not a whole number of vCPUs (0 or more)")
    return int(number)


def check_quota(result: Preflight, usage: Mapping[str, tuple[str, Sequence[Usage]]]) -> Preflight:
    """Compare every need with its region's usage (region -> (file shown, usages)). Every region needed must
    have a file; a family missing from it counts as short (the region may not offer it)."""
    missing = [r for r in result.regions if r not in usage]
    if missing:
        raise EstateError.one("--quota", 0, "", f"no quota file for region {', '.join(missing)} (the plan needs "
                              f"vCPUs in {', '.join(result.regions)}): give --quota REGION=FILE for each")
    checks = []
    for need in result.vcpus:
        source, rows = usage[need.region]
        found = next((u for u in rows if u.family.lower() == need.family.lower()), None)
        checks.append(QuotaCheck(need.region, need.family, found.local_name if found else need.local_name,
                                 need.vcpus, found.current if found else None, found.limit if found else None,
                                 source))
    return Preflight(**{**result.__dict__, "quota": checks})


# --------------------------------------------------------------------------- rights of the deploying identity


def shown_scope(resource_id: str) -> str:
    """An ARM id with the plan's stand-in subscription replaced by a placeholder."""
    return _SUBSCRIPTION.sub(SUBSCRIPTION_SCOPE, resource_id, count=1)


def _rg(resource_id: str) -> str | None:
    m = _RG.match(resource_id)
    return m.group(1) if m else None


def _rg_id(name: str) -> str:
    return f"{SUBSCRIPTION_SCOPE}/resourceGroups/{name}"


def arm_id(r: PlannedResource) -> str | None:
    """The resource's real ARM id (subscription as a placeholder), from its ARM type (estate.contract.types):
    the plan's mock ids spell some types naively (privateZones for privateDnsZones)."""
    arm = ARM_TYPES.get(r.type)
    rg = r.inputs.get("resourceGroupName")
    if arm is None or not isinstance(rg, str):
        return None
    if not arm.path_params:  # a resource group
        return _rg_id(rg)
    if arm.path_params[0] != "resourceGroupName":
        return None
    namespace, *types = arm.resource_type.split("/")
    names = [r.inputs.get(p) for p in (*arm.path_params[1:], arm.name_param)]
    if len(names) != len(types) or not all(isinstance(n, str) for n in names):
        return None
    return f"{_rg_id(rg)}/providers/{namespace}/" + "/".join(f"{t}/{n}" for t, n in zip(types, names, strict=True))


def _canonical_ids(plan: Plan) -> dict[str, str]:
    """The plan's mock id of every resource -> its real ARM id."""
    out = {}
    for r in plan.resources:
        if r.custom:
            real = arm_id(r)
            if real is not None:
                out[mock_id(r.type, r.name, r.inputs)] = real
    return out


def _references(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(field path, ARM id) of every resource-group-scoped id in the inputs; list indices as []."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _references(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for v in value:
            yield from _references(v, f"{path}[]")
    elif isinstance(value, str) and _rg(value) is not None:
        yield path, value


def _matches(pattern: str, path: str) -> bool:
    return path.endswith(pattern[1:]) if pattern.startswith("*") else path == pattern


def _arm_type(token: str) -> str:
    """azure-native:network:Subnet -> Microsoft.Network/virtualNetworks/subnets (the token when not known)."""
    arm = ARM_TYPES.get(token)
    return arm.resource_type if arm else token


def _short_type(token: str) -> str:
    """azure-native:recoveryservices:ProtectedItem -> RecoveryServices/protectedItems."""
    arm = _arm_type(token)
    if "/" not in arm:
        return arm
    namespace, *types = arm.split("/")
    return f"{namespace.removeprefix('Microsoft.')}/{types[-1]}"


def _namespace(token: str) -> str:
    module = token.split(":")[1]
    return NAMESPACES.get(module, module)


def roles(plan: Plan, stacks: Sequence[str], cat: Catalogue) -> list[RoleNeed]:
    """What the identity deploying each stack needs, scope by scope."""
    rights = cat.rights
    owner: dict[str, str] = {}  # resource group -> the stack that creates it
    for r in plan.resources:
        if r.type == _RESOURCE_GROUP and isinstance(r.inputs.get("resourceGroupName"), str):
            owner.setdefault(r.inputs["resourceGroupName"], r.stack)
    canonical = _canonical_ids(plan)
    needs: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
    notes: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)

    def need(stack: str, scope: str, role: str, action: str, why: str, *note: str) -> None:
        key = (stack, shown_scope(canonical.get(scope, scope)), role, action)
        needs[key].append(why)
        notes[key].extend(n for n in note if n)

    for stack in stacks:
        mine = [r for r in plan.resources if r.stack == stack and r.type.startswith("azure-native:")]
        own = sorted({r.inputs["resourceGroupName"] for r in mine if r.type == _RESOURCE_GROUP})

        def whose(rg: str, stack: str = stack) -> str:
            return f"{rg} is {owner[rg]}'s" if rg in owner else f"{rg} is not created by {stack}"

        create = rights["create_resource_groups"]
        for rg in own:
            need(stack, SUBSCRIPTION_SCOPE, create["role"], create["action"], f"creates {rg}",
                 "or a custom role with this action plus Contributor on each resource group below; Contributor "
                 "at the subscription also covers every row below except role assignments")
        into: dict[str, list[PlannedResource]] = defaultdict(list)
        for r in mine:
            if r.type == _RESOURCE_GROUP:
                continue
            if r.type == _ROLE_ASSIGNMENT:
                scope = r.inputs.get("scope")
                if isinstance(scope, str):
                    role = cat.role_name(str(r.inputs.get("roleDefinitionId", "")))
                    principal = r.inputs.get("principalType", "principal")
                    ra = rights["role_assignment"]
                    need(stack, scope, ra["role"], ra["action"], f"{r.name}: {role} for a {principal}")
                continue
            policy = rights["policy"].get(r.type)
            if policy is not None:
                scope = SUBSCRIPTION_SCOPE if policy["scope"] == "subscription" else r.inputs.get("scope")
                if isinstance(scope, str):
                    need(stack, scope, policy["role"], policy["action"], f"creates {r.name}")
                continue
            rg = r.inputs.get("resourceGroupName")
            if not isinstance(rg, str):  # scoped to another resource (a diagnostic setting): its resource group
                uri = r.inputs.get("resourceUri")
                rg = _rg(uri) if isinstance(uri, str) else None
            if rg is None:
                continue
            if rg in own:
                into[rg].append(r)
                continue
            child = rights["foreign_children"].get(r.type)
            if child is not None:
                parent = "/providers/" + child["parent"].format(**r.inputs)
                need(stack, _rg_id(rg) + parent, child["role"], child["action"], f"creates {r.name}", whose(rg),
                     child.get("note", ""))
            elif r.inputs.get("resourceGroupName") == rg:
                need(stack, _rg_id(rg), rights["deploy_into"]["role"], f"{_namespace(r.type)}/*",
                     f"creates {r.name}", whose(rg))
        for rg, placed in sorted(into.items()):
            counts = Counter(_short_type(r.type) for r in placed)
            spaces = ", ".join(sorted({f"{_namespace(r.type)}/*" for r in placed}))
            kinds = ", ".join(f"{t} x{n}" if n > 1 else t for t, n in sorted(counts.items()))
            need(stack, _rg_id(rg), rights["deploy_into"]["role"], spaces, f"{len(placed)} resources: {kinds}")
        for r in mine:
            for path, target in _references(r.inputs):
                rg = _rg(target)
                if rg is None or rg in own or (r.type == _ROLE_ASSIGNMENT and path == "scope"):
                    continue
                rule = next((x for x in rights["foreign_references"]
                             if x["type"] in ("*", r.type) and _matches(x["field"], path)), None)
                if rule is None:
                    other = rights["other_reference"]
                    need(stack, _rg_id(rg), other["role"], other["action"], f"{r.name} ({path})", whose(rg))
                    continue
                need(stack, target, rule["role"], rule["action"], f"{r.name} ({path})", whose(rg),
                     rule.get("note", ""))
    order = {s: i for i, s in enumerate(stacks)}
    return [RoleNeed(stack, scope, role, action, tuple(dict.fromkeys(why)),
                     "; ".join(dict.fromkeys(notes[(stack, scope, role, action)])))
            for (stack, scope, role, action), why in sorted(
                needs.items(), key=lambda kv: (order[kv[0][0]], _scope_rank(kv[0][1]), kv[0][1], kv[0][2], kv[0][3]))]


def _scope_rank(scope: str) -> int:
    """Subscription first, then resource groups, then resources."""
    return 0 if scope == SUBSCRIPTION_SCOPE else 1 if "/providers/" not in scope else 2


# --------------------------------------------------------------------------- globally unique names


def _lookup(inputs: Mapping[str, Any], dotted: str) -> Any:
    value: Any = inputs
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def unique_names(resources: Sequence[PlannedResource], cat: Catalogue) -> list[UniqueName]:
    out = []
    for r in resources:
        rule = cat.unique_names.get(r.type)
        if rule is None:
            continue
        name = _lookup(r.inputs, rule["field"])
        if not isinstance(name, str) or not name:
            continue
        region = str(r.inputs.get("location", ""))
        out.append(UniqueName(r.stack, _arm_type(r.type), name, rule["dns"].format(name=name, region=region),
                              rule["check"].format(name=name, region=region)))
    return out

