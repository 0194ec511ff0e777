"""The project's Podman: everything this project runs with podman (the lab, `estate check --hosts` on lab hosts,
Molecule scenarios) uses `podman_env()`, the environment that points CONTAINERS_CONF and CONTAINERS_STORAGE_CONF
at the project's own files under `.state/podman/`, rendered from `lab/containers.conf` and `lab/storage.conf`.
Below the lab and the compliance gatherer, which both run podman."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from estate.atomic import write_if_changed
from estate.loader import find_root

LAB_CONFIG_DIR = "lab"


def project_root(root: Path | None = None) -> Path:
    return (root or find_root()).resolve()


def state_dir(root: Path | None = None) -> Path:
    """.state/ of the project (created; resolved, so a .state that is a symlink names its target)."""
    path = project_root(root) / ".state"
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


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
