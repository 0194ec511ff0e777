"""A framework change, seen before it is agreed (issue 15 item 2).

Two views of a proposed framework.yaml:

* `judge_change`: the estate judged against the proposed framework beside the current one (`estate check
  --framework PROPOSED.yaml`): the same inventories, the same planes (the asset registers; the offline plan,
  planned again under the proposal, since the stacks read the framework; the deployed state; host facts), the
  one engine run twice (estate.compliance.evaluate), and the roadmap built twice (estate.roadmap.build). What
  changes: each council's (and the hub's) score, the findings that newly fail or newly pass (matched by rule id,
  council and resource), the roadmap's moves that shift (their quarter, or an area that starts or stops moving)
  and the savings that change.
* `audit`: the actual differences between two framework files by dotted path (`estate framework-diff OLD NEW`),
  and whether NEW's change log entry (the one for NEW's version) accounts for each of them, and only them.

A proposed framework must be newer (CalVer) than the one it replaces: `require_newer`, one line naming the file, the
line and the field `version`, exit 2. A malformed one is refused by the loader, with its file:line errors.

Paths: a mapping's keys join with dots (`security.passwords.min_length`); an item of a list of named things (each a
mapping with a distinct `id`, `name`, `area` or `priority`) by that key in brackets (`network.vlans[servers].prefix`,
`network.flows[FL-03].ports`); any other list is compared whole (a list of words, `security.tagging.required`) when
its items are not mappings, else item by item by index (`desktop.operating_systems.supported[0].end_of_support`).
The framework's `version` and `changelog` are the change's own record, not differences it makes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from estate import roadmap
from estate.compliance import evaluate
from estate.compliance.findings import FAILING, Finding, Report
from estate.controls.base import HUB, CloudResource
from estate.controls.facts import HostFacts
from estate.errors import Problem, format_path
from estate.loader import Estate, check_estate, load_framework
from estate.models import ChangelogEntry, Framework, LoggedChange, calver
from estate.yamlsrc import Loc, Sourced

# Fields that are the change's own record, not a difference it makes to the estate
RECORD_FIELDS = ("version", "changelog")
# A list whose items are mappings that each hold a distinct value under one of these keys is keyed by it
LIST_KEYS = ("name", "id", "area", "priority")


# --------------------------------------------------------------------------- the proposed framework


def require_newer(current: Framework, current_file: str, proposed: Framework, src: Sourced) -> None:
    """The proposed framework's version must come after the current one's (CalVer YYYY.MM[.N]): else one line at
    the proposed file's `version`."""
    if calver(proposed.version) <= calver(current.version):
        same = "the same version as" if calver(proposed.version) == calver(current.version) else "older than"
        raise src.error(("version",), f"{proposed.version} is {same} {current.version} ({current_file}): a "
                                      "proposed framework takes a newer CalVer version (YYYY.MM or YYYY.MM.N)")


def load_proposed(estate: Estate, path: Path) -> Estate:
    """The estate under the framework at `path`: the same inventories (already loaded: not read again), the proposed
    framework validated by the loader and checked against them as load_estate checks the current one (a council's
    block outside a changed supernet is its file's error). EstateError (exit 2) for a malformed or older proposal."""
    framework, src = load_framework(path)
    require_newer(estate.framework, estate.framework_source.file, framework, src)
    proposed = dataclasses.replace(estate, framework=framework, framework_source=src)
    check_estate(proposed)
    return proposed


# --------------------------------------------------------------------------- the estate judged twice


