"""The reports' one palette: every chart (matplotlib's and the roadmap's hand-drawn SVG) and the HTML report's CSS
take their colours from here.

The series colours are matplotlib's "tab10" qualitative palette, its default colour cycle
(https://matplotlib.org/stable/users/explain/colors/colormaps.html#qualitative), named.
"""

from __future__ import annotations

from collections.abc import Sequence

BLUE = "#1f77b4"
ORANGE = "#ff7f0e"
GREEN = "#2ca02c"
RED = "#d62728"
PURPLE = "#9467bd"
BROWN = "#8c564b"
PINK = "#e377c2"
GREY = "#7f7f7f"
OLIVE = "#bcbd22"
CYAN = "#17becf"

# One colour per council, in the order the charts meet them. The matplotlib charts (convergence per domain, trend)
# take tab10 in its own order; the roadmap's Gantt and projection charts have always taken the same ten in this
# order (red second), kept so that a council keeps its colour in the roadmap as before.
SERIES: tuple[str, ...] = (BLUE, ORANGE, GREEN, RED, PURPLE, BROWN, PINK, GREY, OLIVE, CYAN)
ROADMAP_SERIES: tuple[str, ...] = (BLUE, RED, GREEN, PURPLE, ORANGE, CYAN, BROWN, PINK, GREY, OLIVE)

# Ink and lines, for the CSS and the SVG.
TEXT = "#222"          # body text
STRONG = "#333"        # the roadmap's "today" line
OUTLINE = "#000"       # a milestone's outline
LEGEND = "#555"        # legends, "every area converged"
MUTED = "#666"         # notes under a chart or a section
HATCH = "#bbb"         # the roadmap's hatched bridge between a contract's end and the move
BORDER = "#ccc"        # cards, headings' rule
RULE = "#ddd"          # table rows, chart grid lines
TRACK = "#eee"         # the empty part of a score bar
FAIL = "#a40000"       # a failing finding, a flag
EXEMPT = "#8a6d00"     # an exempt finding
PASS = "#1a6b1a"       # a pass
FILL = GREEN           # the filled part of a score bar


def series(i: int, colours: Sequence[str] = SERIES) -> str:
    """The i-th council's colour (the palette repeats after ten)."""
    return colours[i % len(colours)]
