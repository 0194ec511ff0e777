"""The convergence roadmap: each council's path to the framework, contract by contract, with savings.

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
import html
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from estate.compliance.findings import Finding, Report
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
    from estate.compliance.engine import score

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
    from estate.errors import EstateError

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
        from estate.compliance import evaluate

        report = evaluate(estate, councils=keys, today=day)
    out = Roadmap(estate.framework.version, day)
    for key in keys:
        result = report.councils.get(key)
        out.councils[key] = plan_council(estate, key, result.findings if result else [], day)
    return out


# --------------------------------------------------------------------------- text output


def _gbp(value: float) -> str:
    sign = "-" if value < -0.005 else ""
    return f"{sign}£{abs(value):,.0f}"


def render_table(roadmap: Roadmap, width: int | None = None) -> str:
    """Per council: the moves in order, each with the contract that holds it back, when it ends, the
    quarter of the move, what it waits for, its findings and its annual saving; then the projected
    score, the savings and the flags."""
    from rich.console import Console
    from rich.table import Table

    buf = io.StringIO()
    out = Console(file=buf, width=width or _width(), color_system=None, highlight=False, soft_wrap=True)
    out.print(f"Convergence roadmap, framework {roadmap.framework_version}, as of {roadmap.today}")
    for key, c in roadmap.councils.items():
        out.print()
        done = f"fully converged in {c.converges}" if c.converges else "nothing left to move"
        out.print(f"[bold]{key}[/bold] ({c.name}): score {c.score:.0%} today; {done}")
        out.print(f"  converged already: {', '.join(c.converged) or 'none'}")
        if c.moves:
            table = Table(title=None, show_edge=False, pad_edge=False)
            for col in ("#", "area", "moves", "held back by", "ends", "waits for", "not passing",
                        "retired/yr", "share/yr", "saving/yr"):
                money = col.endswith("/yr")
                table.add_column(col, justify="right" if money or col == "#" else "left",
                                 no_wrap=money or col in ("#", "area", "moves", "ends", "held back by"))
            for i, m in enumerate(c.moves, 1):
                waits = ", ".join(m.waits_for) + (f" +{m.bridge_days}d" if m.bridge_days else "")
                table.add_row(str(i), m.area, str(m.quarter), m.blocking.id if m.blocking else "-",
                              str(m.can_move) if m.blocking else "-", waits or "-", _counts(m.findings) or "-",
                              _gbp(m.retired), _gbp(m.share), _gbp(m.saving))
            out.print(table)
            suppliers = {m.blocking.id: m.blocking.supplier for m in c.moves if m.blocking}
            if suppliers:
                out.print("  contracts: " + "; ".join(f"{k} {v}" for k, v in suppliers.items()))
            if any(m.bridge_days for m in c.moves):
                out.print("  +Nd: days between the contract's end and the move, to be bridged")
        steps = [f"{c.score:.0%} now"]
        for (_, before), (q, after) in zip(c.projection, c.projection[1:], strict=False):
            if round(after, 4) != round(before, 4):
                steps.append(f"{after:.0%} in {q}")
        out.print(f"  projected score: {', '.join(steps)}")
        line = (f"  savings a year: contracts retired {_gbp(c.retired)} less shared service {_gbp(c.share)}"
                f" = {_gbp(c.retired - c.share)}")
        shift = c.channel_shift
        if shift:
            line += (f"; channel shift {_gbp(shift.annual_saving)} ({shift.moved:,.0f} transactions to the web"
                     f" for a {shift.web_share_target:.0%} web share)")
        out.print(line + f"; total {_gbp(c.saving)}")
        for flag in c.flags:
            out.print(f"  flag: {flag.message}")
    return buf.getvalue()


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {s}" for s, n in counts.items())


def _width() -> int:
    """COLUMNS, else the terminal's width, else 160; never under 100."""
    import shutil

    return max(100, shutil.get_terminal_size((160, 24)).columns)


# --------------------------------------------------------------------------- HTML and pictures


PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22")


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def gantt_svg(roadmap: Roadmap) -> str:
    """A Gantt-style chart: per council, one row per moving area; the bar runs from today to the move
    (hatched where the area waits for a dependency after its contract ends), the diamond is the move."""
    quarters = roadmap.quarters
    quarters = [*quarters, quarters[-1].next()]  # room for the last diamond
    left, col, row_h, top = 230, 62, 22, 34
    rows: list[tuple[str, str, Move | None, int]] = []
    for i, (key, c) in enumerate(roadmap.councils.items()):
        rows.append(("council", key, None, i))
        rows += [("move", key, m, i) for m in c.moves]
        if not c.moves:
            rows.append(("none", key, None, i))
    width = left + col * len(quarters) + 20
    height = top + row_h * len(rows) + 30
    origin = quarters[0].start

    def x(day: dt.date) -> float:
        for j, q in enumerate(quarters):
            if q.start <= day <= q.end:
                span = (q.end - q.start).days + 1
                return left + col * (j + (day - q.start).days / span)
        return left + col * len(quarters) if day > origin else left

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="gantt" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11" role="img" '
             f'aria-label="Gantt chart of each council\'s moves">',
             '<defs><pattern id="bridge" width="6" height="6" patternUnits="userSpaceOnUse" '
             'patternTransform="rotate(45)"><rect width="3" height="6" fill="#bbb"/></pattern></defs>']
    for j, q in enumerate(quarters):
        xq = left + col * j
        parts.append(f'<line x1="{xq}" y1="{top - 6}" x2="{xq}" y2="{height - 24}" stroke="#ddd"/>')
        parts.append(f'<text x="{xq + col / 2:.1f}" y="{top - 12}" text-anchor="middle">{_esc(q)}</text>')
    xt = x(roadmap.today)
    parts.append(f'<line x1="{xt:.1f}" y1="{top - 6}" x2="{xt:.1f}" y2="{height - 24}" stroke="#333" '
                 'stroke-dasharray="3,3"/>')
    parts.append(f'<text x="{xt:.1f}" y="{height - 10}" text-anchor="middle">today {roadmap.today}</text>')
    for r, (kind, key, move, ci) in enumerate(rows):
        y = top + r * row_h
        colour = PALETTE[ci % len(PALETTE)]
        if kind == "council":
            parts.append(f'<text x="6" y="{y + 15}" font-weight="bold" fill="{colour}">{_esc(key)}</text>')
            continue
        if kind == "none" or move is None:
            parts.append(f'<text x="20" y="{y + 15}" fill="#555">every area converged</text>')
            continue
        label = move.area + (f" ({move.blocking.id})" if move.blocking else "")
        parts.append(f'<text x="20" y="{y + 15}">{_esc(label)}</text>')
        start = xt
        move_x = x(move.quarter.start)
        held_end = x(move.can_move) if move.blocking else start
        held_end = min(max(held_end, start), move_x)
        if held_end > start:
            parts.append(f'<rect x="{start:.1f}" y="{y + 5}" width="{held_end - start:.1f}" height="12" '
                         f'fill="{colour}" fill-opacity="0.55"><title>{_esc(key)} {_esc(move.area)}: held by '
                         f'{_esc(move.blocking.id if move.blocking else "-")} until {move.can_move}</title></rect>')
        if move_x > held_end:
            parts.append(f'<rect x="{held_end:.1f}" y="{y + 5}" width="{move_x - held_end:.1f}" height="12" '
                         f'fill="url(#bridge)"><title>waits for {_esc(", ".join(move.waits_for) or "the quarter")}'
                         '</title></rect>')
        d = 7
        parts.append(f'<polygon points="{move_x:.1f},{y + 11 - d} {move_x + d:.1f},{y + 11} {move_x:.1f},'
                     f'{y + 11 + d} {move_x - d:.1f},{y + 11}" fill="{colour}" stroke="#000" stroke-width="0.5">'
                     f'<title>{_esc(key)} moves {_esc(move.area)} in {move.quarter}</title></polygon>')
    parts.append("</svg>")
    return "\n".join(parts)


