"""The report in the NCSC Cyber Assessment Framework's terms: per council (and the hub, `shared`) and per CAF
contributing outcome, the status the CAF's own assessment rules give from the indicators our evidence covers.

    from estate.reports.caf import caf_report
    view = caf_report(estate, report, version="3.2", profile="baseline")

Where an indicator's truth comes from:
- evidence: the findings, in this report, of the rules of every control that cites the indicator (a control's home
  declares `caf={"3.2": (...), "4.0": (...)}`, estate/controls/spec.py). The council meets the indicator when every
  one of those findings passes, and does not when one does not: an exempt finding counts as not enforced (the
  control is switched off there), an expired one as a failure. A rule whose control has no home yet cites nothing.
- attestation: with no evidence, an attestation in the council's council.yml (`attestations:`) whose review date has
  not passed says the council meets it; past its review date it has lapsed.
- otherwise it needs attestation.
"Meets" reads the indicator's column: an achieved or partially-achieved statement is then true, a not-achieved
statement ("users can connect without ...") false.

The outcome's status follows the rules the CAF's YAML carries (`assessment_rules`, estate/controls/references/), as
the CDDO's GovAssure assessment service applies them: github.com/co-cddo/domains-webcaf,
webcaf/webcaf/caf/util.py, `IndicatorStatusChecker.get_status_for_indicator` (commit 83873e6). Each column's
statements count as "all", "some" or "none" true, and an empty column counts as "none" (`generate_key`: "if not
indicator_items ... return 'none'"), so an outcome with no partially-achieved column is achieved only through its
achieved column. CAF 3.2 looks the three counts up in its table. CAF 4.0's YAML gives an ordered list instead
(achieved: all, partially achieved: all, not achieved: any) which the service does not apply yet (its `CAF40Router`
is "not implemented yet"); we read it as the 3.2 table does: a true not-achieved statement decides (the CAF: "the
presence of any one indicator would normally be sufficient to justify an assessment of 'not achieved'"), then the
first rule that holds, else not achieved. tests/test_caf.py checks the two agree on every count.

An indicator that needs attestation is neither true nor false. The status shown is the best the evidence allows
(every such indicator attested); it is `settled` when no attestation could change it (worst equals best). An outcome
with neither evidence nor an attestation is "not assessed (needs attestation)", never "not achieved" by our machine.

The profile target is the outcome's minimum status under the Baseline or Enhanced profile (CAF 3.2 only; the CAF 4.0
YAML publishes none), met as webcaf's `calculate_profile_met` judges it (achieved 3, partially achieved 2, not
achieved 1; met when the status scores at least the target's): "yes" when even the worst case meets it, "no" when
even the best does not, "pending attestation" in between.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from estate.compliance.findings import Finding, Report
from estate.controls.references import CAF_VERSIONS, INDICATOR_STATUSES, Caf, Indicator, Outcome, caf
from estate.controls.spec import ControlSpec, control_of
from estate.errors import EstateError, Problem
from estate.models import Attestation

if TYPE_CHECKING:
    from estate.loader import Estate

PROFILES = ("baseline", "enhanced")
VERSIONS: tuple[str, ...] = CAF_VERSIONS
# webcaf calculate_profile_met's scores
RANK = {"not-achieved": 1, "partially-achieved": 2, "achieved": 3}
NOT_ASSESSED = "not assessed (needs attestation)"
State = Literal["met", "not met", "attested", "lapsed", "needs attestation"]
Met = Literal["yes", "no", "pending attestation", "not assessed"]


def label(status: str | None) -> str:
    """A status as the CAF writes it: 'partially achieved'; None: not assessed."""
    return NOT_ASSESSED if status is None else status.replace("-", " ")


def no_target(version: str) -> str:
    return f"no profile target published for CAF {version}"


# --------------------------------------------------------------------------- the CAF's assessment rules


def count_key(values: Sequence[bool]) -> str:
    """How many of a column's statements are true, as webcaf's `generate_key` counts: 'none' for an empty column."""
    if not values or not any(values):
        return "none"
    return "all" if all(values) else "some"


def outcome_status(framework: Caf, columns: Mapping[str, Sequence[bool]]) -> str:
    """The status of an outcome whose statements are true or false as `columns` says (column -> truth of each of its
    statements), by the CAF version's own assessment rules."""
    keys = {status: count_key(columns.get(status, ())) for status in INDICATOR_STATUSES}
    rules = framework.assessment_rules
    if rules["kind"] == "table":
        return str(rules["table"]["_".join(keys[s] for s in INDICATOR_STATUSES)])
    held = [(str(status), str(need)) for status, need in rules["rules"]
            if (keys[status] == "all" if need == "all" else keys[status] != "none")]
    for status, need in held:
        if need == "any":
            return status
    return held[0][0] if held else "not-achieved"


