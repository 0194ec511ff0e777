"""The Pulumi stack files (`Pulumi.<stack>.yaml`): which config keys the stacks read, and a reader that refuses
what the stacks would otherwise ignore.

A stack file is `config:` (key -> value) plus the settings Pulumi itself keeps there (secrets provider and
encryption salt). A key the stacks do not read is an error, not a silent no-op (a typo such as `adminGroupObjectID`
would leave the real key unset); a key the stacks read as a secret given in clear text is refused with the command
that stores it encrypted; a value Pulumi itself keeps encrypted (`{secure: ...}`) is left alone. Every problem is
one line, `FILE:LINE: key: message`, exit 2. Pulumi's own format: learn.microsoft.com is not the reference here,
www.pulumi.com/docs/iac/concepts/config/ and /docs/iac/concepts/projects/stack-settings-file/ are.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from estate.errors import EstateError, Problem
from estate.yamlsrc import Sourced, display, parse

PROJECT = "shared-estate"
HUB = "shared"
PROVIDER = "azure-native"

# The project's own keys (`pulumi config set KEY VALUE` puts them under `shared-estate:`), by the stacks that read
# them: stacks/props.py and stacks/program.py read exactly these.
CFG_COUNCIL = "council"
CFG_HUB_STACK = "hubStack"
CFG_ADMIN_GROUP = "adminGroupObjectId"
CFG_ADMIN_GROUP_NAME = "adminGroupName"
CFG_USERS_GROUP = "desktopUsersGroupObjectId"
CFG_AVD_SERVICE_PRINCIPAL = "avdServicePrincipalObjectId"
CFG_SSH_KEY = "sshPublicKey"
CFG_REGISTRATION_EXPIRY = "registrationTokenExpiry"
CFG_KEY_VAULT_GENERATION = "keyVaultGeneration"
CFG_SPOKES = "spokes"  # hub: the councils whose spoke VNet exists, so the hub may peer with it and link its DNS
CFG_LOCATION = f"{PROVIDER}:location"

BOTH = frozenset({CFG_ADMIN_GROUP, CFG_SSH_KEY, CFG_COUNCIL})
HUB_KEYS = BOTH | {CFG_ADMIN_GROUP_NAME, CFG_SPOKES}
COUNCIL_KEYS = BOTH | {CFG_HUB_STACK, CFG_USERS_GROUP, CFG_AVD_SERVICE_PRINCIPAL, CFG_REGISTRATION_EXPIRY,
                       CFG_KEY_VAULT_GENERATION}
LIST_KEYS = frozenset({CFG_SPOKES})  # structured values (YAML lists of strings)
SECRET_KEYS: frozenset[str] = frozenset()  # the project reads no secret from config (session host passwords are
# generated per host by the stack itself: stacks/desktop.py)

# Keys the stacks no longer read, with what replaced them: an old stack file fails loudly instead of carrying a
# password nobody uses.
RETIRED = {
    "sessionHostAdminPassword": "no longer read: each session host gets its own generated password "
                                "(stacks/desktop.py); remove it (pulumi config rm sessionHostAdminPassword)",
}

# The azure-native provider's config keys (pulumi_azure_native/config/vars.py of 3.29) and the secret ones among
# them: a provider key is the operator's business (credentials, cloud), so it is allowed, but not in clear text
# when it is a credential.
PROVIDER_KEYS = frozenset({
    "auxiliaryTenantIds", "clientCertificatePassword", "clientCertificatePath", "clientId", "clientSecret",
    "disableInstanceDiscovery", "disablePulumiPartnerId", "environment", "location", "metadataHost", "msiEndpoint",
    "oidcRequestToken", "oidcRequestUrl", "oidcToken", "oidcTokenFilePath", "partnerId", "subscriptionId",
    "tenantId", "useDefaultAzureCredential", "useMsi", "useOidc",
})
PROVIDER_SECRETS = frozenset({"clientCertificatePassword", "clientSecret", "oidcRequestToken", "oidcToken"})

# What Pulumi keeps beside `config:` in a stack file (stack-settings-file: secretsprovider, encryptedkey,
# encryptionsalt; environment imports ESC environments).
SETTINGS = frozenset({"config", "secretsprovider", "encryptedkey", "encryptionsalt", "environment"})

# A stack file holds a region and a council key: a few kilobytes. Anything far larger is not one.
MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class StackFile:
    """A stack file's plain values (full key -> value as Pulumi hands it to the program: lists as JSON) and the
    keys Pulumi keeps encrypted."""

    values: dict[str, str]
    secure: frozenset[str]


def path(root: Path, stack: str) -> Path:
    return root / f"Pulumi.{stack}.yaml"


def full_key(key: str, project: str = PROJECT) -> str:
    return key if ":" in key else f"{project}:{key}"


def _secure(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"secure"} and isinstance(value["secure"], str)


def shown(file: Path) -> str:
    """The file as the user names it: its folder relative to the working directory, its own name unresolved (a
    link is named, not its target)."""
    return str(Path(display(file.parent)) / file.name)


def _read(file: Path) -> Sourced | None:
    shown_as = shown(file)
    try:
        st = file.lstat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise EstateError.one(shown_as, 0, "", f"cannot read: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        try:
            st = file.stat()
        except OSError as exc:
            raise EstateError.one(shown_as, 0, "", f"a link that leads nowhere readable ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise EstateError.one(shown_as, 0, "", "a directory where the stack's config file should be")
    if not stat.S_ISREG(st.st_mode):
        raise EstateError.one(shown_as, 0, "", "not a regular file (a FIFO, socket or device): a stack's config "
                                            "file is a YAML file")
    if st.st_size > MAX_BYTES:
        raise EstateError.one(shown_as, 0, "", f"{st.st_size} bytes: larger than a stack file can be "
                                            f"({MAX_BYTES} bytes at most)")
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise EstateError.one(shown_as, 0, "", f"cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise EstateError.one(shown_as, line, "", f"not UTF-8 (byte 0x{raw[exc.start]:02x}): Pulumi reads "
                                               "stack files as UTF-8") from None
    if not text.strip():
        return Sourced(shown_as, {}, {(): 1})
    return parse(text, shown_as)


def key_problem(full: str, stack: str, project: str = PROJECT) -> str | None:
    """Why stack `stack` cannot take config key `full` (`namespace:name`), or None when it reads it."""
    namespace, _, name = full.partition(":")
    hub = stack == HUB
    own = HUB_KEYS if hub else COUNCIL_KEYS
    if namespace == project:
        if name in RETIRED:
            return RETIRED[name]
        if name not in HUB_KEYS | COUNCIL_KEYS:
            return f"not a key the stacks read (known: {', '.join(sorted(own))})"
        if name not in own:
            return (f"read only by {'council' if hub else 'the hub'} stacks, not by "
                    f"{'the hub' if hub else 'a council'}'s")
        return None
    if namespace == PROVIDER:
        return None if name in PROVIDER_KEYS else f"not an {PROVIDER} provider setting"
    return f"not a key the stacks read (namespaces: {project}, {PROVIDER})"


def is_secret(full: str, project: str = PROJECT) -> bool:
    namespace, _, name = full.partition(":")
    return name in SECRET_KEYS if namespace == project else namespace == PROVIDER and name in PROVIDER_SECRETS


def clear_text_secret(name: str) -> str:
    return f"a secret in clear text: store it encrypted (pulumi config set --secret {name}) and remove this line"


def load(file: Path, stack: str, *, project: str = PROJECT, councils: Iterable[str] | None = None) -> StackFile:
    """Read and check one stack file (missing: no values). `councils`, when given, are the known council keys
    (for `spokes`). Raises EstateError listing every problem, one line each."""
    src = _read(file)
    if src is None:
        return StackFile({}, frozenset())
    problems: list[Problem] = []

    def problem(loc: tuple[str | int, ...], field: str, message: str) -> None:
        problems.append(Problem(src.file, src.line(loc), field, message))

    data = src.data
    if not isinstance(data, Mapping):
        raise EstateError.one(src.file, 1, "", "expected a mapping with `config:` (a Pulumi stack file)")
    for top in data:
        if top not in SETTINGS:
            problem((top,), str(top), f"not a stack file setting (Pulumi reads {', '.join(sorted(SETTINGS))})")
    config = data.get("config") or {}
    if not isinstance(config, Mapping):
        raise EstateError.one(src.file, src.line(("config",)), "config", "expected a mapping of config keys")
    values: dict[str, str] = {}
    secure: set[str] = set()
    for key, value in config.items():
        loc = ("config", key)
        if not isinstance(key, str):
            problem(loc, f"config.{key}", f"{key!r} is not a config key (a key is `name` or `namespace:name`)")
            continue
        full = full_key(key, project)
        namespace, _, name = full.partition(":")
        wrong = key_problem(full, stack, project)
        if wrong:
            problem(loc, full, wrong)
            continue
        secret = is_secret(full, project)
        if _secure(value):
            secure.add(full)
            continue
        if secret:
            problem(loc, full, clear_text_secret(name))
            continue
        if namespace == project and name in LIST_KEYS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                problem(loc, full, "expected a list of council keys")
                continue
            known = set(councils) if councils is not None else None
            for i, item in enumerate(value):
                if known is not None and item not in known:
                    problem((*loc, i), f"{full}[{i}]", f"{item!r} is not a council in inventories/")
            values[full] = json.dumps(value)
            continue
        if isinstance(value, bool):
            values[full] = str(value).lower()
        elif isinstance(value, str | int | float):
            values[full] = str(value)
        else:
            problem(loc, full, f"expected a single value, not {type(value).__name__}")
    if problems:
        raise EstateError(problems)
    return StackFile(values, frozenset(secure))


def stacks_in(root: Path) -> list[Path]:
    """Every `Pulumi.<stack>.yaml` in the repo root (not `Pulumi.yaml`, the project file)."""
    return sorted(p for p in root.glob("Pulumi.*.yaml") if p.name != "Pulumi.yaml")


def validate_all(root: Path, councils: Iterable[str], *, project: str = PROJECT) -> int:
    """Check every stack file in `root`: each names the hub or a council in inventories/ and passes `load`.
    Returns how many were checked; raises EstateError with every problem."""
    known = sorted(councils)
    problems: list[Problem] = []
    files = stacks_in(root)
    for file in files:
        stack = file.name.removeprefix("Pulumi.").removesuffix(".yaml")
        if stack != HUB and stack not in known:
            problems.append(Problem(shown(file), 0, "", f"stack {stack!r} is neither the hub ({HUB}) nor a "
                                                          "council in inventories/"))
            continue
        try:
            load(file, stack, project=project, councils=known)
        except EstateError as exc:
            problems.extend(exc.problems)
    if problems:
        raise EstateError(problems)
    return len(files)
