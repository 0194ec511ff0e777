"""The HTML report: a self-contained page built from a list of sections.

Built-in sections: score cards per council, a chart of convergence per domain, the trend of each
council's score (from `--history`), and the findings. Other parts of the estate add theirs:

    page = HtmlReport(report, estate, history=history)
    page.add_section("roadmap", "Convergence roadmap", html)     # trusted HTML, e.g. from a jinja2 template
    text = page.render()

or register a provider that `estate check --format html` calls for every report:

    register_section(lambda estate, report: Section("id", "Title", html))

The roadmap (estate.roadmap, CONTRACTS.md s.5; drawn by estate.reports.roadmap) joins through such a provider.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from estate import roadmap
from estate.compliance.findings import Report
from estate.render_safe import xml_text
from estate.reports import caf, palette
from estate.reports.charts import domain_chart, trend_chart
from estate.reports.roadmap import render_section

if TYPE_CHECKING:
    from estate.loader import Estate
    from estate.reports.history import History


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    html: str  # trusted markup: the whole <section>, rendered by its owner


SectionProvider = Callable[["Estate", Report], Section | None]
_PROVIDERS: list[SectionProvider] = []


def register_section(provider: SectionProvider) -> None:
    """Add a section to every HTML report `estate check` writes (after the built-in ones)."""
    if provider not in _PROVIDERS:
        _PROVIDERS.append(provider)


def roadmap_section(estate: Estate, report: Report) -> Section | None:
    """The convergence roadmap of the councils in the report (estate.roadmap), when there is one."""
    councils = [k for k in report.councils if k in estate.councils]
    if not councils:
        return None
    built = roadmap.build(estate, today=report.today, councils=councils, report=report)
    return Section("roadmap", "Roadmap", render_section(built))


def caf_section(estate: Estate, report: Report) -> Section | None:
    """The NCSC CAF's contributing outcomes per council (estate.reports.caf): CAF 3.2 against both profiles, then
    CAF 4.0 (which publishes no profile targets)."""
    if not report.councils:
        return None
    views = [caf.caf_report(estate, report, version=v) for v in caf.VERSIONS]

    def met(view: caf.CafReport, key: str, profile: str) -> int:
        return sum(1 for o in view.councils[key] if o.met(profile) == "yes")

    def status_class(o: caf.OutcomeResult) -> str:
        if o.status is None:
            return "muted"
        return {"achieved": "status-pass", "not-achieved": "status-fail"}.get(o.status, "status-exempt")

    html = _env().get_template("caf.html.j2").render(views=views, profiles=caf.PROFILES, label=caf.label,
                                                     no_target=caf.no_target, met=met, status_class=status_class)
    return Section("caf", "NCSC CAF", html)


DEFAULT_PROVIDERS: tuple[SectionProvider, ...] = (roadmap_section, caf_section)


def chart_label(text: str) -> str:
    """A council key as a chart's label: a character that cannot be drawn (a control character, a lone
    surrogate, which matplotlib's font code refuses) becomes U+FFFD."""
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in text)


def _env() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("estate.reports", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.globals["pct"] = lambda v: f"{v:.0%}"
    env.globals["palette"] = palette
    return env


class HtmlReport:
    def __init__(self, report: Report, estate: Estate, *, history: History | None = None,
                 title: str | None = None, providers: bool = True) -> None:
        self.report = report
        self.estate = estate
        self.title = title or f"Shared estate: compliance report ({report.today})"
        self.env = _env()
        self.sections: list[Section] = [self._scorecards(), self._domains()]
        if history is not None:
            trend = self._trend(history)
            if trend is not None:
                self.sections.append(trend)
        self.sections.append(self._findings())
        if providers:
            for provider in (*DEFAULT_PROVIDERS, *_PROVIDERS):
                section = provider(estate, report)
                if section is not None:
                    self.sections.append(section)

    def add_section(self, section_id: str, title: str, html: str, *, index: int | None = None) -> None:
        """Add a section (trusted HTML: the whole <section> element) at the end, or at `index`."""
        section = Section(section_id, title, html)
        if index is None:
            self.sections.append(section)
        else:
            self.sections.insert(index, section)

    def _render(self, template: str, **values: Any) -> str:
        return str(self.env.get_template(template).render(report=self.report, **values))

    def _scorecards(self) -> Section:
        return Section("scores", "Score cards", self._render("scorecards.html.j2"))

    def _domains(self) -> Section:
        import markupsafe

        order = [a.area for a in self.estate.framework.migration.areas]
        by_area = {chart_label(k): r.by_area for k, r in self.report.councils.items()}
        svg = domain_chart(by_area, order) if by_area else "<p>No findings.</p>"
        html = self._render("chart.html.j2", id="domains", title="Convergence per domain", svg=markupsafe.Markup(svg),
                            note="Share of the rules of each service area that pass, per council.")
        return Section("domains", "Domains", html)

    def _trend(self, history: History) -> Section | None:
        import markupsafe

        same = [e for e in history.entries if e.sources == self.report.sources]
        entries = same or history.entries
        series: dict[str, list[Any]] = {}
        for key in self.report.councils:
            points = sorted((e.date, e.scores[key]) for e in entries if key in e.scores)
            if points:
                series[chart_label(key)] = points
        if not series:
            return None
        note = (f"{len(entries)} runs judged from {', '.join(self.report.sources)}"
                if same else f"{len(entries)} runs (from any sources)")
        html = self._render("chart.html.j2", id="trend", title="Trend", svg=markupsafe.Markup(trend_chart(series)),
                            note=note)
        return Section("trend", "Trend", html)

    def _findings(self) -> Section:
        return Section("findings", "Findings", self._render("findings.html.j2"))

    def render(self) -> str:
        import markupsafe

        blocking = sum(1 for f in self.report.findings if f.blocking)
        sections = [Section(s.id, s.title, markupsafe.Markup(s.html)) for s in self.sections]
        # Markup is escaped by autoescape; characters no HTML or XML parser takes (control characters,
        # lone surrogates, which would not even encode as UTF-8) are replaced on the whole page.
        return xml_text(self._render("page.html.j2", title=self.title, sections=sections, blocking=blocking))