# --------------------------------------------------------------------------- indicators and outcomes


@dataclass(frozen=True)
class IndicatorResult:
    indicator: Indicator
    state: State
    findings: tuple[Finding, ...] = ()
    attestation: Attestation | None = None

    @property
    def met(self) -> bool | None:
        """Does the council meet it? None: nothing says (it needs attestation)."""
        if self.state in ("met", "attested"):
            return True
        return False if self.state == "not met" else None

    def truth(self, unknown: bool) -> bool:
        """Is its statement true? A not-achieved statement is true when the council does not meet the indicator;
        `unknown` is what an indicator nothing judges counts as (met or not)."""
        met = unknown if self.met is None else self.met
        return not met if self.indicator.status == "not-achieved" else met

    @property
    def exempt(self) -> int:
        return sum(1 for f in self.findings if f.status == "exempt")

    def by_rule(self) -> list[tuple[str, dict[str, int]]]:
        """Its findings counted per rule: [(rule id, {status: count})]."""
        out: dict[str, Counter[str]] = {}
        for f in self.findings:
            out.setdefault(f.rule_id, Counter())[f.status] += 1
        return [(rule, dict(sorted(c.items()))) for rule, c in sorted(out.items())]

    def summary(self) -> str:
        """'met: SEC-006 4 pass; SEC-011 2 pass' / 'attested by ..., review 2027-03-31' / 'needs attestation'."""
        if self.findings:
            rules = "; ".join(f"{rule} " + ", ".join(f"{n} {s}" for s, n in counts.items())
                              for rule, counts in self.by_rule())
            note = " (exempt: not enforced)" if self.exempt else ""
            return f"{self.state}{note}: {rules}"
        if self.attestation is not None:
            a = self.attestation
            if self.state == "attested":
                return f"attested by {a.by} on {a.date}, review {a.review}"
            return f"lapsed: attested by {a.by} on {a.date}, review was due {a.review}"
        return self.state

    def to_dict(self) -> dict[str, Any]:
        a = self.attestation
        return {
            "id": self.indicator.id, "column": self.indicator.status, "state": self.state, "exempt": self.exempt,
            "findings": [{"rule": f.rule_id, "control": f.control, "resource": f.resource, "status": f.status}
                         for f in self.findings],
            "attestation": None if a is None else {"statement": a.statement, "by": a.by, "date": a.date.isoformat(),
                                                   "evidence": a.evidence, "review": a.review.isoformat()},
        }


