"""Reports of a compliance run: JSON, JUnit XML, SARIF 2.1.0, a self-contained HTML page, and the report in the
assessors' terms: the NCSC CAF's contributing outcomes (`caf`, `caf-json`: estate.reports.caf) and the Cyber
Essentials requirements (`ce`, `ce-json`: estate.reports.ce).

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

FORMATS = ("table", "json", "junit", "sarif", "html", "caf", "caf-json", "ce", "ce-json")


def render(report: Report, fmt: str, *, estate: Estate, history: History | None = None,
           width: int | None = None, profile: str = "baseline", caf_version: str = "3.2") -> str:
    if fmt in ("caf", "caf-json"):
        from estate.reports.caf import caf_report, render_caf_json, render_caf_table

        view = caf_report(estate, report, version=caf_version, profile=profile)
        return render_caf_json(view) if fmt == "caf-json" else render_caf_table(view, width=width)
    if fmt in ("ce", "ce-json"):
        from estate.reports.ce import ce_report, render_ce_json, render_ce_table

        ce = ce_report(estate, report)
        return render_ce_json(ce) if fmt == "ce-json" else render_ce_table(ce, width=width)
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
