"""The rule framework: one class per rule, registered by id, judging three kinds of facts.

A rule names the framework control it enforces by its dotted path in framework.yaml (for example
`data_centre.vm_skus`); its id, clause and enforcement level come from there, and so do its
thresholds: a rule never holds a SKU, region, VLAN or council name of its own.

A rule implements one or more of:
- `assets(key, council, ctx)`: judge a council's asset register (council.yml);
- `resource(res, ctx)`: judge one cloud resource (planned, or from exported state) of `types`;
- `stack(resources, ctx)`: judge the resources of one Pulumi stack together;
- `host(facts, ctx)`: judge the live facts of one host;
- `estate(resources, ctx)`: judge every stack's cloud resources at once (a property that crosses stacks, such as
  reachability through the hub); it yields (stack, Outcome) pairs. The CrossGuard pack sees one stack at a time and
  so cannot run it: a rule that implements only this is no policy of the pack.
Each yields `Outcome`s: a resource name, pass or fail, and a message. Yielding nothing means the
rule does not apply.
"""

from __future__ import annotations

import datetime as dt
import importlib
import math
import pkgutil
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from estate.controls import meta
from estate.controls.facts import HostFacts
from estate.errors import describe
from estate.models import Control, Council, Framework

if TYPE_CHECKING:
    from estate.ipam import AddressPlan
    from estate.loader import Estate

HUB = "shared"
AREAS = ("network", "identity", "datacentre", "desktop", "telephony", "helpdesk")


