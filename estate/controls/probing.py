"""Parsing helpers the probes of more than one control share (each control's own parser lives in its home), and
`probe`, a Probe declared from a plain parser of its sections' texts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from estate.controls.spec import Probe, ProbeParams


def key_values(text: str, sep: str = "=") -> dict[str, str]:
    """`key = value` lines of a configuration file (os-release, faillock.conf, pwquality.conf): comments after
    `#` and blank lines dropped, keys and values stripped, a value's surrounding double quotes removed; a repeated
    key keeps its last value."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if sep in line:
            key, _, value = line.partition(sep)
            out[key.strip()] = value.strip().strip('"')
    return out


def is_active(text: str) -> bool:
    """`systemctl is-active UNIT`: the unit runs."""
    return text.strip() == "active"


def probe(fields: str | tuple[str, ...], commands: Mapping[str, str], parse: Callable[..., Any],
          roles: tuple[str, ...] | None = None) -> Probe:
    """A Probe whose `parse` takes its sections' texts in the order `commands` names them (and no ProbeParams),
    and returns the value of the one field `fields` names, or a tuple of one value per field for a tuple of
    names."""
    names = (fields,) if isinstance(fields, str) else fields
    order = tuple(commands)

    def parse_sections(sections: Mapping[str, str], params: ProbeParams) -> dict[str, Any]:
        value = parse(*(sections[name] for name in order))
        return {fields: value} if isinstance(fields, str) else dict(zip(names, value, strict=True))

    return Probe(fields=names, commands=dict(commands), parse=parse_sections, roles=roles)
