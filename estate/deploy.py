"""The stacks described to the engines that run them at scale: one Pulumi Kubernetes Operator `Stack` resource per
stack (`estate deploy-manifests --engine pko`), or Pulumi Deployments settings per stack (`--engine deployments`).

Both run one stack per council in parallel; what they must know is the order: the hub (`shared`) first, then every
council, whose spoke reads the hub's outputs through a StackReference (stacks/program.py) and peers with its VNet.

- The operator: each council's `Stack` lists the hub's in `spec.prerequisites`, so the operator holds it until the
  hub's last update succeeded (optionally within a duration). Fields as the pinned CRD has them:
  tests/data/pko/pulumi.com_stacks.yaml (pulumi-kubernetes-operator v2.9.0; tests validate every generated Stack).
- Deployments: each stack's settings body; the hub alone deploys on a push (GitHub), and each council is deployed
  by a deployment webhook on the hub's `update_succeeded` (the order), as Pulumi's "Triggering dependent stack
  updates" guide has it (www.pulumi.com/docs/deployments/guides/dependent-stack-updates/).

Config: what the repo commits (`Pulumi.<stack>.yaml`: region, council key) is read by the engine from its checkout,
so it is not repeated here; it is checked first (estate.stackfile) so a bad file fails here, not in the cluster.
The per-deployment values the stack files' headers list (Entra object ids, the SSH public key, the group's display
name) come from outside the repo: a ConfigMap per stack (`configRef`) for the operator, deployment environment
variables for Deployments. The hub's `spokes` (the councils it peers with) are given with `--spoke`, or committed in
Pulumi.shared.yaml: either engine reads config afresh on every run (the checkout plus these documents), so a council
left out is unpeered by the hub's next run; a hub with no spoke at all is said on stderr. No secret value
is ever written: Azure and Pulumi credentials are named (a Kubernetes Secret and its keys; Azure OIDC's ids).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from estate import stackfile
from estate.errors import EstateError, Problem
from estate.loader import Estate
from estate.yamlsrc import display
from estate.yamlsrc import load as load_yaml

HUB = stackfile.HUB
ENGINES = ("pko", "deployments")

# The CRD's own limit on a Stack's name (x-kubernetes-validations: size(self.metadata.name) <= 42, pinned CRD).
MAX_STACK_NAME = 42
# A Kubernetes object name (RFC 1123 DNS label, as ServiceAccounts, ConfigMaps and Secrets need:
# kubernetes.io/docs/concepts/overview/working-with-objects/names/) and a namespace.
_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
# A Pulumi organization or project name: letters, digits, '-', '_', '.' (www.pulumi.com/docs/iac/concepts/projects/).
_PULUMI_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
# A Go duration (time.ParseDuration), which succeededWithinDuration takes: "1h", "30m", "1h30m".
_GO_DURATION = re.compile(r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_GIT_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_GITHUB_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}")
_IMAGE = re.compile(r"[a-z0-9][a-z0-9._/:@-]{0,254}")

# Azure credentials of a service principal, as the azure-native provider reads them from the environment
# (www.pulumi.com/registry/packages/azure-native/installation-configuration/: ARM_CLIENT_ID, ARM_CLIENT_SECRET,
# ARM_TENANT_ID, ARM_SUBSCRIPTION_ID). The operator loads each from the named Secret's key of the same name.
AZURE_ENV = ("ARM_CLIENT_ID", "ARM_CLIENT_SECRET", "ARM_TENANT_ID", "ARM_SUBSCRIPTION_ID")
# The Pulumi Cloud token, as the operator's examples load it (envRefs PULUMI_ACCESS_TOKEN from a Secret's
# `accessToken`: pulumi-kubernetes-operator examples/git-source/stack.yaml at v2.9.0).
TOKEN_ENV = "PULUMI_ACCESS_TOKEN"
TOKEN_KEY = "accessToken"


def per_deployment_keys(estate: Estate, stack: str) -> list[str]:
    """The config keys a stack needs that the repo does not commit (the stack files' headers list them; stacks/props.py
    refuses a stack without them). avdServicePrincipalObjectId only when the framework turns Start VM on Connect on."""
    if stack == HUB:
        return [stackfile.CFG_ADMIN_GROUP, stackfile.CFG_ADMIN_GROUP_NAME, stackfile.CFG_SSH_KEY]
    keys = [stackfile.CFG_ADMIN_GROUP, stackfile.CFG_USERS_GROUP, stackfile.CFG_SSH_KEY]
    if estate.framework.desktop.avd.start_vm_on_connect:
        keys.insert(2, stackfile.CFG_AVD_SERVICE_PRINCIPAL)
    return keys


def env_name(key: str) -> str:
    """A config key's deployment environment variable: adminGroupObjectId -> ESTATE_ADMIN_GROUP_OBJECT_ID."""
    return "ESTATE_" + re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).upper()


