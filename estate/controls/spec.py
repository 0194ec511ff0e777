"""A control's declaration: what a framework control is besides its rules.

Each control's home (`estate/controls/<area>/c<id>_<slug>/`) holds `control.yml` (its words, estate.controls.meta)
and `__init__.py` (its logic), which calls `declare(probes=...)` once; the declaration reads:

- `path`: its dotted path in framework.yaml (`security.ssh`); the framework gives its id, title, clause,
  enforcement and every threshold, so a control holds no value of its own;
- `rationale`: why the consortium agreed it, in a sentence or two;
- `caf`: the NCSC CAF indicators its evidence speaks to, per CAF version (`{"3.2": ("B4.b.A.1",), "4.0": ...}`;
  ids as the NCSC numbers them, estate/controls/references/);
- `ce`: the Cyber Essentials requirements it evidences (ids of references/cyber-essentials.yaml), () if none;
- `device_principle`: the NCSC device security principle it follows, where one applies;
- `roles`: the Ansible roles whose tasks enforce it, each task tagged `control_<id>` and behind the toggle
  `estate_control_<id with _>` (empty for a control no role enforces: cloud-only or register-only);
- `probes`: how the host facts its host rules judge are gathered (see `Probe`);
- `attested`: True for a control no machine can judge (a service level, MFA on a council's identity provider): it
  has no rules, and its CAF indicators need a council's attestation (`attestations:` in council.yml).

Its rules (`base.Rule` subclasses registered with `@rule`, `control = path`) sit in the same module; its
fixtures (`fixtures/<RULE-ID>.yml`, pass and fail cases) in the folder beside it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from estate.controls import meta
from estate.controls.base import Rule, load_controls, registry, rule_class


@dataclass(frozen=True)
class ProbeParams:
    """What a probe's command and parser may depend on besides the host: read from the framework."""

    rdp_packages: tuple[str, ...]  # RDP client packages to look for, the framework's approved one first
    kiosk_user: str
    kiosk_session: str


@dataclass(frozen=True)
class Probe:
    """How some host facts are gathered: shell commands run as root on the host (POSIX sh), one output section
    each, and a parser from those sections' text to fields of `HostFacts`.

    `commands` maps a section name to its command, a `str.format` template over `ProbeParams` (`{p.kiosk_user}`;
    values are shell-quoted by the gatherer). `parse(sections, params)` returns {field: value} for `fields`; a
    section the host printed nothing for is "". `roles`: the host roles it runs on (None: every role); on other
    roles its fields keep their defaults."""

    fields: tuple[str, ...]
    commands: Mapping[str, str]
    parse: Callable[[Mapping[str, str], ProbeParams], Mapping[str, Any]]
    roles: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ControlSpec:
    path: str
    rationale: str
    caf: Mapping[str, tuple[str, ...]]
    ce: tuple[str, ...] = ()
    device_principle: str | None = None
    roles: tuple[str, ...] = ()
    probes: tuple[Probe, ...] = ()
    attested: bool = False
    module: str = ""
    home: Path = field(default_factory=Path)

    @property
    def rules(self) -> list[type[Rule]]:
        """Its rules: the registered rules whose control is this one."""
        return [cls for cls in registry().values() if cls.control == self.path]

    @property
    def fixtures(self) -> Path:
        return self.home / "fixtures"


_CONTROLS: dict[str, ControlSpec] = {}


def declare(probes: tuple[Probe, ...] = ()) -> ControlSpec:
    """Declare the control whose home is the caller's module: its words from control.yml beside it
    (estate.controls.meta), its probes from the code."""
    # the caller's frame only: inspect.stack() would read the source of every frame on the stack (about 0.5 s
    # over the 41 homes, at every start)
    caller = sys._getframe(1)
    module = str(caller.f_globals.get("__name__", ""))
    home = Path(caller.f_code.co_filename).parent
    data = meta.read(home)
    if data.path in _CONTROLS:
        raise TypeError(f"control {data.path} is declared twice ({_CONTROLS[data.path].module} and {module})")
    refs = data.references
    spec = ControlSpec(path=data.path, rationale=data.rationale,
                       caf={version: tuple(ids) for version, ids in refs.caf.items()}, ce=tuple(refs.ce),
                       device_principle=refs.device_principle, roles=tuple(data.remediation.roles),
                       probes=tuple(probes), attested=data.attested, module=module, home=home)
    _CONTROLS[data.path] = spec
    return spec


def controls() -> dict[str, ControlSpec]:
    """Every declared control, by framework path."""
    load_controls()
    return dict(sorted(_CONTROLS.items()))


def control_of(rule_id: str) -> ControlSpec | None:
    """The declaration of the control a rule belongs to (None while the rule has no home yet)."""
    cls = rule_class(rule_id)
    return None if cls is None else _CONTROLS.get(cls.control)


def probes() -> list[Probe]:
    """Every declared probe, in the controls' order."""
    return [p for spec in controls().values() for p in spec.probes]


def tag(control_id: str) -> str:
    """The Ansible tag of a control's tasks: control_5.7."""
    return f"control_{control_id}"


def toggle(control_id: str) -> str:
    """The Ansible variable that turns a control's tasks on or off: estate_control_5_7."""
    return "estate_control_" + control_id.replace(".", "_")
