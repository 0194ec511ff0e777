"""The compliance engine: one set of rules, derived from framework.yaml, judging cloud resources,
council asset registers and live host facts.

    from estate.compliance import evaluate
    report = evaluate(estate, resources=plan.resources, hosts=facts, today=date(2026, 11, 22))

Names are imported lazily so that `estate.compliance.catalogue` (used by the loader to check
exemption rule ids) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from estate.compliance.engine import evaluate
    from estate.compliance.findings import CouncilResult, Finding, Report, Status
    from estate.controls.facts import HostFacts

__all__ = ["CouncilResult", "Finding", "HostFacts", "Report", "Status", "evaluate"]

_WHERE = {
    "evaluate": "estate.compliance.engine",
    "HostFacts": "estate.controls.facts",
    "CouncilResult": "estate.compliance.findings",
    "Finding": "estate.compliance.findings",
    "Report": "estate.compliance.findings",
    "Status": "estate.compliance.findings",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(name)
