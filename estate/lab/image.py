"""The lab's base image: Debian with systemd, sshd and python3, built with mmdebstrap, cached.

`ensure_image()` returns `localhost/se-base:<hash>`; the hash covers the recipe folder (lab/image/)
and the host's local CA certificates, so the image is rebuilt only when one of them changes. The
build runs under a file lock, so the lab and a Molecule scenario starting together build it once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from estate.lab.progress import Progress
from estate.lab.sh import lab_error, require, run
from estate.loader import validate
from estate.podman import LAB_CONFIG_DIR, podman_dir, podman_env, project_root
from estate.yamlsrc import load

RECIPE_DIR = f"{LAB_CONFIG_DIR}/image"
RECIPE_FILE = "recipe.yml"
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: Annotated[str, Field(pattern=r"^se-[a-z0-9-]+$")]
    suite: Annotated[str, Field(pattern=r"^[a-z]+$")]
    variant: str
    mirrors: list[str] = Field(min_length=1)
    packages: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9+.-]*$")]] = Field(min_length=1)
    customize: str


def load_recipe(root: Path | None = None) -> tuple[Recipe, Path]:
    folder = project_root(root) / RECIPE_DIR
    src = load(folder / RECIPE_FILE)
    recipe = validate(Recipe, src)
    if not (folder / recipe.customize).is_file():
        raise src.error(("customize",), f"no file {recipe.customize} beside the recipe")
    return recipe, folder


def host_ca_files() -> list[Path]:
    if not HOST_CA_DIR.is_dir():
        return []
    return sorted(p for p in HOST_CA_DIR.rglob("*.crt") if p.is_file())


def recipe_hash(root: Path | None = None) -> str:
    """sha256 over every file of the recipe folder and the host CA certificates it copies in."""
    _, folder = load_recipe(root)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    for path in host_ca_files():
        digest.update(b"ca:" + path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def image_name(root: Path | None = None) -> str:
    recipe, _ = load_recipe(root)
    return f"localhost/{recipe.name}:{recipe_hash(root)[:12]}"


def image_exists(name: str, env: dict[str, str]) -> bool:
    return run(["podman", "image", "exists", name], env=env, check=False).returncode == 0


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_image(root: Path | None = None, *, progress: bool = False) -> str:
    """The base image's name, building it first when no image of the current recipe exists."""
    require("podman")
    base = project_root(root)
    env = podman_env(base)
    name = image_name(base)
    if image_exists(name, env):
        return name
    with _locked(podman_dir(base) / "image.lock"):
        if image_exists(name, env):
            return name
        require("mmdebstrap")
        with Progress(progress) as bars:
            _build(base, name, env, bars)
    _remove_old(name, env)
    return name


def _build(base: Path, name: str, env: dict[str, str], bars: Progress) -> None:
    recipe, folder = load_recipe(base)
    where = f"{RECIPE_DIR}/{RECIPE_FILE}"
    work = podman_dir(base)
    log_path = work / "image-build.log"
    tarball = work / f"build-{os.getpid()}.tar"
    argv = ["mmdebstrap", f"--variant={recipe.variant}", f"--include={','.join(recipe.packages)}",
            "--format=tar", "--verbose"]
    for ca in host_ca_files():
        argv.append(f"--customize-hook=copy-in {ca} /usr/local/share/ca-certificates/")
    argv += [f'--customize-hook=sh {folder / recipe.customize} "$1"', recipe.suite, str(tarball), *recipe.mirrors]
    started = time.monotonic()
    try:
        with bars.step(f"build {name.rsplit('/', 1)[-1]}") as step, log_path.open("w") as log:
            log.write("$ " + " ".join(argv) + "\n")
            log.flush()
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            assert proc.stderr is not None
            last = ""
            first_error = ""
            for line in proc.stderr:
                log.write(line)
                if line.strip():
                    last = line.strip()
                    step.note(last)
                    if last.startswith("E:") and not first_error:
                        first_error = last
            code = proc.wait()
            if code != 0:
                detail = first_error or last
                detail = detail if len(detail) <= 160 else detail[:157] + "..."
                raise lab_error(f"base image build failed (mmdebstrap exit {code}): {detail} "
                                f"(log: {log_path.relative_to(base)})", where)
            step.note("podman import")
            imported = run(["podman", "import", "--change", 'CMD ["/sbin/init"]',
                            "--change", "STOPSIGNAL=SIGRTMIN+3",
                            "--change", f"LABEL se.recipe={name.rsplit(':', 1)[-1]}",
                            str(tarball), name], env=env, check=False)
            log.write(imported.stdout + imported.stderr)
            if imported.returncode != 0:
                detail = (imported.stderr.strip().splitlines() or ["?"])[-1]
                raise lab_error(f"base image import failed: {detail} (log: {log_path.relative_to(base)})", where)
            log.write(f"built {name} in {time.monotonic() - started:.1f} s\n")
    finally:
        tarball.unlink(missing_ok=True)


def _remove_old(keep: str, env: dict[str, str]) -> None:
    """Drop earlier builds of the base image that no container uses (best effort)."""
    repo = keep.rsplit(":", 1)[0]
    listed = run(["podman", "images", "--format", "{{.Repository}}:{{.Tag}}", repo], env=env, check=False)
    for line in listed.stdout.split():
        if line != keep and line.startswith(repo + ":"):
            run(["podman", "rmi", line], env=env, check=False)
