"""The lab: the example councils' estate on one machine (Podman hosts, one bridge per VLAN, a router).

Everything the lab makes lives under the project's `.state/` folder and carries the `se-` prefix:
`.state/podman/` holds Podman's configuration and storage, `.state/lab/` the lab's state file, SSH key,
Ansible inventory and logs. `podman_env()` is the environment anyone who runs podman for this
project uses (the lab, Molecule scenarios): it points CONTAINERS_CONF and CONTAINERS_STORAGE_CONF at
the project's own files, rendered from `lab/containers.conf` and `lab/storage.conf`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from estate.atomic import write_atomic

PREFIX = "se-"
LAB_CONFIG_DIR = "lab"


def project_root(root: Path | None = None) -> Path:
    from estate.loader import find_root

    return (root or find_root()).resolve()


def state_dir(root: Path | None = None) -> Path:
    """.state/ of the project (created; resolved, so a .state that is a symlink names its target)."""
    path = project_root(root) / ".state"
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def lab_dir(root: Path | None = None) -> Path:
    """.state/lab/: the lab's state file, SSH key, inventory and logs (created)."""
    path = state_dir(root) / "lab"
    path.mkdir(parents=True, exist_ok=True)
    return path


def podman_dir(root: Path | None = None) -> Path:
    """.state/podman/: Podman's rendered configuration and its storage (created)."""
    path = state_dir(root) / "podman"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def write_if_changed(path: Path, text: str) -> None:
    """Write `text` to `path` whole (a temp file beside it, then rename), unless it already holds it."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    write_atomic(path, text)


def podman_env(root: Path | None = None) -> dict[str, str]:
    """The environment for running podman on this project's storage: os.environ plus
    CONTAINERS_CONF and CONTAINERS_STORAGE_CONF pointing at .state/podman/*.conf.

    Renders the two files from lab/ (placeholder `{state}` = .state/podman). Podman's run and tmp
    folders live there too, so when the machine has rebooted since they were written (the boot id
    differs) they are emptied first: their records of running containers would be stale.
    """
    base = project_root(root)
    state = podman_dir(base)
    for name in ("containers.conf", "storage.conf"):
        template = (base / LAB_CONFIG_DIR / name).read_text(encoding="utf-8")
        write_if_changed(state / name, template.replace("{state}", str(state)))
    boot = state / "boot_id"
    current = _boot_id()
    if boot.exists() and boot.read_text(encoding="utf-8").strip() != current:
        for sub in ("run", "tmp"):
            shutil.rmtree(state / sub, ignore_errors=True)
    if not boot.exists() or boot.read_text(encoding="utf-8").strip() != current:
        write_if_changed(boot, current + "\n")
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = str(state / "containers.conf")
    env["CONTAINERS_STORAGE_CONF"] = str(state / "storage.conf")
    return env
