"""The reports of a framework change (estate.framework_change): `estate check --framework` as a table, JSON or an
HTML page (the proposed estate's report, through the one HTML renderer, with the change's section first), and
`estate framework-diff` as a table or JSON."""

from __future__ import annotations

import io

from estate.framework_change import Audit, FrameworkChange
from estate.reports.html import HtmlReport

CHANGE_FORMATS = ("table", "json", "html")
DIFF_FORMATS = ("table", "json")


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _money(value: float) -> str:
    return f"£{value:,.0f}" if value >= 0 else f"-£{-value:,.0f}"


def _delta_class(before: float | None, after: float | None) -> str:
    if before is None or after is None or before == after:
        return ""
    return "ok" if after > before else "bad"


def render_change(change: FrameworkChange, fmt: str, *, width: int | None = None) -> str:
    if fmt == "json":
        return change.to_json()
    if fmt == "html":
        return _html(change)
    if fmt == "table":
        return _table(change, width)
    raise ValueError(f"unknown format {fmt!r} (known: {', '.join(CHANGE_FORMATS)})")


def _html(change: FrameworkChange) -> str:
    before, after = change.before.framework_version, change.after.framework_version
    page = HtmlReport(change.after, change.proposed, providers=False,
                      title=f"Shared estate: framework {before} to {after}, seen before it is agreed "
                            f"({change.after.today})")
    section = page.env.get_template("framework_change.html.j2").render(
        change=change, score=_score, money=_money, delta_class=_delta_class)
    page.add_section("framework-change", "Framework change", section, index=0)
    return page.render()


def _table(change: FrameworkChange, width: int | None) -> str:
    from rich.console import Console
    from rich.table import Table

    buf = io.StringIO()
    out = Console(file=buf, width=width or 120, force_terminal=False, color_system=None, soft_wrap=False)
    before, after = change.before, change.after
    out.print(f"framework {before.framework_version} ({change.current.framework_source.file}) -> "
              f"{after.framework_version} ({change.proposed.framework_source.file}), judged {after.today}: "
              f"{', '.join(after.sources)}")
    scores = Table(title="Score per council, current and proposed framework")
    for col in ("council", "before", "after", "rules before", "rules after", "changed"):
        scores.add_column(col, justify="left" if col == "council" else "right")
    touched = set(change.changed_councils)
    for s in change.scores:
        scores.add_row(s.council, _score(s.before), _score(s.after), f"{s.passing_before}/{s.applicable_before}",
                       f"{s.passing_after}/{s.applicable_after}", "yes" if s.council in touched else "")
    out.print(scores)
    if change.findings:
        table = Table(title="Findings that change (matched by rule, council and resource)")
        for col in ("council", "rule", "resource", "before", "after", "change", "message under the proposal"):
            table.add_column(col, overflow="fold")
        for c in change.findings:
            note = ""
            if c.blocking[0] != c.blocking[1]:
                note = "\nnow blocks" if c.blocking[1] else "\nno longer blocks"
            table.add_row(c.council, c.rule_id, c.short_resource, c.statuses[0], c.statuses[1],
                          c.kind + note, c.message)
        out.print(table)
    else:
        out.print("no finding changes")
    if change.moves:
        moves = Table(title="Roadmap moves that shift")
        for col in ("council", "area", "moves before", "moves after", "saving before", "saving after"):
            moves.add_column(col, justify="right" if col.startswith("saving") else "left")
        for m in change.moves:
            moves.add_row(m.council, m.area, m.quarters[0], m.quarters[1], _money(m.savings[0]), _money(m.savings[1]))
        out.print(moves)
    else:
        out.print("no roadmap move shifts")
    changed = [v for v in change.savings if round(v.before, 2) != round(v.after, 2)]
    if changed:
        savings = Table(title="Annual savings that change")
        for col in ("council", "before", "after", "change"):
            savings.add_column(col, justify="left" if col == "council" else "right")
        for v in changed:
            savings.add_row(v.council, _money(v.before), _money(v.after), _money(v.after - v.before))
        out.print(savings)
    else:
        out.print("no savings change")
    out.print(f"{len(change.newly_failing)} finding{'s' if len(change.newly_failing) != 1 else ''} newly fail, "
              f"{len(change.newly_passing)} newly pass; exit {change.exit_code}: as `estate check` would under "
              f"{after.framework_version} ({before.exit_code} under {before.framework_version})")
    return buf.getvalue()


def render_audit(result: Audit, fmt: str, *, width: int | None = None) -> str:
    if fmt == "json":
        return result.to_json()
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r} (known: {', '.join(DIFF_FORMATS)})")
    from rich.console import Console
    from rich.table import Table

    buf = io.StringIO()
    out = Console(file=buf, width=width or 120, force_terminal=False, color_system=None, soft_wrap=False)
    out.print(f"framework {result.old_version} ({result.old_file}) -> {result.new_version} ({result.new_file})")
    if result.differences:
        table = Table(title=f"{len(result.differences)} difference{'s' if len(result.differences) != 1 else ''}")
        for col in ("path", "change"):
            table.add_column(col, overflow="fold")
        for d in result.differences:
            table.add_row(d.path, d.change)
        out.print(table)
    else:
        out.print("no differences")
    if result.problems:
        for p in result.problems:
            out.print(str(p), markup=False, highlight=False, soft_wrap=True)
        out.print(f"exit 1: the change log entry for {result.new_version} and the differences disagree "
                  f"({len(result.problems)} problem{'s' if len(result.problems) != 1 else ''})")
    else:
        out.print(f"exit 0: the change log entry for {result.new_version} accounts for every difference")
    return buf.getvalue()


__all__: list[str] = ["CHANGE_FORMATS", "DIFF_FORMATS", "render_audit", "render_change"]