@dataclass(frozen=True)
class Source:
    """Where the engine checks the project out: the repo, a branch or a commit, and the folder of Pulumi.yaml."""

    repo: str
    branch: str | None = None
    commit: str | None = None
    repo_dir: str | None = None

    def ref(self) -> dict[str, str]:
        """The checkout's ref and folder, under the names both engines use: `branch` or `commit`, and `repoDir`."""
        out = {"branch": self.branch} if self.branch is not None else {"commit": self.commit or ""}
        if self.repo_dir is not None:
            out["repoDir"] = self.repo_dir
        return out


@dataclass(frozen=True)
class Request:
    engine: str
    org: str
    source: Source
    stacks: Sequence[str] = ()  # empty: the hub and every council
    spokes: Sequence[str] = ()
    # the operator
    namespace: str = "shared-estate"
    service_account: str = "shared-estate"
    azure_secret: str = "estate-azure"
    token_secret: str = "estate-pulumi-token"
    hub_within: str | None = None
    image: str | None = None
    # Deployments
    azure_client_id: str | None = None
    azure_tenant_id: str | None = None
    azure_subscription_id: str | None = None
    github_repo: str | None = None


@dataclass
class Plan:
    """What a run produced: the stacks in order (hub first) and the documents, one file's worth each."""

    engine: str
    project: str
    order: list[str]
    files: dict[str, str] = field(default_factory=dict)  # file name -> text, in order
    notes: list[str] = field(default_factory=list)  # said on stderr: right, but worth a look

    def joined(self) -> str:
        """Everything on one stream: the operator's documents as one multi-document YAML; Deployments' as one JSON
        object (the index, each stack's settings and the webhooks)."""
        if self.engine == "pko":
            return "".join(self.files.values())
        merged = {name: json.loads(text) for name, text in self.files.items()}
        return json.dumps(merged, indent=2) + "\n"


def _opt(problems: list[Problem], option: str, message: str) -> None:
    problems.append(Problem(option, 0, "", message))


def project_name(root: Path) -> str:
    """The project's name from Pulumi.yaml (`name:`), as Pulumi reads it."""
    file = root / "Pulumi.yaml"
    if not file.is_file():
        raise EstateError.one(display(file), 0, "", "no Pulumi.yaml: the Pulumi project file is missing")
    src = load_yaml(file)
    name = src.data.get("name") if isinstance(src.data, Mapping) else None
    if not isinstance(name, str) or not _PULUMI_NAME.fullmatch(name):
        raise EstateError.one(src.file, src.line(("name",)) if isinstance(src.data, Mapping) else 1, "name",
                              "expected the project's name (letters, digits, '-', '_', '.')")
    return name


