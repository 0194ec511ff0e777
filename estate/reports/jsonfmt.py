"""The report as JSON: per council the score, the score per area, counts and every finding, each with the references
of its control (`references`: NCSC CAF indicators per CAF version, Cyber Essentials requirement ids; empty lists while
its rule's control has no home)."""

from __future__ import annotations

import json
from typing import Any

from estate.compliance.findings import Report


def render_json(report: Report) -> str:
    doc = report.to_dict()
    refs: dict[str, dict[str, Any]] = {}  # per rule: its control's references, looked up once
    for key, result in report.councils.items():
        for f, out in zip(result.findings, doc["councils"][key]["findings"], strict=True):
            if f.rule_id not in refs:
                refs[f.rule_id] = f.references
            out["references"] = refs[f.rule_id]
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
