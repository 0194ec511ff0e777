"""Refresh the vendored ARM deployment schemas from a clone of Azure/azure-resource-manager-schemas.

    python -m estate.contract.vendor GIT_DIR [COMMIT]

Copies, at the pinned commit, exactly the files `ARM_TYPES` needs (one namespace file per api-version, the
files they `$ref`, `common/definitions.json`) and the repository's LICENSE into `schemas/`, and rewrites
SOURCE.md. Nothing is trimmed: the whole set is about 2 MB. Run it when azure-native moves to other
api-versions (the test that compares `ARM_TYPES` with azure-native's docstrings says when).
"""

from __future__ import annotations

import subprocess
import sys

from estate.atomic import write_atomic
from estate.contract.types import ARM_TYPES, SCHEMA_COMMIT, SCHEMA_REPO, SCHEMAS, schema_files

# Files a vendored namespace file `$ref`s by URL (besides common/definitions.json).
REFERENCED = ("2024-11-01/Microsoft.Compute.Extensions.json",)


def _show(git_dir: str, commit: str, path: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={git_dir}", "show", f"{commit}:{path}"], check=True,
                          capture_output=True).stdout


def vendor(git_dir: str, commit: str = SCHEMA_COMMIT) -> list[str]:
    files = sorted({*schema_files(), *REFERENCED, "common/definitions.json"})
    for rel in files:
        target = SCHEMAS / rel
        write_atomic(target, _show(git_dir, commit, f"schemas/{rel}"), parents=True)
    write_atomic(SCHEMAS / "LICENSE", _show(git_dir, commit, "LICENSE"))
    lines = [
        "# Vendored ARM deployment schemas",
        "",
        f"- repository: {SCHEMA_REPO}",
        f"- commit: `{commit}`",
        "- licence: MIT, in `LICENSE` beside this file (copied from the repository at that commit)",
        "- written by `python -m estate.contract.vendor GIT_DIR` (estate/contract/vendor.py); files copied whole,"
        " nothing trimmed",
        "",
        "Each file is `schemas/<path>` in the repository. The api-version of each azure-native type is the one",
        "pulumi-azure-native 3.29 sends (its class docstring: \"Uses Azure REST API version ...\"); a test checks it.",
        "",
        "| file | bytes | used for |",
        "| --- | --- | --- |",
    ]
    for rel in files:
        users = sorted(t.split(":", 1)[1] for t, arm in ARM_TYPES.items() if arm.file == rel)
        if rel in REFERENCED:
            users.append("extension settings referenced by Microsoft.Compute")
        used = ", ".join(users) if users else "shared definitions"
        lines.append(f"| `{rel}` | {(SCHEMAS / rel).stat().st_size} | {used} |")
    write_atomic(SCHEMAS / "SOURCE.md", "\n".join(lines) + "\n")
    return files


if __name__ == "__main__":
    vendor(*sys.argv[1:3])