@dataclass(frozen=True)
class ScoreChange:
    council: str
    before: float | None  # None: not judged under that framework
    after: float | None
    passing_before: int
    applicable_before: int
    passing_after: int
    applicable_after: int

    @property
    def changed(self) -> bool:
        return (self.before, self.passing_before, self.applicable_before) != (
            self.after, self.passing_after, self.applicable_after)

    def to_dict(self) -> dict[str, Any]:
        def rnd(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {"before": rnd(self.before), "after": rnd(self.after),
                "rules_passing": {"before": self.passing_before, "after": self.passing_after},
                "rules_applicable": {"before": self.applicable_before, "after": self.applicable_after},
                "changed": self.changed}


@dataclass(frozen=True)
class FindingChange:
    """One finding (rule id, council, resource) whose status, or whether it blocks, differs under the proposal."""

    rule_id: str
    council: str
    resource: str
    before: Finding | None  # None: the rule does not judge it under that framework
    after: Finding | None

    @staticmethod
    def _status(f: Finding | None) -> str:
        return f.status if f is not None else "not judged"

    @property
    def statuses(self) -> tuple[str, str]:
        """The status before and after ('not judged' when the rule does not judge it under that framework)."""
        return self._status(self.before), self._status(self.after)

    @property
    def kind(self) -> str:
        """'newly fails' (fail or expired now, not before), 'newly passes' (a pass now, not before), else 'changed'
        (to or from exempt or not judged, or the same status that now blocks or no longer does)."""
        before, after = self._status(self.before), self._status(self.after)
        if after in FAILING and before not in FAILING:
            return "newly fails"
        if after == "pass" and before != "pass":
            return "newly passes"
        return "changed"

    @property
    def blocking(self) -> tuple[bool, bool]:
        return (self.before is not None and self.before.blocking, self.after is not None and self.after.blocking)

    @property
    def short_resource(self) -> str:
        f = self.after or self.before
        return f.short_resource if f is not None else self.resource

    @property
    def message(self) -> str:
        f = self.after or self.before
        return f.message if f is not None else ""

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule_id, "council": self.council, "resource": self.resource, "kind": self.kind,
                "status": {"before": self._status(self.before), "after": self._status(self.after)},
                "blocking": {"before": self.blocking[0], "after": self.blocking[1]},
                "message": {"before": self.before.message if self.before else None,
                            "after": self.after.message if self.after else None}}


@dataclass(frozen=True)
class MoveShift:
    """An area of a council's roadmap whose move differs: its quarter, or it starts or stops needing a move."""

    council: str
    area: str
    before: roadmap.Move | None  # None: the area is converged (no move) under that framework
    after: roadmap.Move | None

    @staticmethod
    def _quarter(m: roadmap.Move | None) -> str:
        return str(m.quarter) if m is not None else "converged"

    @property
    def quarters(self) -> tuple[str, str]:
        return self._quarter(self.before), self._quarter(self.after)

    @property
    def savings(self) -> tuple[float, float]:
        return (self.before.saving if self.before else 0.0, self.after.saving if self.after else 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"council": self.council, "area": self.area,
                "quarter": {"before": self.quarters[0], "after": self.quarters[1]},
                "annual_saving": {"before": _money(self.savings[0]), "after": _money(self.savings[1])},
                "before": self.before.to_dict() if self.before else None,
                "after": self.after.to_dict() if self.after else None}


@dataclass(frozen=True)
class SavingChange:
    council: str
    before: float
    after: float

    def to_dict(self) -> dict[str, Any]:
        return {"before": _money(self.before), "after": _money(self.after), "change": _money(self.after - self.before)}


