"""Rule fixtures: a small, readable case per rule that must pass and one that must fail.

A fixture file (fixtures/<RULE-ID>.yml in its control's home, estate/controls/<area>/<control>/) has `pass:` and
`fail:` cases; each names the resources that pass (`passes:`) and fail (`fails:`), and may hold
- `council:` a patch to the baseline council (mappings merge, lists replace) -> judged as an asset register;
- `resources:` cloud resources in wire format (type, name, stack, inputs; urn and parent optional);
- `hosts:` host facts, each a patch to the compliant baseline host of its role.
The baseline (estate/controls/fixtures_baseline.yml) is a council and a host of each role that pass every rule;
`$log_collector` and `$dc_services` in it stand for the lab addresses IPAM gives those hosts.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from estate.controls.base import HUB, Resource
from estate.controls.facts import HostFacts
from estate.controls.spec import control_of, controls
from estate.loader import CouncilRecord, Estate, host_addresses
from estate.models import Council
from estate.yamlsrc import Sourced


@dataclass
class Case:
    estate: Estate
    council: str | None = None  # the key whose asset register the case judges
    resources: list[Resource] | None = None
    hosts: list[HostFacts] | None = None
    councils: list[str] = field(default_factory=list)  # what to evaluate


def merge(base: Any, patch: Any) -> Any:
    if isinstance(base, Mapping) and isinstance(patch, Mapping):
        out = dict(base)
        for k, v in patch.items():
            out[k] = merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(patch)


def urn(stack: str, type_: str, name: str, parent_type: str | None = None) -> str:
    chain = f"{parent_type}${type_}" if parent_type else type_
    return f"urn:pulumi:{stack}::shared-estate::{chain}::{name}"


def _substitute(value: Any, tokens: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        for token, real in tokens.items():
            value = value.replace(token, real)
        return value
    if isinstance(value, list):
        return [_substitute(v, tokens) for v in value]
    if isinstance(value, Mapping):
        return {k: _substitute(v, tokens) for k, v in value.items()}
    return value


def address_tokens(estate: Estate, council: str) -> dict[str, str]:
    """$log_collector and $dc_services: the lab addresses IPAM gives those hosts."""
    def first(site: str, role: str) -> str:
        for _, r, _, addr in host_addresses(estate, site):
            if r == role:
                return str(addr)
        return ""

    return {"$log_collector": first(HUB, "log_collector"), "$dc_services": first(council, "dc_services")}


def baseline_hosts(baseline: Mapping[str, Any], council: str) -> dict[str, dict[str, Any]]:
    """A compliant host of each role for the council (addresses still as $tokens)."""
    common = baseline["host"]
    return {role: merge(common, {"role": role, "council": council, **(extra or {})})
            for role, extra in baseline["roles"].items()}


def load_case(estate: Estate, case: Mapping[str, Any], baseline: Mapping[str, Any]) -> Case:
    key = str(baseline["key"])
    out = Case(estate=estate)
    wanted: set[str] = set()
    if "council" in case:
        real = estate.council(key)
        data = merge(merge(baseline["council"], {"block": real.council.block}), case["council"] or {})
        record = CouncilRecord(key, Council.model_validate(data), Sourced(f"<fixture {key}>", data))
        out.estate = dataclasses.replace(estate, councils={**estate.councils, key: record})
        out.council = key
        wanted.add(key)
    if "resources" in case:
        out.resources = []
        for r in case["resources"] or []:
            stack = str(r.get("stack", key))
            name = str(r["name"])
            out.resources.append(Resource(
                urn=str(r.get("urn") or urn(stack, r["type"], name, r.get("parent_type"))),
                type=str(r["type"]), name=name, stack=stack, parent=r.get("parent"),
                inputs=_wire(r.get("inputs") or {}),
            ))
            wanted.add(stack)
    if "hosts" in case:
        out.hosts = []
        for i, h in enumerate(case["hosts"] or []):
            council = str(h.get("council", key))
            base = baseline_hosts(baseline, council)[str(h["role"])]
            facts = merge(merge(base, {"host": f"fixture-{h['role']}-{i}"}), h)
            out.hosts.append(HostFacts.model_validate(_substitute(facts, address_tokens(estate, council))))
            wanted.add(council)
    out.councils = sorted(wanted)
    return out


def _wire(value: Any) -> Any:
    """Fixture inputs in wire format: numbers as floats, as the engine's gRPC Struct carries them."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [_wire(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _wire(v) for k, v in value.items()}
    return value


BASELINE_FILE = Path(__file__).resolve().parents[1] / "controls" / "fixtures_baseline.yml"


def fixture_path(rule_id: str) -> Path:
    """A rule's fixture file: fixtures/<RULE-ID>.yml in its control's home."""
    spec = control_of(rule_id)
    if spec is None:
        raise KeyError(f"rule {rule_id} belongs to no declared control")
    return spec.fixtures / f"{rule_id}.yml"


def fixture_files() -> dict[str, Path]:
    """Every fixture file, by the rule id its name gives."""
    out: dict[str, Path] = {}
    for spec in controls().values():
        out.update({p.stem: p for p in spec.fixtures.glob("*.yml")})
    return dict(sorted(out.items()))


def read(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))
