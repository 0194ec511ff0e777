"""The lab: the example councils' estate on one machine (Podman hosts, one bridge per VLAN, a router).

Everything the lab makes lives under the project's `.state/` folder and carries the `se-` prefix:
`.state/podman/` holds Podman's configuration and storage (estate.podman: `podman_env()` is the environment
anyone who runs podman for this project uses), `.state/lab/` the lab's state file, SSH key, Ansible inventory
and logs.
"""

from __future__ import annotations

from pathlib import Path

from estate.podman import state_dir

PREFIX = "se-"


def lab_dir(root: Path | None = None) -> Path:
    """.state/lab/: the lab's state file, SSH key, inventory and logs (created)."""
    path = state_dir(root) / "lab"
    path.mkdir(parents=True, exist_ok=True)
    return path