class CloudResource(Protocol):
    """What the engine reads of a cloud resource: estate.plan.PlannedResource has this shape."""

    @property
    def urn(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def stack(self) -> str: ...
    @property
    def parent(self) -> str | None: ...
    @property
    def inputs(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Resource:
    """A cloud resource read from somewhere other than the offline plan (state files, the policy pack)."""

    urn: str
    type: str
    name: str
    stack: str
    parent: str | None
    inputs: Mapping[str, Any]


@dataclass(frozen=True)
class Outcome:
    resource: str
    ok: bool
    message: str
    area: str | None = None  # overrides the rule's area (host rules: the area of the host's role)
    # what in the resource this outcome judged, when a rule yields several outcomes for one resource (it tells their
    # findings' fingerprints apart); "" leaves it to the engine (a value check's key, else the whole resource)
    path: str = ""


def passed(resource: str, message: str, area: str | None = None, path: str = "") -> Outcome:
    return Outcome(resource, True, message, area, path)


def failed(resource: str, message: str, area: str | None = None, path: str = "") -> Outcome:
    return Outcome(resource, False, message, area, path)


@dataclass
class Context:
    """What a rule may read besides its subject: the estate (framework and inventories) and the date."""

    estate: Estate
    today: dt.date
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def fw(self) -> Framework:
        return self.estate.framework

    @cached_property
    def addresses(self) -> AddressPlan:
        return self.estate.addresses


def control_at(fw: Framework, path: str) -> Control:
    """The control at a dotted path of the framework, e.g. 'data_centre.vm_skus'."""
    node: Any = fw
    for part in path.split("."):
        node = getattr(node, part)
    if not isinstance(node, Control):
        raise TypeError(f"{path} is not a framework control")
    return node


class Rule:
    id: ClassVar[str]
    title: ClassVar[str]
    severity: ClassVar[str]  # critical | high | medium | low
    control: ClassVar[str]  # dotted path of the framework control, e.g. "data_centre.public_ip"
    area: ClassVar[str]
    fix: ClassVar[str]  # remediation; str.format'ed with c= the control and fw= the framework
    types: ClassVar[tuple[str, ...]] = ()  # cloud resource types `resource` judges

    def assets(self, key: str, council: Council, ctx: Context) -> Iterable[Outcome]:
        return ()

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        return ()

    def stack(self, resources: Sequence[CloudResource], ctx: Context) -> Iterable[Outcome]:
        return ()

    def host(self, facts: HostFacts, ctx: Context) -> Iterable[Outcome]:
        return ()

    def estate(self, resources: Sequence[CloudResource], ctx: Context) -> Iterable[tuple[str, Outcome]]:
        return ()

    # --- what the rule implements, by which methods a subclass overrides

    @classmethod
    def implements(cls, method: str) -> bool:
        return getattr(cls, method) is not getattr(Rule, method)

    @classmethod
    def kinds(cls) -> tuple[str, ...]:
        out = []
        if cls.implements("resource") or cls.implements("stack"):
            out.append("cloud")
        if cls.implements("assets"):
            out.append("asset")
        if cls.implements("host"):
            out.append("host")
        if cls.implements("estate"):
            out.append("estate")
        return tuple(out)

    @classmethod
    def judges(cls, resource_type: str) -> bool:
        """Does `resource` judge this type? `types` holds type tokens or globs ("azure-native:*")."""
        return any(fnmatchcase(resource_type, pattern) for pattern in cls.types)

    def remediation(self, fw: Framework) -> str:
        return self.fix.format(c=_Readable(control_at(fw, self.control)), fw=fw)


class _Listing(list[Any]):
    """A list that formats as 'a, b, c' (remediation text), and still indexes like a list."""

    def __format__(self, spec: str) -> str:
        return ", ".join(_item(x, spec) for x in self)


def _item(x: Any, spec: str) -> str:
    if all(hasattr(x, k) for k in ("os", "version", "end_of_support")):
        return f"{x.os} {x.version} (supported to {x.end_of_support})"
    return format(x, spec)


class _Flag:
    """A boolean for remediation text: 'true'/'false' as in the wire format, or 'yes'/'no' with :yesno."""

    def __init__(self, value: bool) -> None:
        self.value = value

    def __format__(self, spec: str) -> str:
        if spec == "yesno":
            return "yes" if self.value else "no"
        return "true" if self.value else "false"


class _Readable:
    """A control as remediation templates show it: lists comma-separated, booleans as true/false."""

    def __init__(self, control: Control) -> None:
        self._control = control

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._control, name)
        if isinstance(value, bool):
            return _Flag(value)
        return _Listing(value) if isinstance(value, list) else value


# The service area a host's findings count towards, by the host's role.
ROLE_AREA = {"thin_client": "desktop", "router": "network", "helpdesk": "helpdesk", "app_server": "datacentre",
             "dc_services": "datacentre", "log_collector": "datacentre"}


class HostRule(Rule):
    """A rule on live host facts. `roles` limits it to some roles (None: every host), `in_containers`
    False leaves out hosts that run in a container; an unreachable host fails every rule that applies to
    it (it cannot be judged, so it cannot be called compliant). Findings count towards the area of the
    host's role unless `area_by_role` is False."""

    roles: ClassVar[tuple[str, ...] | None] = None
    skip_roles: ClassVar[tuple[str, ...]] = ()
    in_containers: ClassVar[bool] = True
    area_by_role: ClassVar[bool] = True

    def host(self, facts: HostFacts, ctx: Context) -> Iterable[Outcome]:
        if (self.roles is not None and facts.role not in self.roles) or facts.role in self.skip_roles:
            return []
        if facts.reachable and facts.container and not self.in_containers:
            return []
        area = ROLE_AREA.get(facts.role, self.area) if self.area_by_role else self.area
        if not facts.reachable:
            return [failed(facts.host, f"{facts.host} did not answer the fact gathering, so it cannot be judged",
                           area)]
        ok, message = self.check(facts, ctx)
        return [Outcome(facts.host, ok, message, area)]

    def check(self, facts: HostFacts, ctx: Context) -> tuple[bool, str]:
        raise NotImplementedError


_REGISTRY: dict[str, type[Rule]] = {}


def _words(cls: type[Rule]) -> None:
    """Give a rule the words its control's control.yml holds for it (title, severity, area, fix, messages) and the
    control's framework path, when it sits in a control's home."""
    module = sys.modules.get(cls.__module__)
    home = Path(module.__file__).parent if module is not None and module.__file__ else None
    if home is None or not (home / meta.FILE).exists():
        return
    data = meta.read(home)
    cls.control = data.path
    words = data.rules.get(cls.id)
    if words is None:
        raise TypeError(f"rule {cls.id}: {home / meta.FILE} has no words for it (rules: {cls.id}: ...)")
    for key, value in words.model_dump(exclude_none=True).items():
        setattr(cls, key, value)


def rule(cls: type[Rule]) -> type[Rule]:
    """Class decorator: register a rule under its id (ids are unique), with its words from its control's
    control.yml."""
    if hasattr(cls, "id"):
        _words(cls)
    for attr in ("id", "title", "severity", "control", "area", "fix"):
        if not hasattr(cls, attr):
            raise TypeError(f"rule {cls.__name__} has no {attr}")
    if cls.id in _REGISTRY:
        raise TypeError(f"duplicate rule id {cls.id}")
    if cls.severity not in ("critical", "high", "medium", "low"):
        raise TypeError(f"rule {cls.id}: unknown severity {cls.severity!r}")
    if cls.area not in AREAS:
        raise TypeError(f"rule {cls.id}: unknown area {cls.area!r}")
    if cls.__name__ == "HostRule":
        raise TypeError("HostRule is a base class")
    if cls.implements("resource") and not cls.types:
        raise TypeError(f"rule {cls.id} judges resources but names no types")
    _REGISTRY[cls.id] = cls
    return cls


# The areas of estate/controls/: a package each, holding one home per framework control.
CONTROL_AREAS = ("network", "desktop", "data_centre", "helpdesk", "security")
_LOADED: list[bool] = []


def load_controls() -> None:
    """Import every control's home (estate/controls/<area>/<control>/), which registers its rules and its
    declaration. Imported by name: the registry finds the controls, no module lists them."""
    if _LOADED:
        return
    for area in CONTROL_AREAS:
        package = importlib.import_module(f"estate.controls.{area}")
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            if info.ispkg:  # a control's home is a folder; plain modules beside them are helpers
                importlib.import_module(f"{package.__name__}.{info.name}")
    _LOADED.append(True)


def registry() -> dict[str, type[Rule]]:
    load_controls()
    return dict(sorted(_REGISTRY.items()))


def rule_class(rule_id: str) -> type[Rule] | None:
    """One rule's class, without copying the registry (looked up once per finding by the reports)."""
    load_controls()
    return _REGISTRY.get(rule_id)


# --------------------------------------------------------------------------- wire-format helpers


class WrongType(Exception):
    """A property of a resource holds a value of the wrong JSON type (a list where an object is meant, a string
    where a number is, NaN, a boolean where a number is). The engine turns it into a failing finding on the
    resource: a value the rule cannot read is never a pass, and never a traceback."""

    def __init__(self, path: str, value: Any, expected: str, resource: str | None = None) -> None:
        self.path = path
        self.value = value
        self.expected = expected
        self.resource = resource
        super().__init__(f"property {path or '(the inputs)'} is {describe(value)}, expected {expected}")


def non_finite(value: Any, path: tuple[str | int, ...] = ()) -> tuple[tuple[str | int, ...], float] | None:
    """The first NaN or infinite number inside a wire-format value, with its path; None if there is none.
    (Iterative: a deeply nested document cannot exhaust the stack.)"""
    todo: list[tuple[tuple[str | int, ...], Any]] = [(path, value)]
    while todo:
        where, node = todo.pop()
        if isinstance(node, float):
            if not math.isfinite(node):
                return where, node
        elif isinstance(node, Mapping):
            todo.extend(reversed([((*where, str(k)), v) for k, v in node.items()]))
        elif isinstance(node, list | tuple):
            todo.extend(reversed([((*where, i), v) for i, v in enumerate(node)]))
    return None


def _read(data: Mapping[str, Any] | CloudResource, path: str, where: str) -> tuple[Any, str, str | None]:
    """The value at a dotted path (None when absent), the full path for messages, and the resource's URN when
    `data` is a resource. An object on the way that is not an object is a WrongType."""
    resource = None
    if not isinstance(data, Mapping) and hasattr(data, "inputs") and hasattr(data, "urn"):
        resource = data.urn
        data = data.inputs
    full = f"{where}.{path}" if where and path else where or path
    node: Any = data
    done: list[str] = [where] if where else []
    for part in path.split(".") if path else []:
        if node is None:
            return None, full, resource
        if not isinstance(node, Mapping):
            raise WrongType(".".join(done), node, "an object", resource)
        node = node.get(part)
        done.append(part)
    return node, full, resource


def mapping(data: Mapping[str, Any] | CloudResource, path: str, where: str = "") -> Mapping[str, Any]:
    """The object at a dotted path of a resource's inputs (or of a mapping inside them); {} when absent or null.
    `where` is the path of `data` itself inside the inputs, for the message."""
    value, full, resource = _read(data, path, where)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise WrongType(full, value, "an object", resource)
    return value


def items(data: Mapping[str, Any] | CloudResource, path: str, where: str = "") -> list[Any]:
    """The list at a dotted path; [] when absent or null."""
    value, full, resource = _read(data, path, where)
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise WrongType(full, value, "a list", resource)
    return list(value)


def objects(data: Mapping[str, Any] | CloudResource, path: str, where: str = "") -> list[Mapping[str, Any]]:
    """The list of objects at a dotted path; [] when absent or null; an item that is no object is a WrongType."""
    out = items(data, path, where)
    resource = None if isinstance(data, Mapping) else data.urn
    full = f"{where}.{path}" if where and path else where or path
    for i, item in enumerate(out):
        if not isinstance(item, Mapping):
            raise WrongType(f"{full}[{i}]", item, "an object", resource)
    return out


def number(data: Mapping[str, Any] | CloudResource, path: str, where: str = "") -> float | None:
    """The finite number at a dotted path; None when absent or null. A boolean, NaN, an infinity or a string is a
    WrongType: `true` is no session limit and NaN no retention period (in Python a bool is an int and every
    comparison with NaN is false, so a bare isinstance check would let both pass)."""
    value, full, resource = _read(data, path, where)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise WrongType(full, value, "a finite number", resource)
    return float(value)


def text(data: Mapping[str, Any] | CloudResource, path: str, where: str = "") -> str | None:
    """The string at a dotted path; None when absent or null."""
    value, full, resource = _read(data, path, where)
    if value is None:
        return None
    if not isinstance(value, str):
        raise WrongType(full, value, "a string", resource)
    return value


def flag(data: Mapping[str, Any] | CloudResource, path: str, where: str = "") -> bool | None:
    """The boolean at a dotted path; None when absent or null."""
    value, full, resource = _read(data, path, where)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise WrongType(full, value, "a boolean", resource)
    return value


def get(data: Any, path: str, default: Any = None) -> Any:
    """A nested value of wire-format inputs: get(inputs, 'hardwareProfile.vmSize'); `default` when it, or an
    object on the way, is absent or null. An object on the way that holds another type (a list, a string) is a
    WrongType, not an absent value: the rule reading it cannot judge the resource."""
    value, _, _ = _read(data, path, "")
    return default if value is None else value


def tags(res: CloudResource) -> Mapping[str, Any]:
    value = res.inputs.get("tags")
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def urn_stack(urn: str) -> str:
    """urn:pulumi:STACK::PROJECT::TYPE::NAME -> STACK."""
    parts = urn.split("::")
    head = parts[0].split(":")
    return head[2] if len(head) >= 3 and head[0] == "urn" else ""


def urn_types(urn: str) -> list[str]:
    """The type chain of a URN: parent types then the resource's type."""
    parts = urn.split("::")
    return parts[2].split("$") if len(parts) >= 4 else []


def service_of(res: CloudResource) -> str:
    """The service a resource belongs to: its `service` tag, else the module of the component
    (shared-estate:<module>:Component) it sits in, from its URN."""
    value = tags(res).get("service")
    if isinstance(value, str) and value:
        return value
    for token in reversed(urn_types(res.urn)[:-1]):
        bits = token.split(":")
        if len(bits) == 3 and not bits[0].startswith("azure-native"):
            return bits[1]
    return ""


def iter_rules(ids: Iterable[str] | None = None) -> Iterator[Rule]:
    reg = registry()
    wanted = None if ids is None else set(ids)
    for rid, cls in reg.items():
        if wanted is None or rid in wanted:
            yield cls()
