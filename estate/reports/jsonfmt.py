"""The report as JSON: per council the score, the score per area, counts and every finding."""

from __future__ import annotations

import json

from estate.compliance.findings import Report


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