def _check(estate: Estate, req: Request) -> list[str]:
    """Every option checked, all problems at once (one line each, exit 2); returns the stacks in order."""
    problems: list[Problem] = []
    councils = sorted(estate.councils)
    if req.engine not in ENGINES:
        _opt(problems, "--engine", f"{req.engine!r} is not an engine (one of: {', '.join(ENGINES)})")
    if not _PULUMI_NAME.fullmatch(req.org):
        _opt(problems, "--org", f"{req.org!r} is not a Pulumi organization name (letters, digits, '-', '_', '.')")
    _check_source(problems, req.source)
    for opt, value in (("--namespace", req.namespace), ("--service-account", req.service_account),
                       ("--azure-secret", req.azure_secret), ("--pulumi-token-secret", req.token_secret)):
        if not _DNS_LABEL.fullmatch(value):
            _opt(problems, opt, f"{value!r} is not a Kubernetes name (a-z, 0-9 and '-', at most 63)")
    if req.hub_within is not None and not _GO_DURATION.fullmatch(req.hub_within):
        _opt(problems, "--hub-within", f"{req.hub_within!r} is not a duration like 1h, 30m or 1h30m")
    if req.image is not None and not _IMAGE.fullmatch(req.image):
        _opt(problems, "--image", f"{req.image!r} is not a container image reference")
    oidc = {"--azure-client-id": req.azure_client_id, "--azure-tenant-id": req.azure_tenant_id,
            "--azure-subscription-id": req.azure_subscription_id}
    for opt, guid in oidc.items():
        if guid is not None and not _GUID.fullmatch(guid):
            _opt(problems, opt, f"{guid!r} is not a GUID")
    if (req.engine == "deployments" and any(v is not None for v in oidc.values())
            and not all(v is not None for v in oidc.values())):
        _opt(problems, "--azure-client-id", "Azure OIDC needs all three of --azure-client-id, --azure-tenant-id "
                                            "and --azure-subscription-id")
    if req.github_repo is not None and not _GITHUB_REPO.fullmatch(req.github_repo):
        _opt(problems, "--github-repo", f"{req.github_repo!r} is not a GitHub repository (owner/name)")
    only_deployments = {**oidc, "--github-repo": req.github_repo}
    only_pko = {"--hub-within": req.hub_within, "--image": req.image}
    other, unused = ((only_deployments, "a Pulumi Deployments setting: not used with --engine pko")
                     if req.engine == "pko" else
                     (only_pko, "an operator setting: not used with --engine deployments"))
    if req.engine in ENGINES:
        for opt, given in other.items():
            if given is not None:
                _opt(problems, opt, unused)
    known = {HUB, *councils}
    for stack in req.stacks:
        if stack not in known:
            _opt(problems, "--stack", f"{stack!r} is neither the hub ({HUB}) nor a council in inventories/")
    for spoke in req.spokes:
        if spoke not in councils:
            _opt(problems, "--spoke", f"{spoke!r} is not a council in inventories/")
    if len(set(req.spokes)) != len(req.spokes):
        _opt(problems, "--spoke", "a council given twice")
    if problems:
        raise EstateError(problems)
    chosen = set(req.stacks) if req.stacks else known
    order = [s for s in (HUB, *councils) if s in chosen]
    for stack in order:
        name = stack_resource_name(stack)
        if len(name) > MAX_STACK_NAME or not _DNS_LABEL.fullmatch(name):
            _opt(problems, "--stack", f"{stack!r}: its Stack resource name {name!r} is longer than the operator "
                                      f"takes ({MAX_STACK_NAME} characters)")
        if not stackfile.path(estate.root, stack).is_file():
            problems.append(Problem(stackfile.shown(stackfile.path(estate.root, stack)), 0, "",
                                    "missing: the engine reads the stack's committed config from it "
                                    "(estate onboard writes a council's)"))
    if problems:
        raise EstateError(problems)
    stackfile.validate_all(estate.root, councils, project=project_name(estate.root))
    return order


def _check_source(problems: list[Problem], source: Source) -> None:
    url = source.repo
    parts = urlsplit(url)
    if parts.scheme in ("https", "http", "ssh"):
        if not parts.netloc or not parts.path.strip("/"):
            _opt(problems, "--repo", f"{url!r} is not a git repository URL")
        elif "@" in parts.netloc and parts.scheme != "ssh":
            _opt(problems, "--repo", "the URL carries credentials: give the repository's URL alone (the engine's "
                                     "git credentials are set on it, never in a URL)")
    elif not re.fullmatch(r"git@[A-Za-z0-9.-]+:[A-Za-z0-9._/-]+", url):
        _opt(problems, "--repo", f"{url!r} is not a git repository URL (https://..., ssh://... or git@host:path)")
    if any(ch.isspace() for ch in url):
        _opt(problems, "--repo", "the URL holds a space")
    if (source.branch is None) == (source.commit is None):
        _opt(problems, "--branch", "give --branch or --commit (one of them)")
    if source.branch is not None and (not _GIT_REF.fullmatch(source.branch) or ".." in source.branch):
        _opt(problems, "--branch", f"{source.branch!r} is not a branch name")
    if source.commit is not None and not _COMMIT.fullmatch(source.commit):
        _opt(problems, "--commit", f"{source.commit!r} is not a full commit hash (40 or 64 hex digits, lower case)")
    if source.repo_dir is not None:
        parts_dir = source.repo_dir.split("/")
        if (source.repo_dir.startswith("/") or ".." in parts_dir or not _GIT_REF.fullmatch(source.repo_dir)):
            _opt(problems, "--repo-dir", f"{source.repo_dir!r} is not a folder inside the repository")


def stack_resource_name(stack: str) -> str:
    """The operator's Stack resource for a Pulumi stack (also its ConfigMap's stem)."""
    return f"estate-{stack}"


def config_map_name(stack: str) -> str:
    return f"{stack_resource_name(stack)}-config"


