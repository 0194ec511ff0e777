"""The convergence roadmap: each council's path to the framework, contract by contract, with savings. This module
computes it (`build`, `Roadmap.to_json`); estate.reports.roadmap renders it (the table, the HTML section, the charts).

The model (also in docs/roadmap.md, and tested against hand-computed fixtures):

* An area (framework.yaml `migration.areas`) is **not converged** for a council when the council has a
  finding in it that does not pass (fail, exempt or expired), or a running *legacy* contract in it: a
  contract whose supplier is not `migration.shared_service_supplier` and whose end is on or after today.
* What **holds the area back**: its running legacy contracts, and the contracts named by the
  exemptions of its non-passing findings (when they are running legacy contracts). The one that ends
  last is *the* blocking contract; its end is the date the area **can move**. Nothing holding it back:
  it can move today.
* The area **moves** in the first calendar quarter that starts after that date, and no earlier than
  the quarter after each of the areas it depends on (`depends_on`) moves, unless that dependency is
  already converged. When a dependency pushes the move past the contract's end, the gap is reported
  (the contract must be extended or bridged for that many days).
* **Projected score** in a quarter: the compliance score (estate.compliance.engine.score) of the
  council's findings with every finding of an area that has moved by then counted as a pass. The
  current quarter is today's score (no area moves before the next quarter).
* **Savings**, annual, per moving area: the annual cost of its running legacy contracts (retired)
  less the council's share of the shared service for that area, `migration.shared_service_annual_cost`
  x the council's staff / the consortium's staff. A council that already holds a shared-service
  contract in the area pays that share already, so its share there is not counted again.
* **Channel shift**, annual, when council.yml gives `transactions`: web transactions rise to
  `web_share_target` of all transactions; the transactions moved come from face to face and phone in
  proportion to their volumes; each moved transaction saves its channel's unit cost less the web's
  (`migration.channel_shift`).
* An exemption whose expiry is later than its contract's end is flagged.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from estate.compliance import evaluate
from estate.compliance.engine import score
from estate.compliance.findings import Finding, Report
from estate.errors import EstateError
from estate.loader import Estate
from estate.models import Contract, Council

NOT_PASSING = ("fail", "exempt", "expired")


# --------------------------------------------------------------------------- quarters


@dataclass(frozen=True, order=True)
class Quarter:
    """A calendar quarter: Q1 is January to March."""

    year: int
    q: int

    @classmethod
    def of(cls, day: dt.date) -> Quarter:
        return cls(day.year, (day.month - 1) // 3 + 1)

    @classmethod
    def after(cls, day: dt.date) -> Quarter:
        """The first quarter that starts after `day`."""
        return cls.of(day).next()

    @property
    def start(self) -> dt.date:
        return dt.date(self.year, 3 * (self.q - 1) + 1, 1)

    @property
    def end(self) -> dt.date:
        return self.next().start - dt.timedelta(days=1)

    def next(self) -> Quarter:
        return Quarter(self.year + 1, 1) if self.q == 4 else Quarter(self.year, self.q + 1)

    def previous(self) -> Quarter:
        return Quarter(self.year - 1, 4) if self.q == 1 else Quarter(self.year, self.q - 1)

    def until(self, last: Quarter) -> list[Quarter]:
        """This quarter to `last`, inclusive."""
        out, cur = [], self
        while cur <= last:
            out.append(cur)
            cur = cur.next()
        return out

    def __str__(self) -> str:
        return f"{self.year} Q{self.q}"


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class ContractRef:
    id: str
    supplier: str
    area: str
    annual_cost: float
    end: dt.date

    @classmethod
    def of(cls, c: Contract) -> ContractRef:
        return cls(c.id, c.supplier, c.area, c.annual_cost, c.end)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "supplier": self.supplier, "area": self.area,
                "annual_cost": _money(self.annual_cost), "end": self.end.isoformat()}


@dataclass(frozen=True)
class Move:
    """One area of one council that is not yet converged, and when it moves."""

    area: str
    findings: Mapping[str, int]  # non-passing findings by status
    legacy: tuple[ContractRef, ...]  # running legacy contracts in the area (retired at the move)
    blocking: ContractRef | None  # the contract that ends last of those holding the area back
    can_move: dt.date  # the blocking contract's end, or today
    quarter: Quarter  # when it moves
    waits_for: tuple[str, ...]  # dependencies that push the move later than its own date
    bridge_days: int  # days between the blocking contract's end and the move (0: none)
    retired: float  # annual cost retired
    share: float  # the council's annual share of the shared service for the area (new cost)

    @property
    def saving(self) -> float:
        return self.retired - self.share

    def to_dict(self) -> dict[str, Any]:
        return {
            "area": self.area,
            "findings": dict(self.findings),
            "legacy_contracts": [c.to_dict() for c in self.legacy],
            "blocking_contract": self.blocking.to_dict() if self.blocking else None,
            "can_move": self.can_move.isoformat(),
            "quarter": str(self.quarter),
            "quarter_start": self.quarter.start.isoformat(),
            "waits_for": list(self.waits_for),
            "bridge_days": self.bridge_days,
            "annual_cost_retired": _money(self.retired),
            "shared_service_share": _money(self.share),
            "annual_saving": _money(self.saving),
        }


@dataclass(frozen=True)
class ChannelShift:
    face_to_face: int
    phone: int
    web: int
    web_share_target: float
    moved: float  # transactions moved to the web, per year
    from_face_to_face: float
    from_phone: float
    annual_saving: float

    def to_dict(self) -> dict[str, Any]:
        return {"face_to_face": self.face_to_face, "phone": self.phone, "web": self.web,
                "web_share_target": self.web_share_target, "moved_to_web": round(self.moved, 2),
                "from_face_to_face": round(self.from_face_to_face, 2), "from_phone": round(self.from_phone, 2),
                "annual_saving": _money(self.annual_saving)}


@dataclass(frozen=True)
class Flag:
    """An exemption that outlives its contract."""

    rule: str
    scope: str
    contract: str
    expires: dt.date
    contract_end: dt.date

    @property
    def message(self) -> str:
        days = (self.expires - self.contract_end).days
        return (f"exemption {self.rule} ({self.scope}) expires {self.expires}, {days} days after its "
                f"contract {self.contract} ends ({self.contract_end})")

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "scope": self.scope, "contract": self.contract,
                "expires": self.expires.isoformat(), "contract_end": self.contract_end.isoformat(),
                "message": self.message}


@dataclass(frozen=True)
class CouncilRoadmap:
    key: str
    name: str
    staff: int
    users_share: float  # staff / the consortium's staff
    score: float  # today's convergence score
    converged: tuple[str, ...]  # areas already converged
    moves: tuple[Move, ...]  # in migration order
    projection: tuple[tuple[Quarter, float], ...]  # projected score per quarter, from today's
    channel_shift: ChannelShift | None
    flags: tuple[Flag, ...]

    @property
    def retired(self) -> float:
        return sum(m.retired for m in self.moves)

    @property
    def share(self) -> float:
        return sum(m.share for m in self.moves)

    @property
    def saving(self) -> float:
        """Annual saving once every move is made: contracts retired less the shared-service share,
        plus the channel shift."""
        return self.retired - self.share + (self.channel_shift.annual_saving if self.channel_shift else 0.0)

    @property
    def converges(self) -> Quarter | None:
        return max((m.quarter for m in self.moves), default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "staff": self.staff,
            "users_share": round(self.users_share, 6),
            "score": round(self.score, 4),
            "converged_areas": list(self.converged),
            "moves": [m.to_dict() for m in self.moves],
            "converges": str(self.converges) if self.converges else None,
            "projection": [{"quarter": str(q), "score": round(s, 4)} for q, s in self.projection],
            "savings": {
                "annual_cost_retired": _money(self.retired),
                "shared_service_share": _money(self.share),
                "contracts_net": _money(self.retired - self.share),
                "channel_shift": self.channel_shift.to_dict() if self.channel_shift else None,
                "annual_saving": _money(self.saving),
            },
            "flags": [f.to_dict() for f in self.flags],
        }


@dataclass(frozen=True)
class Roadmap:
    framework_version: str
    today: dt.date
    councils: dict[str, CouncilRoadmap] = field(default_factory=dict)

    @property
    def quarters(self) -> list[Quarter]:
        """From today's quarter to the last move of any council (at least one quarter)."""
        first = Quarter.of(self.today)
        last = max((c.converges for c in self.councils.values() if c.converges), default=first)
        return first.until(last)

    def to_dict(self) -> dict[str, Any]:
        return {"framework_version": self.framework_version, "date": self.today.isoformat(),
                "councils": {k: c.to_dict() for k, c in self.councils.items()}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


def _money(value: float) -> float:
    return round(value + 0.0, 2)


# --------------------------------------------------------------------------- building it


def _score(findings: Sequence[Finding]) -> float:
    return score(findings)[0]


def is_legacy(contract: Contract, shared_supplier: str | None) -> bool:
    return contract.supplier != shared_supplier


def plan_council(estate: Estate, key: str, findings: Sequence[Finding], today: dt.date) -> CouncilRoadmap:
    """One council's roadmap from its findings (as of `today`)."""
    fw = estate.framework
    council: Council = estate.council(key).council
    migration = fw.migration
    shared = migration.shared_service_supplier
    total_staff = sum(r.council.users.staff for r in estate.councils.values())
    users_share = council.users.staff / total_staff
    contracts = {c.id: c for c in council.contracts}

    not_passing: dict[str, list[Finding]] = {}
    for f in findings:
        if f.status in NOT_PASSING:
            not_passing.setdefault(f.area, []).append(f)

    moves: dict[str, Move] = {}
    converged: list[str] = []
    deps: dict[str, list[str]] = {a.area: list(a.depends_on) for a in migration.areas}
    costs: dict[str, float] = {str(k): v for k, v in migration.shared_service_annual_cost.items()}
    order = _topological(list(deps), deps)
    for area in order:
        legacy = [c for c in council.contracts if c.area == area and is_legacy(c, shared) and c.end >= today]
        failing = not_passing.get(area, [])
        if not legacy and not failing:
            converged.append(area)
            continue
        holders = {c.id: c for c in legacy}
        for f in failing:
            if f.exemption is not None and f.exemption.contract in contracts:
                c = contracts[f.exemption.contract]
                if is_legacy(c, shared) and c.end >= today:
                    holders[c.id] = c
        blocking = max(holders.values(), key=lambda c: (c.end, c.id), default=None)
        can_move = blocking.end if blocking else today
        own = Quarter.after(can_move)
        quarter, waits = own, []
        for dep in deps[area]:
            if dep in moves and moves[dep].quarter.next() > quarter:
                quarter = moves[dep].quarter.next()
        if quarter > own:
            waits = [d for d in deps[area] if d in moves and moves[d].quarter.next() > own]
        bridge = (quarter.start - blocking.end).days - 1 if blocking and quarter > own else 0
        already_shared = any(c.area == area and not is_legacy(c, shared) for c in council.contracts)
        share = 0.0 if already_shared else costs.get(area, 0.0) * users_share
        counts: dict[str, int] = {}
        for f in failing:
            counts[f.status] = counts.get(f.status, 0) + 1
        moves[area] = Move(
            area=area, findings={s: counts[s] for s in NOT_PASSING if s in counts},
            legacy=tuple(ContractRef.of(c) for c in sorted(legacy, key=lambda c: (c.end, c.id))),
            blocking=ContractRef.of(blocking) if blocking else None, can_move=can_move, quarter=quarter,
            waits_for=tuple(waits), bridge_days=bridge, retired=sum(c.annual_cost for c in legacy), share=share,
        )

    rank = {a: i for i, a in enumerate(deps)}
    ordered = tuple(sorted(moves.values(), key=lambda m: (m.quarter, rank[m.area])))
    first = Quarter.of(today)
    last = max((m.quarter for m in ordered), default=first)
    projection = tuple((q, _projected_score(findings, moves, q)) for q in first.until(last))

    flags = []
    for ex in council.exemptions:
        named = contracts.get(ex.contract)
        if named is not None and ex.expires > named.end:
            flags.append(Flag(ex.rule, ex.scope, ex.contract, ex.expires, named.end))

    return CouncilRoadmap(
        key=key, name=council.name, staff=council.users.staff, users_share=users_share,
        score=_score(findings), converged=tuple(converged), moves=ordered, projection=projection,
        channel_shift=channel_shift(estate, council), flags=tuple(flags),
    )


def _projected_score(findings: Sequence[Finding], moves: Mapping[str, Move], quarter: Quarter) -> float:
    projected = []
    for f in findings:
        move = moves.get(f.area)
        if f.status in NOT_PASSING and move is not None and move.quarter <= quarter:
            f = dataclasses.replace(f, status="pass")
        projected.append(f)
    return _score(projected)


def _topological(areas: Sequence[str], deps: Mapping[str, Sequence[str]]) -> list[str]:
    """Areas with each after its dependencies, framework order otherwise (the model rejects cycles)."""
    done: list[str] = []
    pending = list(areas)
    while pending:
        for area in pending:
            if all(d in done for d in deps[area]):
                done.append(area)
                pending.remove(area)
                break
        else:  # pragma: no cover - Migration validates that there is no cycle
            raise ValueError(f"areas {pending} depend on each other in a cycle")
    return done


def channel_shift(estate: Estate, council: Council) -> ChannelShift | None:
    t = council.transactions
    if t is None:
        return None
    unit = estate.framework.migration.channel_shift
    total = t.face_to_face + t.phone + t.web
    moved = max(0.0, t.web_share_target * total - t.web)
    offline = t.face_to_face + t.phone
    moved = min(moved, float(offline))
    f2f = moved * t.face_to_face / offline if offline else 0.0
    phone = moved - f2f
    saving = f2f * (unit.face_to_face - unit.web) + phone * (unit.phone - unit.web)
    return ChannelShift(t.face_to_face, t.phone, t.web, t.web_share_target, moved, f2f, phone, saving)


def last_day(areas: int) -> dt.date:
    """The last date the roadmap can plan from. A move lands in the quarter after the later of today and its
    blocking contract's end, one quarter later per area it waits for; the chart adds a quarter for the last
    diamond, and a quarter's end is reckoned from the next quarter's start. Python's calendar ends with year
    datetime.MAXYEAR (9999): a later quarter has no start date."""
    quarter = Quarter(dt.MAXYEAR, 4)
    for _ in range(areas + 3):
        quarter = quarter.previous()
    return quarter.end


def check_horizon(estate: Estate, day: dt.date, keys: Sequence[str]) -> None:
    """Refuse in one line a date the roadmap cannot lay out in quarters: today, or a council's contract end."""
    limit = last_day(len(estate.framework.migration.areas))
    why = f"is after {limit}, the last date the roadmap can plan from (its quarters end in {dt.MAXYEAR})"
    if day > limit:
        raise EstateError.one("--today", 0, "", f"{day} {why}")
    for key in keys:
        record = estate.council(key)
        for i, contract in enumerate(record.council.contracts):
            if contract.end > limit:
                raise record.source.error(("contracts", i, "end"), f"{contract.end} {why}")


def build(estate: Estate, today: dt.date | None = None, councils: Sequence[str] | None = None,
          report: Report | None = None) -> Roadmap:
    """The roadmap of the given councils (default: all), from `report` or the asset registers judged today."""
    day = today or dt.date.today()
    keys = list(councils) if councils is not None else list(estate.councils)
    check_horizon(estate, day, keys)
    if report is None:
        report = evaluate(estate, councils=keys, today=day)
    out = Roadmap(estate.framework.version, day)
    for key in keys:
        result = report.councils.get(key)
        out.councils[key] = plan_council(estate, key, result.findings if result else [], day)
    return out
