"""The ids of every compliance rule. The loader reads this to reject an exemption that names an unknown
rule; it is light (the rules import only the models, which the loader has already imported)."""

from __future__ import annotations

from estate.controls.base import registry

RULE_IDS: frozenset[str] = frozenset(registry())


def rule_ids() -> set[str]:
    return set(RULE_IDS)