def build(estate: Estate, req: Request) -> Plan:
    """Check the request and the stack files, then build the documents (nothing is written here)."""
    order = _check(estate, req)
    project = project_name(estate.root)
    plan = Plan(req.engine, project, order)
    if HUB in order and not req.spokes:
        committed = stackfile.load(stackfile.path(estate.root, HUB), HUB, project=project, councils=estate.councils)
        if not committed.values.get(stackfile.full_key(stackfile.CFG_SPOKES, project)):
            plan.notes.append("the hub peers with no council (no --spoke, none in Pulumi.shared.yaml): right for its "
                              "first run; once councils are up, give each with --spoke")
    if req.engine == "pko":
        _pko(estate, req, plan)
    else:
        _deployments(estate, req, plan)
    return plan


# --- the Pulumi Kubernetes Operator -------------------------------------------------------------------------------

def _yaml(docs: Sequence[Mapping[str, Any]]) -> str:
    return "".join("---\n" + yaml.safe_dump(dict(d), sort_keys=False, default_flow_style=False, width=1000)
                   for d in docs)


def _secret_ref(name: str, key: str) -> dict[str, Any]:
    # envRefs: a ResourceRef of type Secret (pinned CRD, spec.envRefs.additionalProperties)
    return {"type": "Secret", "secret": {"name": name, "key": key}}


def stack_document(estate: Estate, req: Request, project: str, stack: str) -> dict[str, Any]:
    """One `pulumi.com/v1` Stack (fields from the pinned CRD's spec)."""
    spec: dict[str, Any] = {
        # "the fully qualified name of the stack to deploy": <org>/<project>/<stack> in Pulumi Cloud
        "stack": f"{req.org}/{project}/{stack}",
        "projectRepo": req.source.repo,
        **req.source.ref(),
    }
    spec["shallow"] = True
    # v2 runs each stack in a workspace pod under this service account (docs/migration.md, "Service Account")
    spec["serviceAccountName"] = req.service_account
    spec["envRefs"] = {TOKEN_ENV: _secret_ref(req.token_secret, TOKEN_KEY),
                       **{env: _secret_ref(req.azure_secret, env) for env in AZURE_ENV}}
    # config: omitted keys come from the checked-in Pulumi.<stack>.yaml ("If this is omitted, configuration is
    # assumed to be checked in and taken from the source repository"); the per-deployment ones from a ConfigMap
    spec["configRef"] = {key: {"name": config_map_name(stack), "key": key}
                         for key in per_deployment_keys(estate, stack)}
    if stack == HUB:
        if req.spokes:  # structured values (CRD spec.config); without --spoke, the committed file's (none today)
            spec["config"] = {stackfile.CFG_SPOKES: list(req.spokes)}
    else:
        requirement: dict[str, Any] = {"name": stack_resource_name(HUB)}
        if req.hub_within is not None:
            requirement["requirement"] = {"succeededWithinDuration": req.hub_within}
        spec["prerequisites"] = [requirement]
    spec["refresh"] = True
    spec["destroyOnFinalize"] = False  # deleting the resource never destroys a council's estate
    spec["workspaceReclaimPolicy"] = "Delete"
    if req.image is not None:
        spec["workspaceTemplate"] = {"spec": {"image": req.image}}
    return {
        "apiVersion": "pulumi.com/v1",
        "kind": "Stack",
        "metadata": {"name": stack_resource_name(stack), "namespace": req.namespace,
                     "labels": {"app.kubernetes.io/part-of": project, "shared-estate/stack": stack}},
        "spec": spec,
    }


def service_account_documents(req: Request) -> list[dict[str, Any]]:
    """The workspace pods' service account and the `system:auth-delegator` binding v2 needs at minimum
    (pulumi-kubernetes-operator docs/migration.md and examples/git-source/stack.yaml at v2.9.0)."""
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": req.service_account, "namespace": req.namespace}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": f"{req.namespace}:{req.service_account}:system:auth-delegator"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"},
         "subjects": [{"kind": "ServiceAccount", "name": req.service_account, "namespace": req.namespace}]},
    ]


def _pko(estate: Estate, req: Request, plan: Plan) -> None:
    plan.files["00-service-account.yaml"] = _yaml(service_account_documents(req))
    for i, stack in enumerate(plan.order, start=1):
        plan.files[f"{i:02d}-{stack}.yaml"] = _yaml([stack_document(estate, req, plan.project, stack)])


# --- Pulumi Deployments -------------------------------------------------------------------------------------------

API = "https://api.pulumi.com"


