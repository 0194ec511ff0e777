"""The compliance engine: one set of rules, derived from framework.yaml, judging cloud resources,
council asset registers and live host facts.

    from estate.compliance import evaluate
    report = evaluate(estate, resources=plan.resources, hosts=facts, today=date(2026, 11, 22))
"""

from __future__ import annotations

from estate.compliance.engine import evaluate
from estate.compliance.findings import CouncilResult, Finding, Report, Status
from estate.controls.facts import HostFacts

__all__ = ["CouncilResult", "Finding", "HostFacts", "Report", "Status", "evaluate"]