@dataclass(frozen=True)
class FrameworkChange:
    """The estate judged under the current and the proposed framework, and what differs."""

    current: Estate
    proposed: Estate
    before: Report
    after: Report
    scores: tuple[ScoreChange, ...]
    findings: tuple[FindingChange, ...]
    moves: tuple[MoveShift, ...]
    savings: tuple[SavingChange, ...]  # every council on the roadmap, changed or not

    @property
    def newly_failing(self) -> list[FindingChange]:
        return [c for c in self.findings if c.kind == "newly fails"]

    @property
    def newly_passing(self) -> list[FindingChange]:
        return [c for c in self.findings if c.kind == "newly passes"]

    @property
    def changed_councils(self) -> list[str]:
        """The councils (and the hub) whose score or any finding changes, in the report's order."""
        touched = {s.council for s in self.scores if s.changed} | {c.council for c in self.findings}
        return [s.council for s in self.scores if s.council in touched]

    @property
    def exit_code(self) -> int:
        """As `estate check` would exit under the proposed framework."""
        return self.after.exit_code

    def to_dict(self) -> dict[str, Any]:
        return {
            "current": {"version": self.before.framework_version, "file": self.current.framework_source.file},
            "proposed": {"version": self.after.framework_version, "file": self.proposed.framework_source.file},
            "date": self.after.today.isoformat(),
            "sources": list(self.after.sources),
            "exit_code": {"before": self.before.exit_code, "after": self.after.exit_code},
            "changed_councils": self.changed_councils,
            "councils": {s.council: s.to_dict() for s in self.scores},
            "findings": {
                "newly_failing": [c.to_dict() for c in self.newly_failing],
                "newly_passing": [c.to_dict() for c in self.newly_passing],
                "changed": [c.to_dict() for c in self.findings if c.kind == "changed"],
            },
            "roadmap": {
                "moves": [m.to_dict() for m in self.moves],
                "savings": {s.council: s.to_dict() for s in self.savings},
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


def _money(value: float) -> float:
    return round(value + 0.0, 2)


def judge_change(before: Report, current: Estate, proposed: Estate, *, councils: Sequence[str] | None,
                 resources: Iterable[CloudResource] | None, hosts: Iterable[HostFacts] | None,
                 deployed: Sequence[str] | None, today: dt.date,
                 adjust: Callable[[Report], Report] | None = None) -> FrameworkChange:
    """`before` (the current framework's report, as `estate check` made it) beside the proposed framework's report
    on the same planes: `resources` are the proposal's cloud resources (its own offline plan: the stacks read the
    framework, so `estate check --plan --framework` plans them again under the proposal; or the same deployed state;
    or none), the same host facts. `adjust`: what `estate check` did to `before` after judging (its --baseline),
    done to the proposal's report too."""
    after = evaluate(proposed, resources=None if resources is None else list(resources),
                     hosts=None if hosts is None else list(hosts), councils=councils, today=today, deployed=deployed)
    after = dataclasses.replace(after, sources=before.sources)
    if adjust is not None:
        after = adjust(after)
    return compare(current, proposed, before, after)


def compare(current: Estate, proposed: Estate, before: Report, after: Report) -> FrameworkChange:
    """What differs between two reports of the same estate under two frameworks."""
    keys = list(dict.fromkeys([*before.councils, *after.councils]))
    keys = [k for k in keys if k != HUB] + ([HUB] if HUB in keys else [])
    scores = []
    for key in keys:
        b, a = before.councils.get(key), after.councils.get(key)
        scores.append(ScoreChange(key, b.score if b else None, a.score if a else None,
                                  b.rules_passing if b else 0, b.rules_applicable if b else 0,
                                  a.rules_passing if a else 0, a.rules_applicable if a else 0))
    findings = _finding_changes(before.findings, after.findings)
    rank = {k: i for i, k in enumerate(keys)}
    findings.sort(key=lambda c: (rank.get(c.council, len(rank)), c.rule_id, c.resource))
    moves, savings = _roadmap_changes(current, proposed, before, after)
    return FrameworkChange(current, proposed, before, after, tuple(scores), tuple(findings), tuple(moves),
                           tuple(savings))


def _finding_changes(before: Sequence[Finding], after: Sequence[Finding]) -> list[FindingChange]:
    """Findings matched by (rule id, council, resource); several with the same key pair in their order."""
    def group(findings: Sequence[Finding]) -> dict[tuple[str, str, str], list[Finding]]:
        out: dict[tuple[str, str, str], list[Finding]] = {}
        for f in findings:
            out.setdefault((f.rule_id, f.council, f.resource), []).append(f)
        return out

    old, new = group(before), group(after)
    out: list[FindingChange] = []
    for key in dict.fromkeys([*old, *new]):
        olds, news = old.get(key, []), new.get(key, [])
        for i in range(max(len(olds), len(news))):
            b = olds[i] if i < len(olds) else None
            a = news[i] if i < len(news) else None
            if (b.status if b else None, b.blocking if b else False) != (a.status if a else None,
                                                                           a.blocking if a else False):
                out.append(FindingChange(*key, b, a))
    return out


def _roadmap_changes(current: Estate, proposed: Estate, before: Report,
                     after: Report) -> tuple[list[MoveShift], list[SavingChange]]:
    keys = [k for k in current.councils if k in before.councils or k in after.councils]
    if not keys:
        return [], []
    old = roadmap.build(current, today=before.today, councils=keys, report=before)
    new = roadmap.build(proposed, today=after.today, councils=keys, report=after)
    moves: list[MoveShift] = []
    savings: list[SavingChange] = []
    areas = [a.area for a in proposed.framework.migration.areas]
    areas += [a.area for a in current.framework.migration.areas if a.area not in areas]
    for key in keys:
        b = {m.area: m for m in old.councils[key].moves}
        a = {m.area: m for m in new.councils[key].moves}
        for area in areas:
            mb, ma = b.get(area), a.get(area)
            if mb is None and ma is None:
                continue  # converged under both
            if mb is not None and ma is not None and (mb.quarter, _money(mb.saving)) == (ma.quarter, _money(ma.saving)):
                continue  # the same move
            moves.append(MoveShift(key, area, mb, ma))
        savings.append(SavingChange(key, old.councils[key].saving, new.councils[key].saving))
    return moves, savings


# --------------------------------------------------------------------------- two framework files compared


MISSING: Any = object()  # a path one side does not have


@dataclass(frozen=True)
class Difference:
    path: str
    old: Any  # MISSING: the path is added
    new: Any  # MISSING: the path is removed
    loc: Loc  # where it is in the file that has it (NEW, else OLD)

    @property
    def kind(self) -> str:
        return "added" if self.old is MISSING else "removed" if self.new is MISSING else "changed"

    @property
    def change(self) -> str:
        if self.kind == "added":
            return f"added {shown(self.new)}"
        if self.kind == "removed":
            return f"removed (was {shown(self.old)})"
        return f"{shown(self.old)} -> {shown(self.new)}"

    def __str__(self) -> str:
        return f"{self.path}: {self.change}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "kind": self.kind}
        if self.old is not MISSING:
            out["from"] = self.old
        if self.new is not MISSING:
            out["to"] = self.new
        return out


def shown(value: Any) -> str:
    """A value as the diff prints it: JSON, dates as text."""
    return json.dumps(value, default=str, separators=(", ", ": "))


def plain(value: Any) -> Any:
    """A value as JSON holds it (a date as its ISO text), for comparing a logged value with the framework's."""
    return json.loads(json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, dt.date) else str(v)))


