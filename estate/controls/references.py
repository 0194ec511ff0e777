"""The reference frameworks controls cite, as data (estate/controls/references/, sources in SOURCES.md): the NCSC
Cyber Assessment Framework (v3.2 and v4.0: outcomes, indicators, profiles, assessment rules) and Cyber Essentials
(themes and requirements)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent / "references"
CAF_VERSIONS = ("3.2", "4.0")
INDICATOR_STATUSES = ("achieved", "partially-achieved", "not-achieved")


@dataclass(frozen=True)
class Indicator:
    id: str  # NCSC id, e.g. B4.b.A.2
    outcome: str  # B4.b
    status: str  # the column it sits in: achieved | partially-achieved | not-achieved
    text: str


@dataclass(frozen=True)
class Outcome:
    code: str  # B4.b
    title: str
    principle: str  # B4
    principle_title: str
    objective: str  # B
    objective_title: str
    indicators: tuple[Indicator, ...]
    profile: dict[str, str]  # baseline|enhanced -> the status the profile expects ({} where none is published)

    def of(self, status: str) -> list[Indicator]:
        return [i for i in self.indicators if i.status == status]


@dataclass(frozen=True)
class Caf:
    version: str
    source: dict[str, str]
    outcomes: dict[str, Outcome]
    indicators: dict[str, Indicator]
    assessment_rules: dict[str, Any]

    def knows(self, ref: str) -> bool:
        """Is `ref` a contributing outcome (B4.b) or an indicator (B4.b.A.2) of this version?"""
        return ref in self.outcomes or ref in self.indicators

    def outcome_of(self, ref: str) -> str:
        return ref if ref in self.outcomes else self.indicators[ref].outcome


@cache
def caf(version: str) -> Caf:
    if version not in CAF_VERSIONS:
        raise ValueError(f"unknown CAF version {version!r} (known: {', '.join(CAF_VERSIONS)})")
    data = yaml.safe_load((HERE / f"caf-{version}.yaml").read_text(encoding="utf-8"))
    outcomes: dict[str, Outcome] = {}
    indicators: dict[str, Indicator] = {}
    for obj in data["objectives"]:
        for pr in obj["principles"]:
            for oc in pr["outcomes"]:
                inds = tuple(Indicator(i["id"], oc["code"], status, i["text"])
                             for status in INDICATOR_STATUSES for i in oc["indicators"].get(status) or [])
                outcomes[oc["code"]] = Outcome(oc["code"], oc["title"], pr["code"], pr["title"], obj["code"],
                                               obj["title"], inds, dict(oc.get("profile") or {}))
                indicators.update({i.id: i for i in inds})
    return Caf(version, dict(data["source"]), outcomes, indicators, dict(data["assessment_rules"]))


@dataclass(frozen=True)
class Requirement:
    id: str  # CE-FW.3
    theme: str  # Firewalls
    text: str


@cache
def cyber_essentials() -> dict[str, Requirement]:
    data = yaml.safe_load((HERE / "cyber-essentials.yaml").read_text(encoding="utf-8"))
    return {r["id"]: Requirement(r["id"], t["title"], r["text"]) for t in data["themes"] for r in t["requirements"]}
