"""Parsing helpers the probes of more than one area share (each control's own parser lives in its home)."""

from __future__ import annotations


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