def _list_key(old: list[Any], new: list[Any]) -> str | None:
    """The field that names each item of both lists (distinct within each), or None (items by index)."""
    def names(items: list[Any], key: str) -> bool:
        values = [i.get(key) for i in items]
        return all(isinstance(v, str | int) and not isinstance(v, bool) for v in values) and len(set(values)) == len(
            values)

    return next((key for key in LIST_KEYS if names(old, key) and names(new, key)), None)


def differences(old: Any, new: Any, path: str = "", loc: Loc = ()) -> list[Difference]:
    """Every difference between two plain values (a framework's model_dump), by dotted path, in NEW's order. `loc`
    is where the value sits in NEW (for a removed one, its parent's place)."""
    before: dict[str, Any]
    after: dict[str, Any]
    index: dict[str, str | int]
    if isinstance(old, dict) and isinstance(new, dict):
        before, after = {str(k): v for k, v in old.items()}, {str(k): v for k, v in new.items()}
        index = {str(k): k for k in new}
        names = [f"{path}.{k}" if path else str(k) for k in (*after, *(k for k in before if k not in after))]
    elif (isinstance(old, list) and isinstance(new, list) and (old or new)
          and all(isinstance(i, dict) for i in [*old, *new])):
        key = _list_key(old, new)
        before = {str(item[key]) if key else str(i): item for i, item in enumerate(old)}
        after = {str(item[key]) if key else str(i): item for i, item in enumerate(new)}
        index = {label: i for i, label in enumerate(after)}
        names = [f"{path}[{k}]" for k in (*after, *(k for k in before if k not in after))]
    else:
        return [Difference(path, old, new, loc)] if old != new or type(old) is not type(new) else []
    out: list[Difference] = []
    labels = [*after, *(k for k in before if k not in after)]
    for label, sub in zip(labels, names, strict=True):
        where = (*loc, index[label]) if label in index else loc
        if label not in before:
            out.append(Difference(sub, MISSING, after[label], where))
        elif label not in after:
            out.append(Difference(sub, before[label], MISSING, where))
        else:
            out.extend(differences(before[label], after[label], sub, where))
    return out


