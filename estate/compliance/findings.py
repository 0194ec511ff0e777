"""What the engine returns: findings per council, a convergence score, an exit code (CONTRACTS.md s.2)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from estate.controls.references import CAF_VERSIONS
from estate.controls.spec import control_of
from estate.models import Exemption

Status = Literal["pass", "fail", "exempt", "expired"]
Kind = Literal["cloud", "asset", "host"]
STATUSES: tuple[Status, ...] = ("pass", "fail", "exempt", "expired")
FAILING: tuple[Status, ...] = ("fail", "expired")
SEVERITIES = ("critical", "high", "medium", "low")
# the name and version of Finding.fingerprint's recipe (SARIF partialFingerprints key, baseline files)
FINGERPRINT_VERSION = "estateFinding/v1"


@dataclass(frozen=True)
class Finding:
    rule_id: str  # e.g. "NET-003"; prefixes NET, DSK, DCN, HLP, SEC
    title: str
    severity: str  # critical | high | medium | low
    enforcement: str  # mandatory | mandatory_on_create | advisory (from the framework control)
    control: str  # framework control id, e.g. "3.5"
    clause: str  # standard clause, e.g. "CE: Firewalls"
    area: str  # network | identity | datacentre | desktop | telephony | helpdesk
    council: str  # council key, or "shared"
    kind: str  # cloud | asset | host
    resource: str  # URN, asset name, host name: what an exemption's scope is matched against
    status: Status
    message: str
    fix: str
    exemption: Exemption | None = None
    # mandatory_on_create only: True for a new resource (not in the deployed state: it must pass), False for an
    # existing one (a failure warns); None for every other enforcement
    new: bool | None = None
    # an exempt finding of a control whose tasks the exemption also switches off on the council's hosts
    not_enforced: bool = False
    # the property path the rule judged in the resource (a value check's key, a host fact's name, or what the rule
    # names for one of several outcomes on one resource); "" when the rule judges the resource as a whole
    path: str = ""
    # a failure recorded in the baseline `estate check --baseline FILE` was given (estate.compliance.baseline): shown,
    # but it does not make the run exit 1
    baselined: bool = False

    @property
    def fingerprint(self) -> str:
        """The finding's identity across runs, orderings, machines and judging dates: 64 lowercase hex digits.

        Recipe (FINGERPRINT_VERSION "estateFinding/v1"): the SHA-256 of the JSON array
        `["estateFinding/v1", rule_id, council, kind, resource, path]` as json.dumps writes it by default (ASCII,
        anything else as \\u escapes; separators ", " and ": "). The resource is what the rule judged (a cloud
        resource's full URN, a host's name, an asset's name) and the path the property in it (`path`, "" for the
        whole resource). Nothing that describes the verdict goes in: not the status, the message, the values, the
        fix, the exemption nor the date, so a value that changes, or a failure fixed that comes back, keeps its
        fingerprint."""
        parts = [FINGERPRINT_VERSION, self.rule_id, self.council, self.kind, self.resource, self.path]
        return hashlib.sha256(json.dumps(parts).encode("ascii")).hexdigest()

    @property
    def failing(self) -> bool:
        """A failure: `fail`, or `expired` (an exemption whose date has passed)."""
        return self.status in FAILING

    @property
    def must_pass(self) -> bool:
        """A failure of a mandatory control, or of a mandatory_on_create one on a new resource, baselined or not."""
        return self.failing and (self.enforcement == "mandatory"
                                 or (self.enforcement == "mandatory_on_create" and self.new is True))

    @property
    def blocking(self) -> bool:
        """A failure of a mandatory control, or of a mandatory_on_create one on a new resource, that the baseline
        (if any) does not hold: it makes `estate check` exit 1."""
        return self.must_pass and not self.baselined

    @property
    def short_resource(self) -> str:
        """The resource's short name: the last part of a URN, else the resource itself."""
        return self.resource.rsplit("::", 1)[-1] if self.resource.startswith("urn:") else self.resource

    @property
    def references(self) -> dict[str, Any]:
        """What its control cites: NCSC CAF indicators per CAF version and Cyber Essentials requirement ids
        (estate/controls/spec.py); empty while its rule's control has no home."""
        spec = control_of(self.rule_id)
        caf = {v: list(spec.caf.get(v, ())) if spec is not None else [] for v in CAF_VERSIONS}
        return {"caf": caf, "ce": list(spec.ce) if spec is not None else []}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule_id, "title": self.title, "severity": self.severity,
            "enforcement": self.enforcement, "control": self.control, "clause": self.clause,
            "area": self.area, "council": self.council, "kind": self.kind, "resource": self.resource,
            "status": self.status, "message": self.message, "fix": self.fix, "exemption": None,
            "new": self.new, "not_enforced": self.not_enforced, "path": self.path,
            "fingerprint": self.fingerprint, "baselined": self.baselined,
        }
        if self.exemption is not None:
            ex = self.exemption
            out["exemption"] = {"rule": ex.rule, "scope": ex.scope, "reason": ex.reason,
                                "contract": ex.contract, "expires": ex.expires.isoformat(),
                                "owner": ex.owner, "approver": ex.approver}
        return out


