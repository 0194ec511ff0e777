"""The lab's base image: its cache key follows the recipe; the image boots systemd with sshd and python3."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from estate.errors import EstateError
from estate.lab.image import ensure_image, image_name, load_recipe, recipe_hash
from estate.podman import podman_env

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def lab_copy(tmp_path: Path) -> Path:
    shutil.copy(REPO / "framework.yaml", tmp_path / "framework.yaml")
    shutil.copytree(REPO / "lab", tmp_path / "lab")
    return tmp_path


def test_the_recipe_loads_and_names_the_image() -> None:
    recipe, _ = load_recipe(REPO)
    assert {"systemd", "openssh-server", "python3"} <= set(recipe.packages)
    assert image_name(REPO) == f"localhost/{recipe.name}:{recipe_hash(REPO)[:12]}"


def test_the_hash_changes_with_the_recipe_and_only_then(lab_copy: Path) -> None:
    before = recipe_hash(lab_copy)
    assert recipe_hash(lab_copy) == before
    script = lab_copy / "lab" / "image" / "customize.sh"
    script.write_text(script.read_text() + "\n# a change\n")
    assert recipe_hash(lab_copy) != before


def test_a_bad_recipe_is_one_line_with_file_and_line(lab_copy: Path) -> None:
    recipe = lab_copy / "lab" / "image" / "recipe.yml"
    recipe.write_text(recipe.read_text().replace("  - python3\n", "  - Python 3\n"))
    with pytest.raises(EstateError) as info:
        load_recipe(lab_copy)
    problem = info.value.problems[0]
    assert problem.file.endswith("lab/image/recipe.yml")
    assert problem.field.startswith("packages[")
    assert problem.line > 1


def test_podman_env_points_at_the_project_config(lab_copy: Path) -> None:
    env = podman_env(lab_copy)
    conf = Path(env["CONTAINERS_CONF"])
    storage = Path(env["CONTAINERS_STORAGE_CONF"])
    assert conf.parent == storage.parent == lab_copy / ".state" / "podman"
    assert 'runtime = "runc"' in conf.read_text()
    assert '"nofile=20000:20000"' in conf.read_text()
    assert f'graphroot = "{lab_copy}/.state/podman/storage"' in storage.read_text()


@pytest.mark.lab
def test_the_image_boots_systemd_with_sshd_and_python3() -> None:
    name = ensure_image(REPO)
    assert ensure_image(REPO) == name  # cached: the second call builds nothing
    env = podman_env(REPO)
    box = "se-test-image"
    subprocess.run(["podman", "rm", "-f", box], env=env, capture_output=True, check=False)
    subprocess.run(["podman", "run", "-d", "--name", box, "--network", "none", name],
                   env=env, check=True, capture_output=True)
    try:
        state = ""
        for _ in range(50):
            state = subprocess.run(["podman", "exec", box, "systemctl", "is-system-running"], env=env,
                                   capture_output=True, text=True, check=False).stdout.strip()
            if state in ("running", "degraded"):
                break
            time.sleep(0.2)
        assert state == "running"

        def out(*argv: str) -> str:
            return subprocess.run(["podman", "exec", box, *argv], env=env, capture_output=True, text=True,
                                  check=True).stdout.strip()

        assert out("systemctl", "is-active", "ssh") == "active"
        assert out("python3", "-c", "import apt, sys; print(sys.version_info[0])") == "3"
        assert out("sh", "-c", "ulimit -n") == "20000"
        assert out("cat", "/etc/machine-id") != ""
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", box], env=env, capture_output=True, check=False)


@pytest.mark.lab
def test_a_failed_build_is_one_line_and_leaves_no_image(lab_copy: Path) -> None:
    recipe = lab_copy / "lab" / "image" / "recipe.yml"
    text = recipe.read_text()
    text = text[:text.index("mirrors:")] + "mirrors:\n  - deb http://deb.debian.org/debian se-no-such-suite main\n" + \
        text[text.index("packages:"):]
    recipe.write_text(text)
    with pytest.raises(EstateError) as info:
        ensure_image(lab_copy)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("lab/image/recipe.yml: base image build failed (mmdebstrap exit ")
    assert "(log: .state/podman/image-build.log)" in message
    assert "se-no-such-suite" in message
    assert "se-no-such-suite" in (lab_copy / ".state" / "podman" / "image-build.log").read_text()
    env = podman_env(lab_copy)
    images = subprocess.run(["podman", "images", "-q"], env=env, capture_output=True, text=True, check=True)
    assert images.stdout.strip() == ""
    assert not list((lab_copy / ".state" / "podman").glob("build-*.tar"))