def settings_path(org: str, project: str, stack: str) -> str:
    # "Patch Settings": POST /api/stacks/{organization}/{project}/{stack}/deployments/settings, merged with what
    # the stack has (www.pulumi.com/docs/pulumi-cloud/reference/deployments/)
    return f"/api/stacks/{org}/{project}/{stack}/deployments/settings"


def hooks_path(org: str, project: str, stack: str) -> str:
    # "Create Webhook", a stack webhook: POST /api/stacks/{organization}/{project}/{stack}/hooks
    # (www.pulumi.com/docs/reference/cloud-rest-api/webhooks/); format pulumi_deployments with payloadUrl
    # "<project>/<stack>", the stack to deploy (www.pulumi.com/docs/deployments/guides/post-automation/)
    return f"/api/stacks/{org}/{project}/{stack}/hooks"


def settings_body(estate: Estate, req: Request, project: str, stack: str) -> dict[str, Any]:
    """The deployment settings of one stack (DeploymentSettings request fields: sourceContext.git,
    operationContext, gitHub; www.pulumi.com/docs/reference/cloud-rest-api/schema/)."""
    git: dict[str, Any] = {"repoUrl": req.source.repo, **req.source.ref()}
    target = f"{req.org}/{project}/{stack}"
    # the pre-run commands build the virtualenv Pulumi.yaml names (the project with pyproject.toml's pins, what
    # requirements.txt's `-e .` would install) and the default install is skipped
    commands = ["python3 -m venv .venv", ".venv/bin/pip install --quiet ."]
    for key in per_deployment_keys(estate, stack):
        # the value from the stack's deployment environment; unset, the run stops here and says which
        var = env_name(key)
        commands.append(f'pulumi config set --stack {target} {key} "${{{var}:?set {var} in the stack\'s '
                        f'deployment settings}}"')
    if stack == HUB and req.spokes:  # without --spoke, the committed file's spokes (none today) stay
        commands.append(f"pulumi config rm --stack {target} {stackfile.CFG_SPOKES} || true")
        commands.extend(f"pulumi config set --stack {target} --path '{stackfile.CFG_SPOKES}[{i}]' {spoke}"
                        for i, spoke in enumerate(req.spokes))
    operation: dict[str, Any] = {
        "preRunCommands": commands,
        "options": {"skipInstallDependencies": True, "skipIntermediateDeployments": True},
    }
    if req.azure_client_id is not None:
        # Azure OIDC: the workload identity's ids, no secret (OperationContextAzureOIDCConfigurationRequest)
        operation["oidc"] = {"azure": {"clientId": req.azure_client_id, "tenantId": req.azure_tenant_id,
                                       "subscriptionId": req.azure_subscription_id}}
    body: dict[str, Any] = {"sourceContext": {"git": git}, "operationContext": operation}
    if req.github_repo is not None:
        # only the hub deploys on a push; a council follows the hub's success (the webhooks), never races it
        body["gitHub"] = {"repository": req.github_repo, "deployCommits": stack == HUB,
                          "previewPullRequests": True, "pullRequestTemplate": False}
    return body


def webhook_body(req: Request, project: str, council: str) -> dict[str, Any]:
    """On the hub: deploy this council when the hub's update succeeds (a deployment webhook)."""
    return {"organizationName": req.org, "projectName": project, "stackName": HUB,
            "name": f"deploy-{council}", "displayName": f"deploy-{council}-after-{HUB}",
            "payloadUrl": f"{project}/{council}",
            "format": "pulumi_deployments", "filters": ["update_succeeded"], "active": True}


def _deployments(estate: Estate, req: Request, plan: Plan) -> None:
    project = plan.project
    index: dict[str, Any] = {
        "organization": req.org, "project": project, "api": API,
        "order": plan.order,
        "settings": [{"stack": s, "method": "POST", "path": settings_path(req.org, project, s),
                      "body": f"{s}.settings.json"} for s in plan.order],
        "webhooks": [{"stack": HUB, "method": "POST", "path": hooks_path(req.org, project, HUB),
                      "body": f"hook-{HUB}-to-{c}.json", "deploys": c} for c in plan.order if c != HUB],
        "environment": {s: [env_name(k) for k in per_deployment_keys(estate, s)] for s in plan.order},
    }
    plan.files["index.json"] = json.dumps(index, indent=2) + "\n"
    for stack in plan.order:
        plan.files[f"{stack}.settings.json"] = json.dumps(settings_body(estate, req, project, stack), indent=2) + "\n"
    for council in plan.order:
        if council != HUB:
            plan.files[f"hook-{HUB}-to-{council}.json"] = json.dumps(webhook_body(req, project, council),
                                                                     indent=2) + "\n"