NoticeLevel = Literal["warning", "error"]


@dataclass(frozen=True)
class Notice:
    """What a run says about a council's exemptions beside its findings, at the exemption's file and line:
    a `warning` when one expires within 30 days of the judging date, an `error` when one matches nothing its rule
    judged (stale data that hides nothing: `estate check` exits 1)."""

    level: NoticeLevel
    council: str
    rule: str
    scope: str
    file: str
    line: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "scope": self.scope, "file": self.file, "line": self.line,
                "message": self.message}


@dataclass(frozen=True)
class CouncilResult:
    """One council's (or the hub's) result. A rule counts once per service area it applies to; it
    passes when every one of its findings there passes. `score` is the share of those that pass."""

    council: str
    score: float
    findings: list[Finding]
    by_area: dict[str, float]
    rules_applicable: int = 0
    rules_passing: int = 0
    notices: tuple[Notice, ...] = ()

    @property
    def warnings(self) -> list[Notice]:
        return [n for n in self.notices if n.level == "warning"]

    @property
    def errors(self) -> list[Notice]:
        return [n for n in self.notices if n.level == "error"]

    def count(self, status: Status) -> int:
        return sum(1 for f in self.findings if f.status == status)

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.blocking]

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.failing]


@dataclass(frozen=True)
class Report:
    framework_version: str
    today: dt.date
    sources: tuple[str, ...]  # what was judged: "assets", "plan", "state:FILE", "hosts"
    councils: dict[str, CouncilResult] = field(default_factory=dict)
    # the baseline file the failures were compared with (`--baseline`, as the user named it), or None
    baseline: str | None = None

    @property
    def findings(self) -> list[Finding]:
        return [f for result in self.councils.values() for f in result.findings]

    @property
    def notices(self) -> list[Notice]:
        return [n for result in self.councils.values() for n in result.notices]

    @property
    def exit_code(self) -> int:
        """0 when no mandatory rule fails (fail or expired) but in the baseline, if one was given, and every exemption
        matches something its rule judged; 1 otherwise."""
        blocked = any(f.blocking for f in self.findings) or any(n.level == "error" for n in self.notices)
        return 1 if blocked else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "framework_version": self.framework_version,
            "date": self.today.isoformat(),
            "sources": list(self.sources),
            "baseline": self.baseline,
            "exit_code": self.exit_code,
            "councils": {
                key: {
                    "score": round(r.score, 4),
                    "rules_applicable": r.rules_applicable,
                    "rules_passing": r.rules_passing,
                    "by_area": {a: round(s, 4) for a, s in r.by_area.items()},
                    "counts": {s: r.count(s) for s in STATUSES},
                    "findings": [f.to_dict() for f in r.findings],
                    "warnings": [n.to_dict() for n in r.warnings],
                    "errors": [n.to_dict() for n in r.errors],
                }
                for key, r in self.councils.items()
            },
        }
