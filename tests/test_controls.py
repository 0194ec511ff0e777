"""Every control is complete: one home (estate/controls/<area>/c<id>_<slug>/) declaring its framework path,
rationale, CAF and Cyber Essentials references, remediation roles and probes, holding its rules and their fixtures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from estate.compliance.fixtures import read
from estate.compliance.gather import all_probes
from estate.controls.base import control_at, registry
from estate.controls.facts import HostFacts
from estate.controls.references import CAF_VERSIONS, caf, cyber_essentials
from estate.controls.spec import ControlSpec, controls
from estate.loader import Estate
from estate.models import Control

REPO = Path(__file__).resolve().parent.parent
CONTROLS = sorted(controls())
AREA_OF_SECTION = {"network": "network", "desktop": "desktop", "data_centre": "data_centre", "helpdesk": "helpdesk",
                   "security": "security"}


def spec(path: str) -> ControlSpec:
    return controls()[path]


@pytest.mark.parametrize("path", CONTROLS)
def test_a_control_lives_in_its_area_under_its_id(path: str, estate: Estate) -> None:
    s = spec(path)
    control = control_at(estate.framework, path)
    section, _, slug = path.partition(".")
    assert s.home.parent.name == AREA_OF_SECTION[section], s.home
    assert s.home.name == f"c{control.id.replace('.', '_')}_{slug}", s.home
    assert s.rationale.strip() and len(s.rationale) >= 40, f"{path}: say why the consortium agreed it"


@pytest.mark.parametrize("path", CONTROLS)
def test_every_reference_is_a_real_id(path: str) -> None:
    s = spec(path)
    assert set(s.caf) == set(CAF_VERSIONS), f"{path}: references for every CAF version"
    for version, refs in s.caf.items():
        assert refs, f"{path}: at least one CAF {version} reference"
        unknown = [r for r in refs if not caf(version).knows(r)]
        assert not unknown, f"{path}: not CAF {version} outcomes or indicators: {unknown}"
    unknown_ce = [r for r in s.ce if r not in cyber_essentials()]
    assert not unknown_ce, f"{path}: not Cyber Essentials requirements: {unknown_ce}"


@pytest.mark.parametrize("path", CONTROLS)
def test_a_control_holds_its_rules_and_their_fixtures(path: str) -> None:
    s = spec(path)
    if s.attested:
        assert not s.rules and not s.probes, f"{path}: an attested control has no rules; judge it or attest it"
        return
    assert s.rules, f"{path}: no rule judges it (declare it attested=True if no machine can)"
    for cls in s.rules:
        assert cls.__module__ == s.module, f"{cls.id} is written in {cls.__module__}, not in its control's home"
        fixture = s.fixtures / f"{cls.id}.yml"
        assert fixture.exists(), f"{cls.id}: no fixtures/{cls.id}.yml beside its control"
        data = read(fixture)
        for case in ("pass", "fail"):
            assert "passes" in data[case] or "fails" in data[case], (
                f"{fixture}: the {case} case names no resources that pass or fail")
        assert data["fail"].get("fails"), f"{fixture}: the failing case names no failing resource"
    stray = {p.stem for p in s.fixtures.glob("*.yml")} - {cls.id for cls in s.rules}
    assert not stray, f"{path}: fixtures of no rule of this control: {sorted(stray)}"


@pytest.mark.parametrize("path", CONTROLS)
def test_remediation_names_real_roles(path: str) -> None:
    for role in spec(path).roles:
        assert (REPO / "roles" / role / "tasks" / "main.yml").exists(), f"{path}: no role {role}"


@pytest.mark.parametrize("path", CONTROLS)
def test_probes_name_their_sections_and_fields(path: str) -> None:
    for probe in spec(path).probes:
        assert probe.fields and probe.commands
        assert set(probe.fields) <= set(HostFacts.model_fields), probe.fields
        assert all(re.fullmatch(r"[a-z][a-z0-9-]*", name) for name in probe.commands), probe.commands


def test_every_host_fact_is_gathered_by_exactly_one_probe() -> None:
    identity = {"host", "council", "role", "reachable"}
    produced: dict[str, int] = {}
    for probe in all_probes():
        for name in probe.fields:
            produced[name] = produced.get(name, 0) + 1
    facts = {f for f in HostFacts.model_fields} - identity
    assert set(produced) == facts
    assert [name for name, n in produced.items() if n > 1] == []


def test_every_rule_lives_in_a_declared_control() -> None:
    declared = controls()
    for rid, cls in registry().items():
        assert cls.control in declared, f"{rid} judges {cls.control}, which has no home in estate/controls/"
        assert cls.__module__ == declared[cls.control].module, f"{rid} is written outside its control's home"


def test_every_framework_control_has_a_home(estate: Estate) -> None:
    fw = estate.framework
    paths = {f"{section}.{name}" for section in AREA_OF_SECTION
             for name in type(getattr(fw, section)).model_fields
             if isinstance(getattr(getattr(fw, section), name), Control)}
    assert paths == set(controls()), sorted(paths ^ set(controls()))
