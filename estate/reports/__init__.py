"""Reports of a compliance run: JSON, JUnit XML, SARIF 2.1.0 and a self-contained HTML page.

    from estate.reports import render
    text = render(report, "sarif", estate=estate)

Each format lives in its own module and imports what it needs when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from estate.compliance.findings import Report
    from estate.loader import Estate
    from estate.reports.history import History

FORMATS = ("table", "json", "junit", "sarif", "html")


def render(report: Report, fmt: str, *, estate: Estate, history: History | None = None,
           width: int | None = None) -> str:
    if fmt == "json":
        from estate.reports.jsonfmt import render_json

        return render_json(report)
    if fmt == "junit":
        from estate.reports.junit import render_junit

        return render_junit(report)
    if fmt == "sarif":
        from estate.reports.sarif import render_sarif

        return render_sarif(report, estate)
    if fmt == "html":
        from estate.reports.html import HtmlReport

        return HtmlReport(report, estate, history=history).render()
    if fmt == "table":
        from estate.reports.table import render_table

        return render_table(report, width=width)
    raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
