"""A baseline of findings: today's failures recorded by fingerprint, so that a later `estate check --baseline FILE`
exits 1 only on a blocking failure the baseline does not hold.

This is Checkov's `--baseline` (checkov.io, CLI Command Reference: "--baseline: Use a .checkov.baseline file to
compare current results with a known baseline. Report will include only failed checks that are new with respect to
the provided baseline"; `--create-baseline` writes it), with one difference: the baselined failures are still shown,
marked (`baselined`), as Checkov's `--output-baseline-as-skipped` shows them, and still count in every score.

The file is JSON and says that it is ours:

    {"kind": "estate-check-baseline", "version": 1, "fingerprint": "estateFinding/v1",
     "framework_version": "2026.11", "date": "2026-11-29",
     "findings": [{"fingerprint": "<64 hex>", "rule": "DCN-004", "council": "newham", "resource": "...",
                   "path": "", "status": "fail"}, ...]}

Only `fingerprint` of an entry is read back (Finding.fingerprint, whose recipe `fingerprint` names); the rest is
there for the people who review the file. Entries are sorted by council, rule, resource and path, so a baseline
written twice of the same estate is the same file.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from estate.atomic import write_atomic
from estate.compliance.findings import FINGERPRINT_VERSION, Report
from estate.errors import EstateError, describe
from estate.yamlsrc import display, load_json

KIND = "estate-check-baseline"
VERSION = 1
_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Baseline:
    file: str  # as shown to the user
    framework_version: str
    date: str
    fingerprints: frozenset[str]


def baseline_document(report: Report) -> dict[str, Any]:
    """The baseline of a report: every failing finding (fail, or an exemption expired), blocking or not."""
    failing = sorted((f for f in report.findings if f.failing),
                     key=lambda f: (f.council, f.rule_id, f.resource, f.path, f.fingerprint))
    return {
        "kind": KIND, "version": VERSION, "fingerprint": FINGERPRINT_VERSION,
        "framework_version": report.framework_version, "date": report.today.isoformat(),
        "findings": [{"fingerprint": f.fingerprint, "rule": f.rule_id, "council": f.council,
                      "resource": f.resource, "path": f.path, "status": f.status} for f in failing],
    }


def write_baseline(path: Path, report: Report) -> int:
    """Write the report's baseline to `path`, whole or not at all (estate.atomic); the number of entries."""
    doc = baseline_document(report)
    write_atomic(path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n", parents=True)
    return len(doc["findings"])


def read_baseline(path: Path) -> Baseline:
    """A baseline file written by `write_baseline`, or one line naming the file (and the JSON line, for JSON that
    does not parse) and what is wrong: exit 2. A file that is not ours, of another version or fingerprint recipe,
    or with an entry whose fingerprint is not 64 hex digits is refused, never half read."""
    shown = display(path)
    data = load_json(path)  # missing, unreadable, too large, not JSON (with its line): one line, exit 2

    def wrong(field: str, message: str) -> EstateError:
        return EstateError.one(shown, 0, field, message)

    if not isinstance(data, Mapping) or data.get("kind") != KIND:
        found = f"kind {data.get('kind')!r}" if isinstance(data, Mapping) else describe(data)
        raise wrong("kind" if isinstance(data, Mapping) else "",
                    f"not an estate baseline (expected an object of kind {KIND!r}, found {found}); write one with "
                    "estate check --write-baseline FILE")
    version = data.get("version")
    if version != VERSION or isinstance(version, bool):
        raise wrong("version", f"version {version!r}: this estate reads baseline version {VERSION}")
    if data.get("fingerprint") != FINGERPRINT_VERSION:
        raise wrong("fingerprint", f"fingerprints made by {data.get('fingerprint')!r}, not "
                                   f"{FINGERPRINT_VERSION!r}: they cannot be compared; write the baseline again")
    entries = data.get("findings")
    if not isinstance(entries, list):
        raise wrong("findings", f"expected a list of findings, found {describe(entries)}")
    prints: set[str] = set()
    for i, entry in enumerate(entries):
        fp = entry.get("fingerprint") if isinstance(entry, Mapping) else None
        if not isinstance(fp, str) or not _HEX.fullmatch(fp):
            raise wrong(f"findings[{i}].fingerprint", "expected a finding's fingerprint, 64 lowercase hex digits")
        prints.add(fp)
    framework, date = data.get("framework_version"), data.get("date")
    return Baseline(shown, str(framework) if framework is not None else "", str(date) if date is not None else "",
                    frozenset(prints))


def apply_baseline(report: Report, baseline: Baseline) -> Report:
    """The report with every failing finding the baseline holds marked `baselined` (shown, not blocking)."""
    councils = {
        key: dataclasses.replace(result, findings=[
            dataclasses.replace(f, baselined=True) if f.failing and f.fingerprint in baseline.fingerprints else f
            for f in result.findings])
        for key, result in report.councils.items()}
    return dataclasses.replace(report, councils=councils, baseline=baseline.file)
