"""The AWX / Automation Platform project (issue 16 item 2): what AWX, ansible-builder and ansible-navigator read.

- collections/requirements.yml: its structure (ansible-galaxy's requirements format), every collection pinned to the
  version the tests run with, and every module the roles call covered by it or by ansible.builtin;
- execution-environment.yml: valid against ansible-builder's own schema (ansible_builder/ee_schema.py, schema
  version 3), its Python requirements the pins of pyproject.toml, and `ansible-builder create` (no container
  engine: it only writes the build context) writes a Containerfile equal to tests/data/ee/Containerfile.golden;
- ansible-navigator.yml: valid against navigator's settings schema (`ansible-navigator settings --schema`), running
  the image the EE definition builds.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
EE_FILE = REPO / "execution-environment.yml"
EE_REQUIREMENTS = REPO / "requirements-ee.txt"
GOLDEN = REPO / "tests" / "data" / "ee" / "Containerfile.golden"
COLLECTIONS = REPO / "collections" / "requirements.yml"
NAVIGATOR = REPO / "ansible-navigator.yml"
# The runtime pins the EE gets another way than requirements-ee.txt, and where.
INSTALLED_OTHERWISE = {
    "ansible-core": "dependencies.ansible_core",
    "ansible-runner": "dependencies.ansible_runner",
    "ansible": "collections/requirements.yml (the collections, not the community package)",
}


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _name(requirement: str) -> str:
    return re.split(r"[=<>!~\[; ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def _pyproject_pins() -> dict[str, str]:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    return {_name(d): d for d in deps}


def _requirement_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _env() -> dict[str, str]:
    # navigator and builder find ansible, ansible-galaxy and ansible-builder on PATH: the venv's
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


# --- Python requirements -------------------------------------------------------------------------------------------


def test_ee_python_requirements_are_pyprojects_pins() -> None:
    pins = _pyproject_pins()
    lines = _requirement_lines(EE_REQUIREMENTS)
    assert lines, "requirements-ee.txt lists nothing"
    for line in lines:
        assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][A-Za-z0-9.]*", line), f"not an exact pin: {line}"
        assert _name(line) in pins, f"{line} is not a runtime dependency of pyproject.toml"
        assert line == pins[_name(line)], f"requirements-ee.txt {line} != pyproject.toml {pins[_name(line)]}"
    listed = {_name(line) for line in lines}
    missing = set(pins) - listed - set(INSTALLED_OTHERWISE)
    assert not missing, f"pyproject.toml runtime pins missing from requirements-ee.txt: {sorted(missing)}"
    assert not listed & set(INSTALLED_OTHERWISE), "ansible / ansible-core / ansible-runner come in another way"
    assert len(listed) == len(lines), "a package listed twice"


def test_ee_ansible_core_and_runner_are_pyprojects_pins() -> None:
    pins = _pyproject_pins()
    deps = _load(EE_FILE)["dependencies"]
    assert deps["ansible_core"]["package_pip"] == pins["ansible-core"]
    assert deps["ansible_runner"]["package_pip"] == pins["ansible-runner"]
    assert deps["python"] == EE_REQUIREMENTS.name


def test_ee_image_tag_carries_the_projects_version() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    tags = _load(EE_FILE)["options"]["tags"]
    assert tags == [f"localhost/shared-estate-ee:{version}"]


# --- ansible-builder -----------------------------------------------------------------------------------------------


def test_ee_definition_is_valid_against_ansible_builders_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    # ansible_builder.exceptions sets sys.tracebacklimit = 0 when imported (in DefinitionError's class body), which
    # leaves traceback.extract_stack() empty for the rest of the process, and pulumi's mocked plan (runtime/resource.py,
    # _get_stack_trace) then fails: monkeypatch puts the interpreter's value back after this test
    monkeypatch.setattr(sys, "tracebacklimit", getattr(sys, "tracebacklimit", 1000), raising=False)
    from ansible_builder.ee_schema import validate_schema  # type: ignore[import-untyped]
    from ansible_builder.exceptions import DefinitionError  # type: ignore[import-untyped]

    definition = _load(EE_FILE)
    assert definition["version"] == 3
    validate_schema(copy.deepcopy(definition))  # raises DefinitionError when invalid
    # the same check refuses what schema version 3 does not allow
    broken = copy.deepcopy(definition)
    broken["dependencies"]["ansible_core"] = {"package_system": "ansible-core"}
    with pytest.raises(DefinitionError):
        validate_schema(broken)
    broken = copy.deepcopy(definition)
    broken["images"]["base_image"] = "quay.io/centos/centos:stream9"  # must be a mapping with `name`
    with pytest.raises(DefinitionError):
        validate_schema(broken)


def test_ansible_builder_create_writes_the_golden_containerfile(tmp_path: Path) -> None:
    """`ansible-builder create` writes the build context without a container engine. The Containerfile is compared
    byte for byte: nothing in it varies between runs, machines or output folders (the context's paths are relative,
    `_build/...`), so nothing is normalised. After a deliberate change to execution-environment.yml or an
    ansible-builder upgrade: `ansible-builder create -c /tmp/ctx --output-filename Containerfile` and copy
    /tmp/ctx/Containerfile over tests/data/ee/Containerfile.golden (review the diff)."""
    context = tmp_path / "context"
    proc = subprocess.run([str(BIN / "ansible-builder"), "create", "-f", str(EE_FILE), "-c", str(context),
                           "--output-filename", "Containerfile"], cwd=tmp_path, env=_env(), capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    build = context / "_build"
    for name in ("requirements.txt", "bindep.txt", "requirements.yml"):
        assert (build / name).is_file(), f"{name} missing from the build context"
    for script in ("assemble", "install-from-bindep", "introspect.py", "check_ansible", "entrypoint"):
        assert (build / "scripts" / script).is_file(), f"scripts/{script} missing from the build context"
    # the context carries our files as they are
    assert (build / "requirements.txt").read_text(encoding="utf-8") == EE_REQUIREMENTS.read_text(encoding="utf-8")
    assert (build / "bindep.txt").read_text(encoding="utf-8") == (REPO / "bindep.txt").read_text(encoding="utf-8")
    assert _load(build / "requirements.yml") == _load(COLLECTIONS)
    # the plugin's collection sits in the context where requirements.yml's relative path finds it from /build
    plugin = "collections/ansible_collections/shared_estate/estate/plugins/inventory/estate.py"
    assert (build / plugin).read_bytes() == (REPO / plugin).read_bytes()
    written = (context / "Containerfile").read_text(encoding="utf-8")
    assert written == GOLDEN.read_text(encoding="utf-8"), "the Containerfile differs from the golden copy"
    # what the golden copy must say, whatever else changes
    assert 'ARG EE_BASE_IMAGE="quay.io/centos/centos:stream9"' in written
    assert 'ARG ANSIBLE_INSTALL_REFS="ansible-core==2.19.14 ansible-runner==2.4.3"' in written
    assert 'ARG PYCMD="/usr/bin/python3.11"' in written
    assert "ENV PYTHONPATH=/runner/project" in written


# --- collections/requirements.yml ----------------------------------------------------------------------------------

# ansible-galaxy's requirements file, collections part: a list of names or of {name, version, source, type,
# signatures} (https://docs.ansible.com/projects/ansible/latest/collections_guide/collections_installing.html,
# "Install multiple collections with a requirements file"). Stricter than galaxy on purpose: a version is an exact pin.
REQUIREMENTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["collections"],
    "properties": {
        "collections": {
            "type": "array",
            "minItems": 1,
            "items": {
                "oneOf": [
                    {   # from a Galaxy server: name namespace.collection, an exact version
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "version"],
                        "properties": {
                            "name": {"type": "string", "pattern": r"^[a-z0-9_]+\.[a-z0-9_]+$"},
                            "version": {"type": "string", "pattern": r"^[0-9]+\.[0-9]+\.[0-9]+$"},
                            "source": {"type": "string"},
                            "type": {"const": "galaxy"},
                        },
                    },
                    {   # from a folder of the project: a relative path, never outside it
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "type"],
                        "properties": {
                            "name": {"type": "string",
                                     "pattern": r"^\./collections/ansible_collections/[a-z0-9_]+/[a-z0-9_]+$"},
                            "type": {"const": "dir"},
                        },
                    },
                ],
            },
        },
        "roles": {"type": "array"},
    },
}


def _installed_collection_version(fqcn: str) -> str:
    import ansible_collections  # type: ignore[import-untyped]

    namespace, name = fqcn.split(".")
    for root in ansible_collections.__path__:
        manifest = Path(root) / namespace / name / "MANIFEST.json"
        if manifest.is_file():
            return str(json.loads(manifest.read_text(encoding="utf-8"))["collection_info"]["version"])
    raise AssertionError(f"{fqcn} is not installed")


def test_collection_requirements_are_pinned_to_the_tested_versions() -> None:
    requirements = _load(COLLECTIONS)
    jsonschema.validate(requirements, REQUIREMENTS_SCHEMA)
    names = [c["name"] for c in requirements["collections"]]
    assert len(names) == len(set(names)), "a collection listed twice"
    assert "azure.azcollection" in names  # the cloud VMs' inventory (azure_rm)
    for entry in requirements["collections"]:
        if entry.get("type") == "dir":
            assert (REPO / entry["name"] / "galaxy.yml").is_file(), entry  # ansible-galaxy builds it from there
        else:
            assert entry["version"] == _installed_collection_version(entry["name"]), entry
    # the project's inventory plugin travels with AWX's project sync and into the EE
    assert "./collections/ansible_collections/shared_estate/estate" in names


def test_collection_requirements_schema_refuses_an_unpinned_entry() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"collections": [{"name": "azure.azcollection", "version": ">=3.0.0"}]},
                            REQUIREMENTS_SCHEMA)


def test_every_module_the_roles_call_is_covered() -> None:
    listed = {c["name"] for c in _load(COLLECTIONS)["collections"]} | {"ansible.builtin"}
    called: set[str] = set()
    for path in [*(REPO / "roles").rglob("*.yml"), *(REPO / "playbooks").rglob("*.yml")]:
        if "molecule" in path.parts:
            continue  # Molecule's scenarios run on the developer's machine, not in the EE
        called |= set(re.findall(r"^\s*-?\s*([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+:", path.read_text(encoding="utf-8"),
                                 re.M))
    assert "ansible.builtin" in called
    assert called <= listed, f"collections called but not in collections/requirements.yml: {called - listed}"


# --- ansible-navigator.yml -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def navigator_schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Navigator's own settings schema, as the installed version prints it."""
    cwd = tmp_path_factory.mktemp("navigator")
    proc = subprocess.run([str(BIN / "ansible-navigator"), "settings", "--schema", "--ee", "false", "-m", "stdout"],
                          cwd=cwd, env={**_env(), "ANSIBLE_NAVIGATOR_CONFIG": str(NAVIGATOR)}, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    schema: dict[str, Any] = json.loads(proc.stdout)
    return schema


def test_navigator_settings_are_valid_against_navigators_schema(navigator_schema: dict[str, Any]) -> None:
    settings = _load(NAVIGATOR)
    jsonschema.validate(settings, navigator_schema)
    with pytest.raises(jsonschema.ValidationError):  # the schema does refuse a wrong setting
        jsonschema.validate({"ansible-navigator": {"mode": "quiet"}}, navigator_schema)


def test_navigator_runs_the_ee_the_definition_builds() -> None:
    nav = _load(NAVIGATOR)["ansible-navigator"]
    ee = nav["execution-environment"]
    assert ee["enabled"] is True
    assert [ee["image"]] == _load(EE_FILE)["options"]["tags"]
    assert nav["mode"] == "stdout"
    assert nav["ansible"]["inventory"]["entries"] == ["inventories/estate.yml"]
    assert nav["playbook-artifact"]["enable"] is False
    assert nav["logging"]["file"].startswith(".state/")
    # the repo mounted where the image's PYTHONPATH looks for the estate library (AWX's /runner/project)
    steps = _load(EE_FILE)["additional_build_steps"]["append_final"]
    pythonpath = next(step.split("=", 1)[1] for step in steps if step.startswith("ENV PYTHONPATH="))
    assert {"src": ".", "dest": pythonpath, "options": "Z"} in ee["volume-mounts"]


# --- a project-sourced inventory, as AWX runs it (ansible/awx#9789) ------------------------------------------------
# AWX runs an inventory source "sourced from a project" as `ansible-inventory -i /runner/project/<file> --list
# --export --playbook-dir <the file's folder>` and sets ANSIBLE_COLLECTIONS_PATH itself: first the collections the
# project sync installed from collections/requirements.yml (requirements_collections), then the image's paths
# (github.com/ansible/awx, awx/main/tasks/jobs.py: RunInventoryUpdate.build_args and build_env). ansible.cfg's
# collections_path is not read there. Users report the plugin working from the repo root and not in AWX
# (ansible/awx#9789): the playbook directory is inventories/, not the root, and the working directory differs.

PRODUCTION = {  # a real host in two councils, by DNS name (no address to keep in step with the address plan)
    "havering": "  - {name: hav-prod-tc01, role: thin_client, vlan: desktops, dns_name: tc01.havering.example.org}\n",
    "newham": "  - {name: nwm-prod-app01, role: app_server, vlan: servers, dns_name: app01.newham.example.org,\n"
              "     connection: {user: ansible, port: 2222}}\n",
}


@pytest.fixture
def project(repo_copy: Path) -> Path:
    """A copy of the project as AWX checks it out: framework.yaml, inventories/ (with production hosts in two
    councils), collections/, ansible.cfg, and the lab's inventory as `estate lab up` writes it."""
    from estate.inventory import LAB_INVENTORY
    from estate.lab.inventory import render_inventory
    from estate.lab.topology import build as build_topology
    from estate.lab.topology import load_config
    from estate.loader import load_estate

    shutil.copytree(REPO / "collections", repo_copy / "collections",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "ansible.cfg", repo_copy / "ansible.cfg")
    for council, entry in PRODUCTION.items():
        hosts = repo_copy / "inventories" / council / "hosts.yml"
        hosts.write_text(hosts.read_text(encoding="utf-8") + "production:\n" + entry, encoding="utf-8")
    estate = load_estate(repo_copy)
    topology = build_topology(estate, load_config(REPO))
    lab = repo_copy / LAB_INVENTORY
    lab.parent.mkdir(parents=True)
    lab.write_text(yaml.safe_dump(render_inventory(topology, key_file=Path("/LAB/ssh/id_ed25519"),
                                                   known_hosts=Path("/LAB/ssh/known_hosts"),
                                                   framework_version=estate.framework.version), sort_keys=False),
                   encoding="utf-8")
    return repo_copy


def _ansible(tool: str, *args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / tool), *args], cwd=cwd, env={**_env(), "ANSIBLE_NOCOLOR": "1", **env},
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def requirements_collections(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What AWX's project sync installs from collections/requirements.yml: ansible-galaxy run in the project root
    into a folder of its own (awx/playbooks/project_update.yml). Offline: azure.azcollection is already installed
    (the pinned `ansible` package ships it), so only the project's own collection is built and installed."""
    dest = tmp_path_factory.mktemp("requirements_collections")
    no_config = tmp_path_factory.mktemp("cfg") / "ansible.cfg"
    no_config.write_text("", encoding="utf-8")
    done = _ansible("ansible-galaxy", "collection", "install", "--offline", "-r", "collections/requirements.yml",
                    "--collections-path", str(dest), cwd=project,
                    env={"ANSIBLE_CONFIG": str(no_config), "ANSIBLE_COLLECTIONS_PATH": str(dest)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert (dest / "ansible_collections/shared_estate/estate/plugins/inventory/estate.py").is_file(), done.stdout
    return dest


def _listed(project: Path, *, cwd: Path, playbook_dir: Path, env: dict[str, str]) -> dict[str, Any]:
    done = _ansible("ansible-inventory", "-i", str(project / "inventories" / "estate.yml"), "--list",
                    "--playbook-dir", str(playbook_dir), cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def test_a_project_sourced_inventory_is_the_same_whatever_the_playbook_dir_and_cwd(
        project: Path, requirements_collections: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"  # AWX's working directory is not the inventory file's folder
    elsewhere.mkdir()
    awx = {"ANSIBLE_COLLECTIONS_PATH": f"{requirements_collections}:~/.ansible/collections:"
                                       "/usr/share/ansible/collections"}
    runs = {
        "repo root, --playbook-dir the root": _listed(project, cwd=project, playbook_dir=project, env={}),
        "repo root, --playbook-dir inventories/": _listed(project, cwd=project, playbook_dir=project / "inventories",
                                                          env={}),
        "elsewhere as AWX, --playbook-dir the root": _listed(project, cwd=elsewhere, playbook_dir=project, env=awx),
        "elsewhere as AWX, --playbook-dir inventories/": _listed(project, cwd=elsewhere,
                                                                 playbook_dir=project / "inventories", env=awx),
    }
    reference = runs["repo root, --playbook-dir the root"]
    hostvars = reference["_meta"]["hostvars"]
    assert {"hav-prod-tc01", "nwm-prod-app01"} <= set(hostvars)  # the production hosts
    assert len(hostvars) > len(PRODUCTION)  # and the lab's
    assert hostvars["nwm-prod-app01"]["ansible_port"] == 2222
    assert all(name.startswith("estate_") or name.startswith("ansible_") for v in hostvars.values() for name in v)
    assert "hav-prod-tc01" in reference["council_havering"]["hosts"]
    for how, data in runs.items():
        assert sorted(data["_meta"]["hostvars"]) == sorted(hostvars), how
        assert data == reference, f"{how}: not the same groups and variables as from the repo root"


def test_the_trap_without_the_project_sync_the_plugin_is_not_found(project: Path, tmp_path: Path) -> None:
    """Why collections/requirements.yml lists the project's own collection: from another working directory
    Ansible does not read the project's ansible.cfg, and the playbook directory AWX passes (inventories/) holds no
    collections/, so nothing finds the plugin; ansible-inventory then warns and yields no host at all."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    empty = tmp_path / "no_collections"
    empty.mkdir()
    done = _ansible("ansible-inventory", "-i", str(project / "inventories" / "estate.yml"), "--list",
                    "--playbook-dir", str(project / "inventories"), cwd=elsewhere,
                    env={"ANSIBLE_COLLECTIONS_PATH": str(empty)})
    assert "shared_estate" in done.stderr
    assert done.returncode != 0 or not json.loads(done.stdout)["_meta"]["hostvars"]


# --- a second, independent schema check: ansible-lint's schemas (ansible-compat) for the three files --------------

AWX_FILES = ("execution-environment.yml", "ansible-navigator.yml", "collections/requirements.yml")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "ansible-lint"), "--nocolor", "-f", "pep8", "--offline", "--profile",
                           "production", *AWX_FILES], cwd=root, env={**_env(), "NO_COLOR": "1"},
                          capture_output=True, text=True, timeout=600, check=False)


def test_ansible_lint_schemas_accept_the_awx_files(tmp_path: Path) -> None:
    done = _lint(REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # and refuse each when it breaks its schema (a copy of the three, one wrong key or value in each)
    broken = {
        "execution-environment.yml": EE_FILE.read_text(encoding="utf-8").replace("\noptions:", "\nbogus: 1\noptions:"),
        "ansible-navigator.yml": NAVIGATOR.read_text(encoding="utf-8").replace("mode: stdout", "mode: quiet"),
        "collections/requirements.yml": COLLECTIONS.read_text(encoding="utf-8").replace("version:", "versio:"),
    }
    for name, text in broken.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / ".ansible-lint").write_text("---\noffline: true\n", encoding="utf-8")
    done = _lint(tmp_path)
    assert done.returncode != 0
    flagged = {line.split(":", 1)[0] for line in done.stdout.splitlines() if ": schema" in line}
    assert flagged == set(AWX_FILES), done.stdout[-3000:] + done.stderr[-3000:]
