"""`estate deploy-manifests`: the Pulumi Kubernetes Operator's Stack resources validate against the operator's own CRD
(pinned: tests/data/pko/SOURCE.md), the hub comes first and every council waits for it; Pulumi Deployments' bodies
validate against the schema written from Pulumi's REST API pages (tests/data/deployments/settings.schema.json), the
hub first, councils deployed by the hub's success; no secret value anywhere; bad options are one line, exit 2."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from jsonschema.exceptions import ValidationError

from estate import cli
from estate.deploy import AZURE_ENV, HUB, MAX_STACK_NAME, env_name, per_deployment_keys, stack_resource_name
from estate.loader import Estate

cli._register_extensions()

REPO = Path(__file__).resolve().parent.parent
CRD = REPO / "tests" / "data" / "pko" / "pulumi.com_stacks.yaml"
CRD_SHA256 = "d8ce0513bb77d5d57753e521fd42e87a87bdaf7abda1be2584aa23c1c03ea290"
SETTINGS_SCHEMA = REPO / "tests" / "data" / "deployments" / "settings.schema.json"
ORG = "acme-consortium"
REPO_URL = "https://github.com/acme/shared-estate.git"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
BASE = ["--org", ORG, "--repo", REPO_URL]


# --- the CRD as a validator ---------------------------------------------------------------------------------------

def _map_keys(validator: Any, keys: list[str], instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    """x-kubernetes-list-type: map with x-kubernetes-list-map-keys: no two items share their keys (the API server
    refuses such a list)."""
    if not validator.is_type(instance, "array"):
        return
    seen: set[tuple[str, ...]] = set()
    for item in instance:
        if not isinstance(item, dict):
            continue
        key = tuple(json.dumps(item.get(k), sort_keys=True) for k in keys)
        if key in seen:
            yield ValidationError(f"two items share the map keys {keys}: {item}")
        seen.add(key)


def _structural(node: Any) -> Any:
    """The CRD's schema as the API server applies it, for jsonschema: an object that lists its properties takes no
    other field (the server prunes it, or refuses it under kubectl's strict field validation) unless
    x-kubernetes-preserve-unknown-fields; a `set` list has unique items; an int-or-string is either."""
    if isinstance(node, list):
        return [_structural(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _structural(v) for k, v in node.items()}
    if (out.get("type") == "object" and isinstance(out.get("properties"), dict)
            and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    if out.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if out.get("x-kubernetes-int-or-string") is True and "type" not in out and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return out


@pytest.fixture(scope="module")
def crd_v1() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text(encoding="utf-8"))
    assert crd["spec"]["group"] == "pulumi.com" and crd["spec"]["names"]["kind"] == "Stack"
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    assert v1["served"] and v1["storage"]
    schema: dict[str, Any] = v1["schema"]["openAPIV3Schema"]
    return schema


@pytest.fixture(scope="module")
def stack_validator(crd_v1: dict[str, Any]) -> Any:
    cls = jsonschema.validators.extend(jsonschema.Draft7Validator, {"x-kubernetes-list-map-keys": _map_keys})
    return cls(_structural(crd_v1))


def crd_errors(validator: Any, crd_v1: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
    # x-kubernetes-validations (CEL): the pinned CRD has exactly one rule, checked here by hand
    rules = [v["rule"] for v in crd_v1.get("x-kubernetes-validations", [])]
    assert rules == ["size(self.metadata.name) <= 42"], "the CRD's CEL rules changed: check them here"
    if len(doc["metadata"]["name"]) > 42:
        errors.append("metadata.name: longer than 42 characters")
    return errors


def test_the_crd_is_the_pinned_file() -> None:
    assert hashlib.sha256(CRD.read_bytes()).hexdigest() == CRD_SHA256
    source = (CRD.parent / "SOURCE.md").read_text(encoding="utf-8")
    assert CRD_SHA256 in source and "b713fae5a35041d899b0f64151a151f3df068ad1" in source
    assert "Apache License" in (CRD.parent / "LICENSE").read_text(encoding="utf-8")


# --- running the command ------------------------------------------------------------------------------------------

def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.run(["deploy-manifests", *args, "--root", str(REPO)])
    out, err = capsys.readouterr()
    return code, out, err


def pko_docs(capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict[str, Any]]:
    code, out, err = run(capsys, "--engine", "pko", *BASE, *extra)
    assert code == 0, err
    return [d for d in yaml.safe_load_all(out) if d is not None]


def stacks_of(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == "Stack"]


def all_keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from all_keys(v)
    elif isinstance(value, list):
        for v in value:
            yield from all_keys(v)


@pytest.mark.parametrize("source", [["--branch", "main"], ["--commit", COMMIT, "--repo-dir", "infra/estate"]])
def test_every_stack_validates_against_the_operators_crd(
        capsys: pytest.CaptureFixture[str], estate: Estate, stack_validator: Any, crd_v1: dict[str, Any],
        source: list[str]) -> None:
    docs = pko_docs(capsys, *source, "--spoke", "havering", "--spoke", "newham", "--hub-within", "24h",
                    "--image", "pulumi/pulumi-python:3.200.0-nonroot")
    stacks = stacks_of(docs)
    assert len(stacks) == 1 + len(estate.councils)
    for doc in stacks:
        assert crd_errors(stack_validator, crd_v1, doc) == [], doc["metadata"]["name"]
        spec = doc["spec"]
        assert doc["apiVersion"] == "pulumi.com/v1"
        assert spec["destroyOnFinalize"] is False and spec["refresh"] is True
        assert spec["projectRepo"] == REPO_URL
        assert ("branch" in spec) != ("commit" in spec)
        # every credential by reference to a Secret's key: no literal, no file, no value
        assert set(spec["envRefs"]) == {"PULUMI_ACCESS_TOKEN", *AZURE_ENV}
        assert all(ref["type"] == "Secret" and set(ref) == {"type", "secret"} for ref in spec["envRefs"].values())
        assert not any(k in ("literal", "secrets", "secretsRef", "value") for k in all_keys(spec))
    if "--commit" in source:
        assert all(s["spec"]["commit"] == COMMIT and s["spec"]["repoDir"] == "infra/estate" for s in stacks)


def test_the_hub_comes_first_and_every_council_waits_for_it(
        capsys: pytest.CaptureFixture[str], estate: Estate) -> None:
    docs = pko_docs(capsys, "--branch", "main", "--hub-within", "1h30m")
    assert [d["kind"] for d in docs[:2]] == ["ServiceAccount", "ClusterRoleBinding"]
    stacks = stacks_of(docs)
    names = [s["metadata"]["name"] for s in stacks]
    assert names == [stack_resource_name(HUB), *(stack_resource_name(c) for c in sorted(estate.councils))]
    hub, councils = stacks[0], stacks[1:]
    assert "prerequisites" not in hub["spec"]
    assert "config" not in hub["spec"]  # no --spoke: the committed file's spokes stay, none are dropped
    for doc in councils:
        assert doc["spec"]["prerequisites"] == [
            {"name": stack_resource_name(HUB), "requirement": {"succeededWithinDuration": "1h30m"}}]
        assert "config" not in doc["spec"]  # committed config stays in the repo's Pulumi.<stack>.yaml
    # <org>/<project>/<stack>, the project from Pulumi.yaml
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text(encoding="utf-8"))["name"]
    assert [s["spec"]["stack"] for s in stacks] == [f"{ORG}/{project}/{s}" for s in (HUB, *sorted(estate.councils))]
    # the workspace pods' service account, bound to system:auth-delegator
    sa, crb = docs[0], docs[1]
    assert all(s["spec"]["serviceAccountName"] == sa["metadata"]["name"] for s in stacks)
    assert crb["roleRef"]["name"] == "system:auth-delegator"
    assert crb["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                "namespace": sa["metadata"]["namespace"]}]


def test_per_deployment_config_comes_from_a_config_map_and_spokes_from_the_option(
        capsys: pytest.CaptureFixture[str], estate: Estate) -> None:
    stacks = stacks_of(pko_docs(capsys, "--branch", "main", "--spoke", "newham", "--spoke", "havering"))
    for doc in stacks:
        stack = doc["metadata"]["labels"]["shared-estate/stack"]
        refs = doc["spec"]["configRef"]
        assert list(refs) == per_deployment_keys(estate, stack)
        assert {r["name"] for r in refs.values()} == {f"{stack_resource_name(stack)}-config"}
        assert all(r["key"] == k for k, r in refs.items())
    assert stacks[0]["spec"]["config"] == {"spokes": ["newham", "havering"]}
    # a council's keys follow the framework: the AVD principal only with Start VM on Connect
    council = sorted(estate.councils)[0]
    assert ("avdServicePrincipalObjectId" in per_deployment_keys(estate, council)) == \
        estate.framework.desktop.avd.start_vm_on_connect


def test_the_crd_check_fails_a_wrong_stack(
        capsys: pytest.CaptureFixture[str], stack_validator: Any, crd_v1: dict[str, Any]) -> None:
    """The validator is not a rubber stamp: a misspelt field, a wrong type, a bad reference, a long name fail."""
    good = stacks_of(pko_docs(capsys, "--branch", "main"))[1]
    assert crd_errors(stack_validator, crd_v1, good) == []
    bad = []
    typo = copy.deepcopy(good)
    typo["spec"]["prerequisite"] = typo["spec"].pop("prerequisites")
    bad.append(typo)
    wrong_type = copy.deepcopy(good)
    wrong_type["spec"]["refresh"] = "yes"
    bad.append(wrong_type)
    no_type = copy.deepcopy(good)
    del no_type["spec"]["envRefs"]["ARM_CLIENT_ID"]["type"]
    bad.append(no_type)
    no_name = copy.deepcopy(good)
    no_name["spec"]["prerequisites"] = [{"requirement": {"succeededWithinDuration": "1h"}}]
    bad.append(no_name)
    long_name = copy.deepcopy(good)
    long_name["metadata"]["name"] = "x" * (MAX_STACK_NAME + 1)
    bad.append(long_name)
    no_stack = copy.deepcopy(good)
    del no_stack["spec"]["stack"]
    bad.append(no_stack)
    for doc in bad:
        assert crd_errors(stack_validator, crd_v1, doc), doc["spec"]


def test_output_folder_has_one_file_per_stack_in_order(
        capsys: pytest.CaptureFixture[str], estate: Estate, tmp_path: Path) -> None:
    out = tmp_path / "manifests"
    code, stdout, err = run(capsys, "--engine", "pko", *BASE, "--branch", "main", "--output", str(out))
    assert code == 0, err
    order = [HUB, *sorted(estate.councils)]
    assert sorted(p.name for p in out.iterdir()) == [
        "00-service-account.yaml", *(f"{i:02d}-{s}.yaml" for i, s in enumerate(order, start=1))]
    for i, stack in enumerate(order, start=1):
        (doc,) = list(yaml.safe_load_all((out / f"{i:02d}-{stack}.yaml").read_text(encoding="utf-8")))
        assert doc["metadata"]["name"] == stack_resource_name(stack)
    assert stdout.startswith(f"wrote {len(order) + 1} files")


def test_one_stack_alone_still_waits_for_the_hub(capsys: pytest.CaptureFixture[str], estate: Estate) -> None:
    council = sorted(estate.councils)[-1]
    stacks = stacks_of(pko_docs(capsys, "--branch", "main", "--stack", council))
    assert [s["metadata"]["name"] for s in stacks] == [stack_resource_name(council)]
    assert stacks[0]["spec"]["prerequisites"] == [{"name": stack_resource_name(HUB)}]


# --- Pulumi Deployments -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def deployments_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SETTINGS_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def _validate(schema: dict[str, Any], definition: str, body: Any) -> list[str]:
    one = {**schema, "$ref": f"#/$defs/{definition}"}
    return [e.message for e in jsonschema.Draft202012Validator(one).iter_errors(body)]


OIDC = ["--azure-client-id", "11111111-2222-3333-4444-555555555555",
        "--azure-tenant-id", "66666666-7777-8888-9999-000000000000",
        "--azure-subscription-id", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"]


def test_deployment_settings_follow_the_api_and_keep_the_order(
        capsys: pytest.CaptureFixture[str], estate: Estate, deployments_schema: dict[str, Any]) -> None:
    code, out, err = run(capsys, "--engine", "deployments", *BASE, "--branch", "main", *OIDC,
                         "--github-repo", "acme/shared-estate", "--spoke", "havering")
    assert code == 0, err
    files = json.loads(out)
    index = files["index.json"]
    order = [HUB, *sorted(estate.councils)]
    assert index["order"] == order
    project = index["project"]
    assert [s["path"] for s in index["settings"]] == [
        f"/api/stacks/{ORG}/{project}/{s}/deployments/settings" for s in order]
    assert all(s["method"] == "POST" for s in index["settings"])
    for stack in order:
        body = files[f"{stack}.settings.json"]
        assert _validate(deployments_schema, "settings", body) == [], stack
        git = body["sourceContext"]["git"]
        assert git == {"repoUrl": REPO_URL, "branch": "main"}
        assert body["operationContext"]["oidc"]["azure"]["clientId"] == "11111111-2222-3333-4444-555555555555"
        # only the hub deploys on a push; councils follow its success
        assert body["gitHub"]["deployCommits"] is (stack == HUB)
        commands = body["operationContext"]["preRunCommands"]
        for key in per_deployment_keys(estate, stack):
            assert any(f" {key} \"${{{env_name(key)}:?" in c for c in commands), key
        assert index["environment"][stack] == [env_name(k) for k in per_deployment_keys(estate, stack)]
    hub_commands = files[f"{HUB}.settings.json"]["operationContext"]["preRunCommands"]
    assert f"pulumi config set --stack {ORG}/{project}/{HUB} --path 'spokes[0]' havering" in hub_commands
    hooks = [files[h["body"]] for h in index["webhooks"]]
    assert [h["payloadUrl"] for h in hooks] == [f"{project}/{c}" for c in order[1:]]
    for hook in hooks:
        assert _validate(deployments_schema, "webhook", hook) == []
        assert hook["stackName"] == HUB and hook["format"] == "pulumi_deployments"
        assert hook["filters"] == ["update_succeeded"]


def test_deployments_carry_no_secret(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--engine", "deployments", *BASE, "--commit", COMMIT, *OIDC)
    assert code == 0, err
    files = json.loads(out)
    keys = set(all_keys(files))
    assert "secret" not in keys and "environmentVariables" not in keys and "gitAuth" not in keys
    assert "ARM_CLIENT_SECRET" not in out and "accessToken" not in out


def test_the_deployments_schema_refuses_what_the_api_does_not_name(deployments_schema: dict[str, Any]) -> None:
    good: dict[str, Any] = {"sourceContext": {"git": {"repoUrl": REPO_URL, "branch": "main"}}, "operationContext": {}}
    assert _validate(deployments_schema, "settings", good) == []
    both = copy.deepcopy(good)
    both["sourceContext"]["git"]["commit"] = COMMIT
    typo = copy.deepcopy(good)
    typo["sourceContext"]["git"]["repoURL"] = typo["sourceContext"]["git"].pop("repoUrl")
    bad_option = copy.deepcopy(good)
    bad_option["operationContext"] = {"options": {"skipInstallDeps": True}}
    for body in (both, typo, bad_option):
        assert _validate(deployments_schema, "settings", body), body


# --- bad input ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "expected"), [
    (["--engine", "helm", *BASE, "--branch", "main"], "--engine: 'helm' is not an engine (one of: pko, deployments)"),
    (["--engine", "pko", *BASE, "--branch", "main", "--stack", "camden"],
     "--stack: 'camden' is neither the hub (shared) nor a council in inventories/"),
    (["--engine", "pko", *BASE, "--branch", "main", "--stack", "../../etc/passwd"],
     "--stack: '../../etc/passwd' is neither the hub (shared) nor a council in inventories/"),
    (["--engine", "pko", *BASE, "--branch", "main", "--stack", "hav\x1b[31mering"],
     "--stack: 'hav\\x1b[31mering' is neither the hub (shared) nor a council in inventories/"),
    (["--engine", "pko", *BASE, "--branch", "main", "--spoke", "shared"],
     "--spoke: 'shared' is not a council in inventories/"),
    (["--engine", "pko", "--org", ORG, "--repo", "https://user:hunter2@github.com/acme/x.git", "--branch", "main"],
     "--repo: the URL carries credentials: give the repository's URL alone (the engine's git credentials are set "
     "on it, never in a URL)"),
    (["--engine", "pko", *BASE], "--branch: give --branch or --commit (one of them)"),
    (["--engine", "pko", *BASE, "--branch", "main", "--commit", COMMIT],
     "--branch: give --branch or --commit (one of them)"),
    (["--engine", "pko", *BASE, "--commit", "HEAD"],
     "--commit: 'HEAD' is not a full commit hash (40 or 64 hex digits, lower case)"),
    (["--engine", "pko", *BASE, "--branch", "main", "--repo-dir", "../elsewhere"],
     "--repo-dir: '../elsewhere' is not a folder inside the repository"),
    (["--engine", "pko", *BASE, "--branch", "main", "--hub-within", "a day"],
     "--hub-within: 'a day' is not a duration like 1h, 30m or 1h30m"),
    (["--engine", "pko", "--org", "acme; rm -rf /", "--repo", REPO_URL, "--branch", "main"],
     "--org: 'acme; rm -rf /' is not a Pulumi organization name (letters, digits, '-', '_', '.')"),
    (["--engine", "pko", *BASE, "--branch", "main", "--azure-secret", "Azure_Creds"],
     "--azure-secret: 'Azure_Creds' is not a Kubernetes name (a-z, 0-9 and '-', at most 63)"),
    (["--engine", "pko", *BASE, "--branch", "main", "--github-repo", "acme/x"],
     "--github-repo: a Pulumi Deployments setting: not used with --engine pko"),
    (["--engine", "deployments", *BASE, "--branch", "main", "--azure-client-id", OIDC[1]],
     "--azure-client-id: Azure OIDC needs all three of --azure-client-id, --azure-tenant-id and "
     "--azure-subscription-id"),
    (["--engine", "deployments", *BASE, "--branch", "main", "--hub-within", "1h"],
     "--hub-within: an operator setting: not used with --engine deployments"),
    (["--engine", "pko", *BASE, "--branch", "main", "--azure-tenant-id", OIDC[3]],
     "--azure-tenant-id: a Pulumi Deployments setting: not used with --engine pko"),
])
def test_bad_options_are_one_line_and_exit_2(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], expected: str) -> None:
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, *args, "--output", str(out_dir))
    assert code == 2
    assert err.splitlines() == [expected]
    assert out == ""
    assert not out_dir.exists()


def test_a_bad_stack_file_stops_it_before_anything_is_written(
        capsys: pytest.CaptureFixture[str], repo_copy: Path) -> None:
    for name in ("Pulumi.yaml", "Pulumi.shared.yaml", *(p.name for p in REPO.glob("Pulumi.*.yaml"))):
        shutil.copy(REPO / name, repo_copy / name)
    stack_file = repo_copy / "Pulumi.havering.yaml"
    stack_file.write_text(stack_file.read_text(encoding="utf-8") + "  shared-estate:adminGroupObjectID: x\n",
                          encoding="utf-8")
    line = stack_file.read_text(encoding="utf-8").count("\n")
    capsys.readouterr()
    out_dir = repo_copy / "out"
    code = cli.run(["deploy-manifests", "--engine", "pko", *BASE, "--branch", "main", "--root", str(repo_copy),
                    "--output", str(out_dir)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    (only,) = err.splitlines()
    assert only.startswith(f"Pulumi.havering.yaml:{line}: shared-estate:adminGroupObjectID: not a key the stacks "
                           "read")
    assert not out_dir.exists()
    # a council without its stack file: named, exit 2
    stack_file.unlink()
    code = cli.run(["deploy-manifests", "--engine", "deployments", *BASE, "--branch", "main",
                    "--root", str(repo_copy)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.splitlines() == ["Pulumi.havering.yaml: missing: the engine reads the stack's committed config from "
                                "it (estate onboard writes a council's)"]


def readme_commands() -> list[list[str]]:
    """The `estate deploy-manifests` commands in the README's section, continuation lines joined."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("### Running the stacks at scale")
    section = text[start:text.index("\n## ", start)]
    commands, current = [], ""
    for line in section.splitlines():
        if current or line.startswith("estate deploy-manifests"):
            current += line.split("#", 1)[0].strip().removesuffix("\\") + " "
            if not line.rstrip().endswith("\\"):
                # the README's placeholders (<app id>, ...) stand for GUIDs
                command = re.sub(r"<[^>]+>", OIDC[1], current.split("&&", 1)[0])
                commands.append(shlex.split(command))
                current = ""
    return commands


def test_the_readme_commands_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    commands = readme_commands()
    assert len(commands) == 3
    for i, argv in enumerate(commands):
        assert argv[:2] == ["estate", "deploy-manifests"]
        args = argv[2:]
        out = tmp_path / str(i)
        args[args.index("--output") + 1] = str(out)
        code, _, err = run(capsys, *args)
        assert code == 0, (argv, err)
        if "deployments" in args:
            index = json.loads((out / "index.json").read_text(encoding="utf-8"))
            for entry in (*index["settings"], *index["webhooks"]):
                assert (out / entry["body"]).is_file()


def test_a_hub_without_spokes_is_said(capsys: pytest.CaptureFixture[str], repo_copy: Path) -> None:
    """Both engines read config afresh each run: a hub with no spoke unpeers every council, so it is said (right
    for the first run); --spoke or spokes committed in Pulumi.shared.yaml silence it."""
    code, _, err = run(capsys, "--engine", "pko", *BASE, "--branch", "main")
    assert code == 0 and err.splitlines() == [
        "note: the hub peers with no council (no --spoke, none in Pulumi.shared.yaml): right for its first run; once "
        "councils are up, give each with --spoke"]
    code, _, err = run(capsys, "--engine", "deployments", *BASE, "--branch", "main", "--spoke", "newham")
    assert code == 0 and err == ""
    code, _, err = run(capsys, "--engine", "pko", *BASE, "--branch", "main", "--stack", "newham")
    assert code == 0 and err == ""
    for name in ("Pulumi.yaml", *(p.name for p in REPO.glob("Pulumi.*.yaml"))):
        shutil.copy(REPO / name, repo_copy / name)
    hub_file = repo_copy / "Pulumi.shared.yaml"
    hub_file.write_text(hub_file.read_text(encoding="utf-8") + "  shared-estate:spokes: [havering]\n",
                        encoding="utf-8")
    capsys.readouterr()
    code = cli.run(["deploy-manifests", "--engine", "pko", *BASE, "--branch", "main", "--root", str(repo_copy)])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    hub = stacks_of([d for d in yaml.safe_load_all(out) if d])[0]
    assert "config" not in hub["spec"]  # the committed spokes are the engine's to read from the checkout
