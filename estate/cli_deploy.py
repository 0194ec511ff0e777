"""`estate deploy-manifests`: the stacks described to the Pulumi Kubernetes Operator or Pulumi Deployments
(estate.deploy).

Heavy modules are imported inside the command, for `estate --help`'s start-up time only; each such import points
down the layers (the import-linter contract in pyproject.toml checks them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from estate.cli_common import RootOpt, guarded, load


def register(app: typer.Typer) -> None:
    app.command("deploy-manifests")(deploy_manifests)


@guarded
def deploy_manifests(
    engine: Annotated[str, typer.Option("--engine", help="pko (Pulumi Kubernetes Operator Stack resources) or "
                                                         "deployments (Pulumi Deployments settings).")],
    org: Annotated[str, typer.Option("--org", help="The Pulumi Cloud organization that holds the stacks.")],
    repo: Annotated[str, typer.Option("--repo", help="The git URL the engine checks the project out from "
                                                     "(no credentials in it).")],
    branch: Annotated[str | None, typer.Option("--branch", help="Track this branch (or give --commit).")] = None,
    commit: Annotated[str | None, typer.Option("--commit", help="Pin this commit (full hash).")] = None,
    repo_dir: Annotated[str | None, typer.Option("--repo-dir", help="Folder of Pulumi.yaml in the repo "
                                                                    "(default: its root).")] = None,
    stack: Annotated[list[str] | None, typer.Option(
        "--stack", help="Only this stack (repeatable; 'shared' is the hub; default: the hub and every council).")
    ] = None,
    spoke: Annotated[list[str] | None, typer.Option(
        "--spoke", help="A council whose stack is up, for the hub to peer with (repeatable; its `spokes`).")] = None,
    namespace: Annotated[str, typer.Option("--namespace", help="pko: the Kubernetes namespace.")] = "shared-estate",
    service_account: Annotated[str, typer.Option(
        "--service-account", help="pko: the workspace pods' service account.")] = "shared-estate",
    azure_secret: Annotated[str, typer.Option(
        "--azure-secret", help="pko: the Secret holding ARM_CLIENT_ID, ARM_CLIENT_SECRET, ARM_TENANT_ID and "
                               "ARM_SUBSCRIPTION_ID (named, never read).")] = "estate-azure",
    token_secret: Annotated[str, typer.Option(
        "--pulumi-token-secret", help="pko: the Secret holding the Pulumi access token under key accessToken.")
    ] = "estate-pulumi-token",
    hub_within: Annotated[str | None, typer.Option(
        "--hub-within", help="pko: a council waits until the hub succeeded within this long (e.g. 24h).")] = None,
    image: Annotated[str | None, typer.Option("--image", help="pko: the workspace pods' image.")] = None,
    azure_client_id: Annotated[str | None, typer.Option(
        "--azure-client-id", help="deployments: Azure OIDC, the workload identity's client id.")] = None,
    azure_tenant_id: Annotated[str | None, typer.Option("--azure-tenant-id", help="deployments: Azure OIDC.")] = None,
    azure_subscription_id: Annotated[str | None, typer.Option(
        "--azure-subscription-id", help="deployments: Azure OIDC.")] = None,
    github_repo: Annotated[str | None, typer.Option(
        "--github-repo", help="deployments: owner/name, for push-to-deploy of the hub and PR previews.")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write one file per document into this folder, not stdout.", file_okay=False)] = None,
    root: RootOpt = None,
) -> None:
    """Describe the stacks to the Pulumi Kubernetes Operator (a Stack resource each, the hub first, every council
    waiting for it) or to Pulumi Deployments (each stack's settings, the hub first)."""
    from estate.atomic import write_atomic
    from estate.deploy import Request, Source, build
    from estate.yamlsrc import display

    estate = load(root)
    req = Request(
        engine=engine, org=org, source=Source(repo=repo, branch=branch, commit=commit, repo_dir=repo_dir),
        stacks=tuple(stack or ()), spokes=tuple(spoke or ()), namespace=namespace, service_account=service_account,
        azure_secret=azure_secret, token_secret=token_secret, hub_within=hub_within, image=image,
        azure_client_id=azure_client_id, azure_tenant_id=azure_tenant_id,
        azure_subscription_id=azure_subscription_id, github_repo=github_repo)
    plan = build(estate, req)
    for note in plan.notes:
        typer.echo(f"note: {note}", err=True)
    if output is None:
        typer.echo(plan.joined(), nl=False)
        return
    for name, text in plan.files.items():
        write_atomic(output / name, text, parents=True)
    typer.echo(f"wrote {len(plan.files)} files to {display(output)} (order: {', '.join(plan.order)})")
