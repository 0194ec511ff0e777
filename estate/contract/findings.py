"""One contract finding: what `estate check --plan` and the tests report."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ContractFinding:
    rule: str  # e.g. "ARM-SCHEMA", "ARM-NSG-PRIORITY"
    resource: str  # the planned resource's URN
    name: str  # its logical name
    property: str  # JSON path in the ARM request body, e.g. "$.properties.securityRules[2].properties.priority"
    message: str
    source: str  # a Microsoft Learn (or other public) URL, or "schema file#/definitions/Name"

    def __str__(self) -> str:
        return f"{self.rule} {self.name} {self.property}: {self.message} [{self.source}]"
