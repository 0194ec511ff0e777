"""The convergence roadmap (estate.roadmap) rendered: the text table of `estate roadmap`, and the HTML section of
the report with its two charts, a Gantt chart of the moves and the projected score per quarter, drawn as inline SVG
in the palette of estate.reports.palette."""

from __future__ import annotations

import datetime as dt
import html
import io
import shutil
from collections.abc import Mapping
from typing import Any

import jinja2
import markupsafe
from rich.console import Console
from rich.table import Table

from estate.reports import palette
from estate.roadmap import Move, Roadmap


def _gbp(value: float) -> str:
    sign = "-" if value < -0.005 else ""
    return f"{sign}£{abs(value):,.0f}"


def render_table(roadmap: Roadmap, width: int | None = None) -> str:
    """Per council: the moves in order, each with the contract that holds it back, when it ends, the
    quarter of the move, what it waits for, its findings and its annual saving; then the projected
    score, the savings and the flags."""
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
    return max(100, shutil.get_terminal_size((160, 24)).columns)


# --------------------------------------------------------------------------- HTML and pictures


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
             f'patternTransform="rotate(45)"><rect width="3" height="6" fill="{palette.HATCH}"/></pattern></defs>']
    for j, q in enumerate(quarters):
        xq = left + col * j
        parts.append(f'<line x1="{xq}" y1="{top - 6}" x2="{xq}" y2="{height - 24}" stroke="{palette.RULE}"/>')
        parts.append(f'<text x="{xq + col / 2:.1f}" y="{top - 12}" text-anchor="middle">{_esc(q)}</text>')
    xt = x(roadmap.today)
    parts.append(f'<line x1="{xt:.1f}" y1="{top - 6}" x2="{xt:.1f}" y2="{height - 24}" stroke="{palette.STRONG}" '
                 'stroke-dasharray="3,3"/>')
    parts.append(f'<text x="{xt:.1f}" y="{height - 10}" text-anchor="middle">today {roadmap.today}</text>')
    for r, (kind, key, move, ci) in enumerate(rows):
        y = top + r * row_h
        colour = palette.series(ci, palette.ROADMAP_SERIES)
        if kind == "council":
            parts.append(f'<text x="6" y="{y + 15}" font-weight="bold" fill="{colour}">{_esc(key)}</text>')
            continue
        if kind == "none" or move is None:
            parts.append(f'<text x="20" y="{y + 15}" fill="{palette.LEGEND}">every area converged</text>')
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
                     f'{y + 11 + d} {move_x - d:.1f},{y + 11}" fill="{colour}" stroke="{palette.OUTLINE}" '
                     'stroke-width="0.5">'
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
        parts.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{left + plot_w}" y2="{yy:.1f}" stroke="{palette.RULE}"/>')
        parts.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{pct}%</text>')
    for j, q in enumerate(quarters):
        parts.append(f'<text x="{px(j):.1f}" y="{top + plot_h + 16}" text-anchor="middle">{_esc(q)}</text>')
    for i, (key, c) in enumerate(roadmap.councils.items()):
        colour = palette.series(i, palette.ROADMAP_SERIES)
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
#roadmap td.num { text-align: right; } #roadmap .flag { color: {{ palette.FAIL }}; }
#roadmap .legend { color: {{ palette.MUTED }}; font-size: 0.85em; } #roadmap svg { max-width: 100%; height: auto; }
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

def _env() -> Any:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.globals.update(gbp=_gbp, pct=lambda v: f"{v:.0%}", counts=_counts, palette=palette)
    return env


def render_section(roadmap: Roadmap) -> str:
    """The roadmap as one HTML section (for the report of `estate check`): the Gantt chart of moves,
    the projected convergence line chart, and per council its moves, savings and flags."""
    template = _env().from_string(SECTION_TEMPLATE)
    return str(template.render(r=roadmap, gantt=markupsafe.Markup(gantt_svg(roadmap)),
                               scores=markupsafe.Markup(score_svg(roadmap))))