def score_svg(roadmap: Roadmap) -> str:
    """A line chart of each council's projected convergence score per quarter."""
    quarters = roadmap.quarters
    left, right, top, bottom, col = 50, 170, 20, 40, 62
    plot_w = col * max(1, len(quarters) - 1)
    plot_h = 220
    width, height = left + plot_w + right, top + plot_h + bottom
    index = {q: j for j, q in enumerate(quarters)}

    def px(j: int) -> float:
        return left + (col * j if len(quarters) > 1 else plot_w / 2)

    def py(score: float) -> float:
        return top + plot_h * (1 - score)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="convergence" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11" role="img" '
             'aria-label="Projected convergence score per quarter">']
    for pct in range(0, 101, 25):
        yy = py(pct / 100)
        parts.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{left + plot_w}" y2="{yy:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{pct}%</text>')
    for j, q in enumerate(quarters):
        parts.append(f'<text x="{px(j):.1f}" y="{top + plot_h + 16}" text-anchor="middle">{_esc(q)}</text>')
    for i, (key, c) in enumerate(roadmap.councils.items()):
        colour = PALETTE[i % len(PALETTE)]
        series = dict(c.projection)
        points = []
        last = c.score
        for q in quarters:
            last = series.get(q, last)
            points.append((px(index[q]), py(last)))
        if len(points) == 1:
            x0, y0 = points[0]
            parts.append(f'<circle cx="{x0:.1f}" cy="{y0:.1f}" r="4" fill="{colour}"/>')
        else:
            pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in points)
            parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for (a, b), q in zip(points, quarters, strict=True):
            parts.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2.5" fill="{colour}"><title>{_esc(key)} {q}: '
                         f'{series.get(q, last):.0%}</title></circle>')
        ly = top + 14 + 16 * i
        parts.append(f'<line x1="{left + plot_w + 14}" y1="{ly - 4}" x2="{left + plot_w + 34}" y2="{ly - 4}" '
                     f'stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{left + plot_w + 40}" y="{ly}">{_esc(key)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


SECTION_TEMPLATE = """\
<section class="roadmap" id="roadmap">
<style>
#roadmap td.num { text-align: right; } #roadmap .flag { color: #a40000; }
#roadmap .legend { color: #666; font-size: 0.85em; } #roadmap svg { max-width: 100%; height: auto; }
</style>
<h2>Convergence roadmap</h2>
<p>As of {{ r.today }}, framework {{ r.framework_version }}. Each area that is not yet converged moves in
the first quarter after the contract that holds it back ends, and only after the areas it depends on
have moved. Savings are annual: legacy contracts retired, less the council's share of the shared
service (apportioned by staff), plus the channel shift where the council gives its transactions.</p>
<h3>Moves</h3>
{{ gantt }}
<p class="legend">Bar: under the legacy contract. Hatched: free of its contract, waiting for an area it
depends on (or for the next quarter). Diamond: the move.</p>
<h3>Projected convergence</h3>
{{ scores }}
{% for key, c in r.councils.items() %}
<h3 id="roadmap-{{ key }}">{{ key }}: {{ c.name }}</h3>
<p>Score today {{ pct(c.score) }}; converged: {{ c.converged | join(", ") or "none" }};
{% if c.converges %}fully converged in {{ c.converges }}{% else %}nothing left to move{% endif %}.</p>
{% if c.moves %}
<table class="moves">
<thead><tr><th>#</th><th>area</th><th>not passing</th><th>held back by</th><th>contract ends</th><th>moves</th>
<th>waits for</th><th>retired / yr</th><th>shared share / yr</th><th>saving / yr</th></tr></thead>
<tbody>
{% for m in c.moves %}<tr><td>{{ loop.index }}</td><td>{{ m.area }}</td><td>{{ counts(m.findings) or "-" }}</td>
<td>{% if m.blocking %}{{ m.blocking.id }} {{ m.blocking.supplier }}{% else %}nothing{% endif %}</td>
<td>{% if m.blocking %}{{ m.can_move }}{% else %}-{% endif %}</td><td>{{ m.quarter }}</td>
<td>{{ m.waits_for | join(", ") or "-" }}{% if m.bridge_days %} (bridge {{ m.bridge_days }} days){% endif %}</td>
<td class="num">{{ gbp(m.retired) }}</td><td class="num">{{ gbp(m.share) }}</td>
<td class="num">{{ gbp(m.saving) }}</td></tr>
{% endfor %}</tbody>
<tfoot><tr><td colspan="7">contracts, per year</td><td class="num">{{ gbp(c.retired) }}</td>
<td class="num">{{ gbp(c.share) }}</td><td class="num">{{ gbp(c.retired - c.share) }}</td></tr></tfoot>
</table>
{% endif %}
{% if c.channel_shift %}{% set s = c.channel_shift %}
<p>Channel shift: {{ "{:,.0f}".format(s.moved) }} transactions a year move to the web (target
{{ pct(s.web_share_target) }} of {{ "{:,}".format(s.face_to_face + s.phone + s.web) }}):
{{ "{:,.0f}".format(s.from_face_to_face) }} face to face and {{ "{:,.0f}".format(s.from_phone) }} by phone,
saving {{ gbp(s.annual_saving) }} a year.</p>
{% endif %}
<p><strong>Annual saving once converged: {{ gbp(c.saving) }}.</strong></p>
{% for f in c.flags %}<p class="flag">Flag: {{ f.message }}.</p>
{% endfor %}
{% endfor %}
</section>
"""

PAGE_TEMPLATE = """\
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; font-size: 0.9em; }
td.num { text-align: right; } .flag { color: #a40000; } .legend { color: #555; font-size: 0.85em; }
</style></head>
<body><h1>{{ title }}</h1>
{% for section in sections %}{{ section }}
{% endfor %}</body></html>
"""


def _env() -> Any:
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.globals.update(gbp=_gbp, pct=lambda v: f"{v:.0%}", counts=_counts)
    return env


def render_section(roadmap: Roadmap) -> str:
    """The roadmap as one HTML section (for the report of `estate check`): the Gantt chart of moves,
    the projected convergence line chart, and per council its moves, savings and flags."""
    import markupsafe

    template = _env().from_string(SECTION_TEMPLATE)
    return str(template.render(r=roadmap, gantt=markupsafe.Markup(gantt_svg(roadmap)),
                               scores=markupsafe.Markup(score_svg(roadmap))))


def render_html(estate: Estate, roadmap: Roadmap) -> str:
    import markupsafe

    title = f"Shared estate: convergence roadmap ({roadmap.today})"
    page = _env().from_string(PAGE_TEMPLATE)
    return str(page.render(title=title, sections=[markupsafe.Markup(render_section(roadmap))]))
