"""A control's words as data: `control.yml` in its home, beside the logic in `__init__.py` (as ComplianceAsCode keeps
a rule's metadata in rule.yml beside its checks).

    path: security.ssh                 # the framework control (framework.yaml gives its id, title, enforcement)
    rationale: why the consortium agreed it
    references:
      caf: {"3.2": [B4.b.A.2, ...], "4.0": [...]}    # NCSC CAF indicators (estate/controls/references/)
      ce: [CE-SC.2, ...]                             # Cyber Essentials requirements
      device_principle: ...                          # optional
    remediation:
      roles: [baseline]                # Ansible roles whose tasks carry the tag control_<id>
    attested: false                    # true: no machine can judge it (no rules)
    rules:
      SEC-006:                         # each rule's words: title, severity, area, fix, and a value check's messages
        title: SSH is hardened
        severity: high
        area: datacentre
        fix: Set PermitRootLogin ...

The model is strict: a misspelt key is an error at import, naming the file.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

FILE = "control.yml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class References(_Strict):
    caf: dict[str, list[str]]
    ce: list[str] = Field(default_factory=list)
    device_principle: str | None = None


class Remediation(_Strict):
    roles: list[str] = Field(default_factory=list)


class RuleWords(_Strict):
    """A rule's words; one its base class gives (a shared area, say) may be left out."""

    title: str | None = None
    severity: Literal["critical", "high", "medium", "low"] | None = None
    area: str | None = None
    fix: str | None = None
    passing: str | None = None
    failing: str | None = None
    # a value check's parameters (estate/controls/checks.py): the host fact, the control's setting it is compared
    # with and how; the resource's key; the register's collection
    fact: str | None = None
    setting: str | None = None
    compare: Literal["equals", "positive_at_most", "at_least", "none_of"] | None = None
    key: str | None = None
    collection: str | None = None


class ControlFile(_Strict):
    path: str
    rationale: str
    references: References
    remediation: Remediation = Field(default_factory=Remediation)
    attested: bool = False
    rules: dict[str, RuleWords] = Field(default_factory=dict)


@cache
def read(home: Path) -> ControlFile:
    """The control.yml of a control's home (read once)."""
    file = home / FILE
    try:
        return ControlFile.model_validate(yaml.safe_load(file.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise TypeError(f"{file}: {exc}") from None
