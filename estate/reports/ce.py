"""The report in Cyber Essentials' terms: each requirement of "Cyber Essentials: Requirements for IT infrastructure"
(ids CE-FW.1 ... CE-MP.2, estate/controls/references/cyber-essentials.yaml), which plane evidences it automatically
(the asset register, the cloud resources, the live hosts) through which controls, each control's findings counted
per council, and which requirements no machine judges and so need attestation.

    from estate.reports.ce import ce_report
    view = ce_report(estate, report)

A requirement is evidenced automatically when a control that cites it (`ce=(...)` in its home) has rules; a control
declared `attested` (no rules) or no control at all leaves it to attestation. Per council a requirement is "met" when
every finding of those controls passes, "not met" when one does not (an exempt finding is not enforced, so it does
not meet it either), and "no evidence" when this run judged none of its controls there (host rules without --facts
or --hosts, cloud rules without --plan or --state). Rules whose control has no home yet cite no requirement.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from estate.compliance.findings import Report
from estate.controls.base import control_at
from estate.controls.references import Requirement, cyber_essentials
from estate.controls.spec import ControlSpec, controls

if TYPE_CHECKING:
    from estate.loader import Estate

# a rule's kinds (estate.controls.base.Rule.kinds) as the planes a reader knows
PLANES = {"asset": "asset register", "cloud": "cloud", "estate": "cloud", "host": "host"}
PLANE_ORDER = ("asset register", "cloud", "host")


@dataclass(frozen=True)
class ControlEvidence:
    spec: ControlSpec
    id: str  # the framework control's id, e.g. 5.7
    title: str
    rules: tuple[str, ...]
    planes: tuple[str, ...]
    counts: dict[str, dict[str, int]]  # council -> status -> findings

    def to_dict(self) -> dict[str, Any]:
        return {"control": self.id, "path": self.spec.path, "title": self.title, "rules": list(self.rules),
                "planes": list(self.planes), "attested": self.spec.attested, "counts": self.counts}


@dataclass(frozen=True)
class RequirementResult:
    requirement: Requirement
    controls: tuple[ControlEvidence, ...]

    @property
    def planes(self) -> tuple[str, ...]:
        found = {p for c in self.controls for p in c.planes}
        return tuple(p for p in PLANE_ORDER if p in found)

    @property
    def automatic(self) -> bool:
        """Does some control with rules evidence it?"""
        return any(c.rules for c in self.controls)

    def verdict(self, council: str) -> str:
        if not self.automatic:
            return "needs attestation"
        counts: Counter[str] = Counter()
        for c in self.controls:
            counts.update(c.counts.get(council, {}))
        total = sum(counts.values())
        if not total:
            return "no evidence"
        if counts["pass"] == total:
            return f"met ({total} pass)"
        parts = ", ".join(f"{counts[s]} {s}" for s in ("fail", "expired", "exempt") if counts[s])
        return f"not met ({parts} of {total})"

    def to_dict(self, councils: list[str]) -> dict[str, Any]:
        return {"id": self.requirement.id, "theme": self.requirement.theme, "text": self.requirement.text,
                "planes": list(self.planes), "automatic": self.automatic,
                "controls": [c.to_dict() for c in self.controls],
                "councils": {k: self.verdict(k) for k in councils}}


@dataclass(frozen=True)
class CeReport:
    today: str
    exit_code: int
    councils: list[str]
    requirements: tuple[RequirementResult, ...]

    @property
    def attestation(self) -> list[str]:
        return [r.requirement.id for r in self.requirements if not r.automatic]

    def to_dict(self) -> dict[str, Any]:
        return {"framework": "Cyber Essentials: Requirements for IT infrastructure", "date": self.today,
                "exit_code": self.exit_code, "councils": self.councils,
                "requirements": [r.to_dict(self.councils) for r in self.requirements],
                "needs_attestation": self.attestation}


def ce_report(estate: Estate, report: Report) -> CeReport:
    councils = list(report.councils)
    statuses: dict[str, dict[str, Counter[str]]] = {}  # rule -> council -> status counts
    for key, result in report.councils.items():
        for f in result.findings:
            statuses.setdefault(f.rule_id, {}).setdefault(key, Counter())[f.status] += 1
    citing: dict[str, list[ControlEvidence]] = {}
    for spec in controls().values():
        if not spec.ce:
            continue
        control = control_at(estate.framework, spec.path)
        rules = spec.rules
        counts: dict[str, dict[str, int]] = {}
        for key in councils:
            total: Counter[str] = Counter()
            for cls in rules:
                total.update(statuses.get(cls.id, {}).get(key, {}))
            counts[key] = dict(sorted(total.items()))
        planes = {PLANES[k] for cls in rules for k in cls.kinds() if k in PLANES}
        evidence = ControlEvidence(spec, control.id, control.title, tuple(sorted(cls.id for cls in rules)),
                                   tuple(p for p in PLANE_ORDER if p in planes), counts)
        for ref in spec.ce:
            citing.setdefault(ref, []).append(evidence)
    requirements = tuple(RequirementResult(r, tuple(citing.get(r.id, ()))) for r in cyber_essentials().values())
    return CeReport(report.today.isoformat(), report.exit_code, councils, requirements)


def render_ce_json(view: CeReport) -> str:
    return json.dumps(view.to_dict(), indent=2, ensure_ascii=False) + "\n"


def render_ce_table(view: CeReport, width: int | None = None) -> str:
    from rich.console import Console
    from rich.table import Table

    buf = io.StringIO()
    out = Console(file=buf, width=width or 160, force_terminal=False, color_system=None, soft_wrap=False)
    out.print(f"Cyber Essentials requirements, judged {view.today}: the planes that evidence each automatically, "
              "the controls and their findings per council (exempt findings are not enforced: not met)")
    table = Table(title="Cyber Essentials: Requirements for IT infrastructure", show_lines=True)
    table.add_column("requirement", overflow="fold", min_width=44)
    for col in ("planes", "controls", *view.councils):
        table.add_column(col, overflow="fold")
    for r in view.requirements:
        shown = []
        for c in r.controls:
            kind = "attested" if c.spec.attested else ", ".join(c.rules)
            shown.append(f"{c.id} {c.title} ({kind})")
        table.add_row(f"{r.requirement.id} {r.requirement.text}", ", ".join(r.planes) or "-",
                      "\n".join(shown) or "-", *[r.verdict(k) for k in view.councils])
    out.print(table)
    pending = view.attestation
    out.print(f"{len(pending)} of {len(view.requirements)} requirements need attestation (no machine evidences "
              f"them): {', '.join(pending) or 'none'}")
    return buf.getvalue()