@dataclass(frozen=True)
class OutcomeResult:
    outcome: Outcome
    indicators: tuple[IndicatorResult, ...]
    status: str | None  # the best the evidence allows; None: not assessed
    worst: str | None  # the status were every indicator that needs attestation not met

    @property
    def settled(self) -> bool:
        """No attestation could change the status."""
        return self.status is not None and self.status == self.worst

    @property
    def needs_attestation(self) -> list[str]:
        return [i.indicator.id for i in self.indicators if i.met is None]

    def target(self, profile: str) -> str | None:
        return self.outcome.profile.get(profile)

    def met(self, profile: str) -> Met | None:
        """Is the profile's target met? None: the CAF version publishes no target."""
        target = self.target(profile)
        if target is None:
            return None
        if self.status is None or self.worst is None:
            return "not assessed"
        if RANK[self.status] < RANK[target]:
            return "no"
        return "yes" if RANK[self.worst] >= RANK[target] else "pending attestation"

    def to_dict(self, profile: str, version: str) -> dict[str, Any]:
        target = self.target(profile)
        return {
            "outcome": self.outcome.code, "title": self.outcome.title, "principle": self.outcome.principle,
            "objective": self.outcome.objective, "status": self.status, "label": label(self.status),
            "assessed": self.status is not None, "settled": self.settled, "at_worst": self.worst,
            "target": target if target is not None else no_target(version),
            "met": self.met(profile),
            "needs_attestation": self.needs_attestation,
            "indicators": [i.to_dict() for i in self.indicators],
        }


def judge_outcome(framework: Caf, outcome: Outcome, indicators: Sequence[IndicatorResult]) -> OutcomeResult:
    if all(i.met is None for i in indicators):
        return OutcomeResult(outcome, tuple(indicators), None, None)
    cases = []
    for unknown in (True, False):
        columns: dict[str, list[bool]] = {}
        for i in indicators:
            columns.setdefault(i.indicator.status, []).append(i.truth(unknown))
        cases.append(outcome_status(framework, columns))
    return OutcomeResult(outcome, tuple(indicators), cases[0], cases[1])


def attestation_state(attestations: Sequence[Attestation], today: dt.date) -> tuple[State, Attestation | None]:
    """The latest attestation of one indicator: attested until its review date, lapsed after it."""
    if not attestations:
        return "needs attestation", None
    latest = max(attestations, key=lambda a: (a.review, a.date))
    return ("attested" if today <= latest.review else "lapsed"), latest


def judge_indicator(indicator: Indicator, findings: Sequence[Finding], attestations: Sequence[Attestation],
                    today: dt.date) -> IndicatorResult:
    if findings:
        state: State = "met" if all(f.status == "pass" for f in findings) else "not met"
        latest = max(attestations, key=lambda a: (a.review, a.date)) if attestations else None
        return IndicatorResult(indicator, state, tuple(findings), latest)
    state, attestation = attestation_state(attestations, today)
    return IndicatorResult(indicator, state, (), attestation)


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class CafReport:
    version: str
    profile: str
    today: dt.date
    exit_code: int
    councils: dict[str, tuple[OutcomeResult, ...]]
    source: dict[str, str]

    def counts(self, key: str) -> dict[str, int]:
        """Per status (label) and per profile verdict, how many outcomes."""
        out: Counter[str] = Counter()
        for o in self.councils[key]:
            out[label(o.status)] += 1
            met = o.met(self.profile)
            if met is not None:
                out[f"met: {met}"] += 1
        return dict(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "framework": "NCSC Cyber Assessment Framework",
            "caf_version": self.version,
            "profile": self.profile if self.version == "3.2" else no_target(self.version),
            "date": self.today.isoformat(),
            "exit_code": self.exit_code,
            "source": self.source,
            "assessment": ("CAF assessment rules as the CDDO assessment service applies them "
                           "(github.com/co-cddo/domains-webcaf webcaf/webcaf/caf/util.py); an indicator is met when "
                           "every finding of the controls citing it passes (exempt: not enforced, so not met), else "
                           "by a council's attestation until its review date"),
            "councils": {key: {"counts": self.counts(key),
                               "outcomes": [o.to_dict(self.profile, self.version) for o in outcomes]}
                         for key, outcomes in self.councils.items()},
        }


