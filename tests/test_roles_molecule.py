"""`molecule test` for every role, on the lab's base image: create, converge, idempotence (a second converge
changes nothing), verify with testinfra, destroy. The scenarios run a few at a time (they wait on apt and
podman more than on the CPU); each is reported on its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.test_roles import ROLES

REPO = Path(__file__).resolve().parent.parent
PARALLEL = 3
pytestmark = pytest.mark.lab


def molecule_env(tmp: Path) -> dict[str, str]:
    """podman_env() (the project's containers.conf and storage), the lab's image, an apt cache per scenario,
    an SSH key for Ansible, the router's real ruleset, and this venv's tools first on PATH."""
    from estate.lab.image import ensure_image
    from estate.loader import load_estate
    from estate.nftables import render_router_ruleset
    from estate.podman import podman_env

    env = podman_env(REPO)
    env["ESTATE_LAB_IMAGE"] = ensure_image(REPO, progress=False)
    cache = REPO / ".state" / "apt-cache"
    for role in ROLES:
        (cache / f"molecule-{role.replace('_', '-')}" / "partial").mkdir(parents=True, exist_ok=True)
    env["ESTATE_APT_CACHE"] = str(cache)
    key = REPO / ".state" / "molecule" / "id_ed25519"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "molecule", "-f", str(key)], check=True)
    env["ESTATE_MOLECULE_KEY"] = str(key)  # Ansible's SSH key into the instances (see molecule.yml)
    ruleset = tmp / "router.nft"
    ruleset.write_text(render_router_ruleset(load_estate(REPO)), encoding="utf-8")
    env["ESTATE_ROUTER_RULESET"] = str(ruleset)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({"NO_COLOR": "1", "ANSIBLE_NOCOLOR": "1", "PY_COLORS": "0", "MOLECULE_NO_LOG": "false"})
    return env


def run_scenario(role: str, env: dict[str, str], log: Path) -> subprocess.CompletedProcess[str]:
    molecule = Path(sys.executable).parent / "molecule"
    started = time.monotonic()
    proc = subprocess.run([str(molecule), "test"], cwd=REPO / "roles" / role, env=env, capture_output=True,
                          text=True, timeout=3600, check=False)
    seconds = time.monotonic() - started
    log.write_text(f"molecule test {role}: exit {proc.returncode} in {seconds:.0f} s\n" + proc.stdout + proc.stderr,
                   encoding="utf-8")
    print(f"molecule test {role}: exit {proc.returncode} in {seconds:.0f} s")
    return proc


Runs = dict[str, Future[subprocess.CompletedProcess[str]]]


@pytest.fixture(scope="module")
def scenarios(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """Start the scenarios of the selected tests (`-k helpdesk` runs one), PARALLEL at a time."""
    selected = {item.callspec.params["role"] for item in request.session.items
                if getattr(item, "originalname", "") == "test_molecule" and hasattr(item, "callspec")}
    tmp = tmp_path_factory.mktemp("molecule")
    env = molecule_env(tmp)
    slowest = ["helpdesk", "baseline", "thin_client"]  # first, so that the pool ends together
    order = sorted(selected, key=lambda r: slowest.index(r) if r in slowest else len(slowest))
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        yield {role: pool.submit(run_scenario, role, env, tmp / f"{role}.log") for role in order}


@pytest.mark.parametrize("role", ROLES)
def test_molecule(role: str, scenarios: Runs) -> None:
    proc = scenarios[role].result()
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    for step in ("converge", "idempotence", "verify"):
        assert f"default > {step}: Executed: Successful" in output, f"{role}: {step} did not run"