def framework_differences(old: Framework, new: Framework) -> list[Difference]:
    def data(fw: Framework) -> dict[str, Any]:
        return {k: v for k, v in fw.model_dump(mode="json", by_alias=True).items() if k not in RECORD_FIELDS}

    return differences(data(old), data(new))


@dataclass(frozen=True)
class Audit:
    """Two framework files compared, and NEW's change log entry checked against what actually differs."""

    old_file: str
    new_file: str
    old_version: str
    new_version: str
    differences: tuple[Difference, ...]
    entry: ChangelogEntry | None  # NEW's entry for its version
    problems: tuple[Problem, ...] = field(default=())  # what the log and the differences disagree on

    @property
    def exit_code(self) -> int:
        return 1 if self.problems else 0

    def to_dict(self) -> dict[str, Any]:
        return {"old": {"file": self.old_file, "version": self.old_version},
                "new": {"file": self.new_file, "version": self.new_version},
                "differences": [d.to_dict() for d in self.differences],
                "changelog": None if self.entry is None else self.entry.model_dump(mode="json"),
                "problems": [str(p) for p in self.problems],
                "exit_code": self.exit_code}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


def _logged(change: LoggedChange, side: str) -> Any:
    """A logged change's `from` or `to` (MISSING when the entry leaves it out: the path is added or removed)."""
    name = "from_" if side == "from" else "to"
    return plain(getattr(change, name)) if name in change.model_fields_set else MISSING


def audit(old_path: Path, new_path: Path) -> Audit:
    """Load both files (the loader's file:line errors for a malformed one), require NEW to be newer, and check NEW's
    change log entry for its version against the actual differences: a difference the entry does not name, a logged
    path that did not change, or a logged `from`/`to` that is not the actual value, is a problem (exit 1)."""
    old, old_src = load_framework(old_path)
    new, src = load_framework(new_path)
    require_newer(old, old_src.file, new, src)
    diffs = framework_differences(old, new)
    index = next((i for i, e in enumerate(new.changelog) if calver(e.version) == calver(new.version)), None)
    problems: list[Problem] = []

    def at(loc: Loc, message: str) -> Problem:
        return Problem(src.file, src.line(loc), format_path(loc), message)

    if index is None:
        problems.append(at(("changelog",), f"no entry for version {new.version}: the change log does not account "
                                           f"for the {len(diffs)} difference{'s' if len(diffs) != 1 else ''} "
                                           f"from {old.version}"))
        return Audit(old_src.file, src.file, old.version, new.version, tuple(diffs), None, tuple(problems))
    entry = new.changelog[index]
    actual = {d.path: d for d in diffs}
    logged: dict[str, int] = {}
    for j, change in enumerate(entry.changes):
        where = ("changelog", index, "changes", j)
        if change.path in logged:
            problems.append(at((*where, "path"), f"{change.path} is already logged at changes[{logged[change.path]}]"))
            continue
        logged[change.path] = j
        diff = actual.get(change.path)
        if diff is None:
            problems.append(at((*where, "path"), f"{change.path} is logged as changed, but it does not differ from "
                                                 f"{old.version} ({old_src.file})"))
            continue
        for side, value, real in (("from", _logged(change, "from"), diff.old), ("to", _logged(change, "to"), diff.new)):
            if value is MISSING and real is not MISSING:
                problems.append(at(where, f"{change.path}: the entry leaves `{side}` out, but the value is "
                                          f"{shown(real)} (only an added path leaves `from` out, a removed one `to`)"))
            elif value is not MISSING and real is MISSING:
                problems.append(at((*where, side), f"{change.path}: logged {side} {shown(value)}, but the path is "
                                                   f"{'added' if side == 'from' else 'removed'}"))
            elif value is not MISSING and value != real:
                problems.append(at((*where, side), f"{change.path}: logged {side} {shown(value)}, actually "
                                                   f"{shown(real)}"))
    for diff in diffs:
        if diff.path not in logged:
            problems.append(Problem(src.file, src.line(diff.loc), diff.path,
                                    f"{diff.change}: not in the change log entry for {new.version}"))
    return Audit(old_src.file, src.file, old.version, new.version, tuple(diffs), entry, tuple(problems))