def check_attestations(estate: Estate) -> None:
    """Every council's attestations name an indicator of CAF 3.2 or 4.0: else one line per bad id, with its line."""
    problems: list[Problem] = []
    for rec in estate.councils.values():
        for i, a in enumerate(rec.council.attestations):
            if not any(caf(v).knows(a.indicator) and a.indicator not in caf(v).outcomes for v in CAF_VERSIONS):
                problems.append(Problem(rec.source.file, rec.source.line(("attestations", i, "indicator")),
                                        f"attestations[{i}].indicator",
                                        f"unknown CAF indicator {a.indicator!r} (neither CAF 3.2 nor 4.0 has it)"))
    if problems:
        raise EstateError(problems)


def cited(findings: Sequence[Finding], version: str) -> dict[str, list[Finding]]:
    """Indicator id -> the findings of the controls that cite it in CAF `version`."""
    out: dict[str, list[Finding]] = {}
    specs: dict[str, ControlSpec | None] = {}
    for f in findings:
        if f.rule_id not in specs:
            specs[f.rule_id] = control_of(f.rule_id)
        spec = specs[f.rule_id]
        for ref in spec.caf.get(version, ()) if spec is not None else ():
            out.setdefault(ref, []).append(f)
    return out


def caf_report(estate: Estate, report: Report, *, version: str = "3.2", profile: str = "baseline") -> CafReport:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r} (known: {', '.join(PROFILES)})")
    framework = caf(version)
    check_attestations(estate)
    councils: dict[str, tuple[OutcomeResult, ...]] = {}
    for key, result in report.councils.items():
        rec = estate.councils.get(key)
        attested: dict[str, list[Attestation]] = {}
        for a in rec.council.attestations if rec is not None else []:
            attested.setdefault(a.indicator, []).append(a)
        evidence = cited(result.findings, version)
        outcomes = []
        for outcome in framework.outcomes.values():
            indicators = [judge_indicator(i, evidence.get(i.id, ()), attested.get(i.id, ()), report.today)
                          for i in outcome.indicators]
            outcomes.append(judge_outcome(framework, outcome, indicators))
        councils[key] = tuple(outcomes)
    return CafReport(version, profile, report.today, report.exit_code, councils, dict(framework.source))


# --------------------------------------------------------------------------- rendering


def render_caf_json(view: CafReport) -> str:
    return json.dumps(view.to_dict(), indent=2, ensure_ascii=False) + "\n"


def render_caf_table(view: CafReport, width: int | None = None) -> str:
    from rich.console import Console
    from rich.table import Table

    buf = io.StringIO()
    out = Console(file=buf, width=width or 160, force_terminal=False, color_system=None, soft_wrap=False)
    target_note = (f"profile {view.profile}" if view.version == "3.2" else no_target(view.version))
    out.print(f"NCSC CAF {view.version}, {target_note}, judged {view.today}: the status the CAF's assessment rules "
              "give from the indicators our evidence covers (best case while indicators need attestation; "
              "exempt findings count as not enforced)")
    for key, outcomes in view.councils.items():
        table = Table(title=f"{key}: CAF {view.version} contributing outcomes", show_lines=True)
        for col in ("outcome", "status", "target", "met", "evidence per indicator", "needs attestation"):
            table.add_column(col, overflow="fold")
        for o in outcomes:
            target = o.target(view.profile)
            judged = [f"{i.indicator.id} {i.summary()}" for i in o.indicators if i.met is not None
                      or i.state == "lapsed"]
            pending = o.needs_attestation
            shown = ("all " + str(len(pending))) if pending and len(pending) == len(o.indicators) else ", ".join(
                p.split(".", 2)[2] for p in pending)
            status = label(o.status) if o.status is None or o.settled else f"at best {label(o.status)}"
            table.add_row(f"{o.outcome.code} {o.outcome.title}", status,
                          label(target) if target is not None else "-",
                          o.met(view.profile) or "-", "\n".join(judged) or "-", shown or "-")
        out.print(table)
        counts = view.counts(key)
        out.print(f"{key}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    if view.version != "3.2":
        out.print(no_target(view.version) + ": no outcome is met or missed against a profile")
    return buf.getvalue()
