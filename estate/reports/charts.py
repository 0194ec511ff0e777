"""Charts for the HTML report, drawn by matplotlib as inline SVG (text kept as text, no external files).

Each chart gets its own `svg.hashsalt` so the ids inside several SVGs on one page never collide, and
no date in its metadata, so the same report renders to the same bytes.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from estate.reports import palette
from estate.reports.palette import series as colour


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buf.getvalue()
    text = re.sub(r"^<\?xml[^>]*>\s*", "", text)
    text = re.sub(r"^<!DOCTYPE[^>]*>\s*", "", text, flags=re.S)
    return text.strip()


def _figure(salt: str, width: float, height: float) -> tuple[Any, Any]:
    matplotlib.rcParams.update({"svg.hashsalt": salt, "svg.fonttype": "none", "font.size": 9,
                                "axes.spines.top": False, "axes.spines.right": False,
                                # names are drawn as written: with mathtext on, a "$" pair in a council or area
                                # name is parsed as TeX and "$_$" or "$\\foo$" raises instead of drawing
                                "text.parse_math": False, "text.usetex": False})
    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot()


def domain_chart(by_area: Mapping[str, Mapping[str, float]], order: Sequence[str]) -> str:
    """Grouped horizontal bars: for each area, each council's convergence (share of rules passing)."""
    areas = [a for a in order if any(a in v for v in by_area.values())]
    councils = list(by_area)
    height = 0.6 + 0.22 * max(1, len(areas)) * max(1, len(councils))
    fig, ax = _figure("estate-domains", 7.5, min(height, 9.0))
    bar = 0.8 / max(1, len(councils))
    for i, key in enumerate(councils):
        ys = [j + i * bar for j in range(len(areas))]
        values = [100 * by_area[key].get(a, 0.0) if a in by_area[key] else 0.0 for a in areas]
        bars = ax.barh(ys, values, height=bar * 0.9, color=colour(i), label=key)
        for b, a, v in zip(bars, areas, values, strict=True):
            label = f"{v:.0f}%" if a in by_area[key] else "n/a"
            ax.text(b.get_width() + 1, b.get_y() + b.get_height() / 2, label, va="center", fontsize=7)
    ax.set_yticks([j + bar * (len(councils) - 1) / 2 for j in range(len(areas))], areas)
    ax.invert_yaxis()
    ax.set_xlim(0, 110)
    ax.set_xticks([0, 25, 50, 75, 100], ["0%", "25%", "50%", "75%", "100%"])
    ax.set_xlabel("rules passing")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
    ax.set_title("Convergence per domain")
    return _svg(fig)


def trend_chart(series: Mapping[str, Sequence[tuple[dt.date, float]]]) -> str:
    """One line per council: its score at each run of the history."""
    fig, ax = _figure("estate-trend", 7.5, 3.2)
    days: list[dt.date] = []
    for i, (key, points) in enumerate(series.items()):
        if not points:
            continue
        xs = [p[0] for p in points]
        ys = [100 * p[1] for p in points]
        days += xs
        ax.plot(xs, ys, marker="o", color=colour(i), label=key, linewidth=1.8, markersize=4)
    if days:
        ax.set_xlim(*_date_limits(min(days), max(days)))
    ax.set_ylim(-5, 105)
    ax.set_yticks([0, 25, 50, 75, 100], ["0%", "25%", "50%", "75%", "100%"])
    ax.set_ylabel("score")
    ax.grid(axis="y", color=palette.RULE, linewidth=0.6)
    fig.autofmt_xdate()
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
    ax.set_title("Convergence over time")
    return _svg(fig)


def _date_limits(first: dt.date, last: dt.date) -> tuple[dt.date, dt.date]:
    """The trend's x axis: the runs' dates with a margin (5% of the span, at least 15 days), kept inside the
    calendar: matplotlib's own margin would reach past year 1 or 9999 for dates near either end, and it refuses
    to convert such a day."""
    pad = max((last - first) * 0.05, dt.timedelta(days=15))
    low = first - pad if first - dt.date.min > pad else dt.date.min
    high = last + pad if dt.date.max - last > pad else dt.date.max
    return low, high
