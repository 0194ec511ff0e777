"""The report for a terminal: a score per council, then every finding that is not a pass with its fix,
then why the exit code is what it is."""

from __future__ import annotations

import io

from estate.compliance.findings import Finding, Report

MARK = {"fail": "FAIL", "expired": "EXPIRED", "exempt": "exempt", "pass": "pass"}
# said of an exempt finding whose exemption also switches the control's tasks off on the council's hosts
NOT_ENFORCED = "exempt, not enforced: the control's tasks are switched off on this council's hosts"


def level(f: Finding) -> str:
    """The enforcement, and for mandatory_on_create whether the resource is new (it fails) or existing (it warns)."""
    if f.new is None:
        return f.enforcement
    return f"{f.enforcement} ({'new' if f.new else 'existing'})"


def shown_message(f: Finding) -> str:
    return f"{f.message}\n{NOT_ENFORCED}" if f.not_enforced else f.message


def mark(f: Finding) -> str:
    """The status as the table shows it; a failure the baseline holds (`--baseline`) says so."""
    return f"{MARK[f.status]} (baselined)" if f.baselined else MARK[f.status]


def render_table(report: Report, width: int | None = None) -> str:
    from rich.console import Console
    from rich.table import Table

    buf = io.StringIO()
    out = Console(file=buf, width=width or 120, force_terminal=False, color_system=None, soft_wrap=False)
    out.print(f"framework {report.framework_version}, judged {report.today}: {', '.join(report.sources)}")
    scores = Table(title="Convergence per council (share of applicable rules passing)")
    areas = sorted({a for r in report.councils.values() for a in r.by_area})
    for col in ("council", "score", "rules", "pass", "fail", "exempt", "expired", *areas):
        scores.add_column(col, justify="left" if col == "council" else "right")
    for key, r in report.councils.items():
        scores.add_row(key, f"{r.score:.0%}", f"{r.rules_passing}/{r.rules_applicable}", str(r.count("pass")),
                       str(r.count("fail")), str(r.count("exempt")), str(r.count("expired")),
                       *[f"{r.by_area[a]:.0%}" if a in r.by_area else "-" for a in areas])
    out.print(scores)
    for key, r in report.councils.items():
        open_findings = [f for f in r.findings if f.status != "pass"]
        if not open_findings:
            continue
        table = Table(title=f"{key}: findings that do not pass", show_lines=False)
        for col in ("status", "rule", "level", "resource", "message / fix"):
            table.add_column(col, overflow="fold")
        for f in sorted(open_findings, key=lambda f: (f.status == "exempt", f.rule_id, f.resource)):
            table.add_row(mark(f), f.rule_id, level(f), f.short_resource,
                          f"{shown_message(f)}\nfix: {f.fix}")
        out.print(table)
    for key, r in report.councils.items():
        if not r.notices:
            continue
        table = Table(title=f"{key}: exemptions to act on", show_lines=False)
        for col in ("level", "rule", "where", "message"):
            table.add_column(col, overflow="fold")
        for n in sorted(r.notices, key=lambda n: (n.level != "error", n.line)):
            table.add_row("ERROR" if n.level == "error" else "warning", n.rule, f"{n.file}:{n.line}", n.message)
        out.print(table)
    blocking = [f for f in report.findings if f.blocking]
    errors = [n for n in report.notices if n.level == "error"]
    held = [f for f in report.findings if f.baselined]
    if report.baseline is not None:
        out.print(f"baseline {report.baseline}: {len(held)} failing finding{'s' if len(held) != 1 else ''} "
                  f"held, shown as baselined; {sum(1 for f in held if f.must_pass)} of them mandatory, not counted "
                  "for the exit code")
    if blocking or errors:
        by_council: dict[str, list[str]] = {}
        for f in blocking:
            by_council.setdefault(f.council, []).append(f.rule_id)
        why = "; ".join(f"{k}: {', '.join(sorted(set(v)))}" for k, v in by_council.items())
        parts = []
        if blocking:
            parts.append(f"{len(blocking)} mandatory finding{'s' if len(blocking) != 1 else ''} fail ({why})")
        if errors:
            many = len(errors) != 1
            parts.append(f"{len(errors)} exemption{'s' if many else ''} match{'' if many else 'es'} nothing "
                         f"({', '.join(f'{n.file}:{n.line}' for n in errors)})")
        out.print(f"exit 1: {'; '.join(parts)}")
    else:
        out.print("exit 0: no mandatory rule fails")
    return buf.getvalue()
