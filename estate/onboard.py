"""Bringing a council into the estate: `estate onboard`.

One call allocates the council's address block (the lowest free block of the supernet), builds its
`council.yml` (profile, the asset register and contracts imported from CSV), its `hosts.yml` (one lab
host per role of framework.yaml `onboarding.hosts`) and its Pulumi stack config, validates all of it
with the same models and cross-file checks as `estate validate`, then writes the files all or
nothing. Every refusal is an `EstateError` (one line per problem, exit 2) raised before anything is
written; a failure while writing removes whatever was written.

The CSV formats are documented in docs/asset-register.md.
"""

from __future__ import annotations

import csv
import datetime as dt
import fcntl
import io
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from estate import ipam
from estate.atomic import write_atomic
from estate.errors import EstateError, Problem
from estate.loader import (
    COUNCIL_FILE,
    HOSTS_FILE,
    INVENTORIES,
    CouncilRecord,
    Estate,
    check_estate,
    host_addresses,
    load_estate,
    validate,
)
from estate.models import (
    COUNCIL_KEY_RULE,
    Contract,
    Council,
    DesktopAsset,
    HelpdeskAsset,
    Hosts,
    NetworkAsset,
    ServerAsset,
    is_council_key,
)
from estate.yamlsrc import LIMIT_CSV, MAX_SCALAR, control_character, display, parse, read_text_bounded, shorten

WHO = "estate onboard"  # the "file" of a problem with the command's own arguments

# Short host-name suffix per lab host role (the convention of the example inventories).
ROLE_SUFFIX = {"thin_client": "tc", "app_server": "app", "dc_services": "svc", "router": "rtr",
               "helpdesk": "hd", "log_collector": "log"}
HOST_NAME_MAX = 31


def _pattern(model: type[BaseModel], name: str) -> str:
    props = model.model_json_schema()["properties"][name]
    return str(props["pattern"])


# --------------------------------------------------------------------------- CSV import


@dataclass(frozen=True)
class Column:
    """A CSV column: the model field it fills and how its text is read."""

    name: str
    field: str
    kind: str = "str"  # str | int | float | bool | date


# Per category of the asset register: the model and its columns (required unless the model has a default).
ASSET_CATEGORIES: dict[str, tuple[type[BaseModel], tuple[Column, ...]]] = {
    "desktop": (DesktopAsset, (Column("os", "os"), Column("version", "version"), Column("count", "count", "int"),
                               Column("kind", "kind"), Column("managed_by", "managed_by"))),
    "server": (ServerAsset, (Column("name", "name"), Column("role", "role"), Column("os", "os"),
                             Column("version", "version"), Column("location", "location"),
                             Column("region", "region"), Column("sku", "sku"),
                             Column("encrypted", "encrypted", "bool"), Column("backed_up", "backed_up", "bool"),
                             Column("public_ip", "public_ip", "bool"))),
    "network": (NetworkAsset, (Column("name", "name"), Column("kind", "kind"), Column("vendor", "vendor"),
                               Column("model", "model"), Column("end_of_support", "end_of_support", "date"))),
    "helpdesk": (HelpdeskAsset, (Column("name", "system"), Column("version", "version"),
                                 Column("shared_queue", "shared_queue", "bool"))),
}
ASSET_COLUMNS: tuple[str, ...] = (
    "category", "name", "kind", "role", "os", "version", "count", "managed_by", "location", "region", "sku",
    "encrypted", "backed_up", "public_ip", "vendor", "model", "end_of_support", "shared_queue")
assert set(ASSET_COLUMNS) == {"category"} | {c.name for _, cols in ASSET_CATEGORIES.values() for c in cols}
ASSET_LIST = {"desktop": "desktops", "server": "servers", "network": "network"}

CONTRACT_COLUMNS: tuple[Column, ...] = (
    Column("id", "id"), Column("supplier", "supplier"), Column("area", "area"),
    Column("description", "description"), Column("annual_cost", "annual_cost", "float"),
    Column("start", "start", "date"), Column("end", "end", "date"),
)

_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


def _convert(text: str, kind: str) -> Any:
    """A CSV cell as the model wants it; ValueError says what was expected."""
    if kind == "str":
        return text
    if kind == "int":
        if not re.fullmatch(r"[+-]?\d+", text.replace(",", "")):
            raise ValueError(f"{shorten(text)} is not a whole number")
        return int(text.replace(",", ""))
    if kind == "float":
        try:
            number = float(text.replace(",", "").removeprefix("£"))
        except ValueError:
            raise ValueError(f"{shorten(text)} is not a number") from None
        if not math.isfinite(number):  # "nan", "inf", "1e309"
            raise ValueError(f"{shorten(text)} is not a finite number")
        return int(number) if number.is_integer() else number
    if kind == "bool":
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"{shorten(text)} is not yes/no (true, false, yes, no)")
    if kind == "date":
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{shorten(text)} is not a date (YYYY-MM-DD)") from None
    raise AssertionError(kind)


def _model_problems(shown: str, line: int, exc: ValidationError, columns: Sequence[Column]) -> list[Problem]:
    by_field = {c.field: c.name for c in columns}
    out = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if isinstance(p, str)]
        column = by_field.get(loc[0], loc[0]) if loc else ""
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "missing":
            msg = "missing value"
        out.append(Problem(shown, line, column, msg))
    return out


@dataclass
class _Rows:
    shown: str
    header: list[str]
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)


def _header_problem(header: Sequence[str], known: Sequence[str], required: Sequence[str]) -> tuple[str, str] | None:
    """(field, message): what is wrong with a CSV's first line, in one line. Unknown columns first, counted and
    placed but never quoted (the file may be anything: a key, a password file); then a repeated column, then
    missing ones. Only known column names, which come from the code, are ever named."""
    unknown = [i for i, name in enumerate(header, 1) if name not in known]
    if unknown:
        what = "an unknown column" if len(unknown) == 1 else f"{len(unknown)} unknown columns"
        where = f"column {unknown[0]}" if len(unknown) == 1 else f"the first is column {unknown[0]}"
        return "header", f"{what} ({where}); known: {', '.join(known)}"
    first: dict[str, int] = {}
    for i, name in enumerate(header, 1):
        if name in first:
            return name, f"duplicate column (columns {first[name]} and {i})"
        first[name] = i
    missing = [name for name in required if name not in first]
    if missing:
        more = f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""
        return missing[0], f"missing column{more}"
    return None


def _read_csv(path: Path, known: Sequence[str], required: Sequence[str]) -> _Rows:
    shown = display(path)
    text = read_text_bounded(path, LIMIT_CSV, encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise EstateError.one(shown, 1, "",
                                  f"the file is empty: the first line names the columns ({', '.join(known)})")
        header = [h.strip() for h in header]
        problems = [Problem(shown, 1, "(header)", bad) for bad in map(control_character, header) if bad]
        if problems:
            raise EstateError(problems[:1])
        wrong = _header_problem(header, known, required)
        if wrong:
            raise EstateError.one(shown, 1, *wrong)
        out = _Rows(shown, header)
        problems = []
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                problems.append(Problem(shown, line, "", f"{len(cells)} fields where the header has {len(header)}"))
                continue
            for name, cell in zip(header, cells, strict=True):
                bad = control_character(cell) or (f"a value of {len(cell):,} characters (at most {MAX_SCALAR:,})"
                                                   if len(cell) > MAX_SCALAR else None)
                if bad:  # a quoted cell may hold a newline: it would become a line of council.yml's comments
                    problems.append(Problem(shown, line, name or "(blank)", bad))
            out.rows.append((line, {h: c.strip() for h, c in zip(header, cells, strict=True)}))
    except csv.Error as exc:
        raise EstateError.one(shown, reader.line_num, "", f"CSV syntax: {exc}") from None
    if problems:
        raise EstateError(problems)
    return out


def _build(shown: str, line: int, row: Mapping[str, str], model: type[BaseModel], columns: Sequence[Column],
           ignore: Sequence[str] = ()) -> tuple[dict[str, Any] | None, list[Problem]]:
    """One row as model data (None when it has problems)."""
    problems: list[Problem] = []
    data: dict[str, Any] = {}
    names = {c.name for c in columns}
    for name, value in row.items():
        if value and name not in names and name not in ignore:
            uses = ", ".join(c.name for c in columns)
            problems.append(Problem(shown, line, name, f"must be empty for this row (it uses {uses})"))
    for col in columns:
        text = row.get(col.name, "")
        if text == "":
            continue
        try:
            data[col.field] = _convert(text, col.kind)
        except ValueError as exc:
            problems.append(Problem(shown, line, col.name, str(exc)))
    if problems:
        return None, problems
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return None, _model_problems(shown, line, exc, columns)
    return data, []


def read_asset_register(path: Path) -> dict[str, Any]:
    """The `assets` mapping of council.yml from an asset-register CSV (format: docs/asset-register.md)."""
    table = _read_csv(path, ASSET_COLUMNS, ("category",))
    shown = table.shown
    assets: dict[str, Any] = {"desktops": [], "servers": [], "network": []}
    problems: list[Problem] = []
    names: dict[str, int] = {}
    helpdesk_line = 0
    for line, row in table.rows:
        category = row.get("category", "").lower()
        if category not in ASSET_CATEGORIES:
            problems.append(Problem(shown, line, "category",
                                    f"{row.get('category', '')!r} is not one of {', '.join(ASSET_CATEGORIES)}"))
            continue
        model, columns = ASSET_CATEGORIES[category]
        data, found = _build(shown, line, row, model, columns, ignore=("category",))
        problems += found
        if data is None:
            continue
        if category == "helpdesk":
            if helpdesk_line:
                problems.append(Problem(shown, line, "category",
                                        f"a second helpdesk row (the first is line {helpdesk_line})"))
                continue
            helpdesk_line = line
            assets["helpdesk"] = data
            continue
        if "name" in data:
            if data["name"] in names:
                problems.append(Problem(shown, line, "name",
                                        f"duplicate asset name {data['name']!r} (line {names[data['name']]})"))
                continue
            names[data["name"]] = line
        assets[ASSET_LIST[category]].append(data)
    if problems:
        raise EstateError(problems)
    return assets


def read_contracts(path: Path) -> list[dict[str, Any]]:
    """The `contracts` list of council.yml from a contracts CSV (format: docs/asset-register.md)."""
    names = tuple(c.name for c in CONTRACT_COLUMNS)
    table = _read_csv(path, names, tuple(n for n in names if n != "description"))
    out: list[dict[str, Any]] = []
    problems: list[Problem] = []
    ids: dict[str, int] = {}
    for line, row in table.rows:
        data, found = _build(table.shown, line, row, Contract, CONTRACT_COLUMNS)
        problems += found
        if data is None:
            continue
        if data["id"] in ids:
            problems.append(Problem(table.shown, line, "id",
                                    f"duplicate contract id {data['id']} (line {ids[data['id']]})"))
            continue
        ids[data["id"]] = line
        data.setdefault("description", "")
        out.append({k: data[k] for k in (c.field for c in CONTRACT_COLUMNS)})
    if problems:
        raise EstateError(problems)
    return out


# --------------------------------------------------------------------------- the new council


@dataclass(frozen=True)
class Request:
    """What `estate onboard` was asked for."""

    key: str
    code: str
    users: int
    title: str | None = None
    desktop_users: int | None = None
    helpdesk_agents: int = 0
    assets: Path | None = None
    contracts: Path | None = None
    today: dt.date | None = None  # the date in the files' header (`--today`; default the real date)


@dataclass(frozen=True)
class Onboarded:
    key: str
    block: IPv4Network
    files: tuple[Path, ...]  # what was written, in order
    hosts: tuple[tuple[str, str, str], ...]  # (name, role, address)


def default_title(key: str) -> str:
    return " ".join(part.capitalize() for part in key.split("-"))


def check_request(estate: Estate, req: Request) -> None:
    """The refusals that need only the arguments and the estate: one line each."""
    problems: list[Problem] = []
    code_pattern = _pattern(Council, "code").removeprefix("^").removesuffix("$")
    if not is_council_key(req.key):
        problems.append(Problem(WHO, 0, "NAME", f"{req.key!r} is not a council key ({COUNCIL_KEY_RULE})"))
    elif req.key == ipam.HUB:
        problems.append(Problem(WHO, 0, "NAME", f"{req.key!r} is the hub's key"))
    elif req.key in estate.councils:
        rec = estate.councils[req.key]
        problems.append(Problem(WHO, 0, "NAME", f"council {req.key!r} already exists ({rec.source.file})"))
    elif (estate.root / INVENTORIES / req.key).exists():
        problems.append(Problem(WHO, 0, "NAME",
                                f"{display(estate.root / INVENTORIES / req.key)} already exists"))
    if not re.fullmatch(code_pattern, req.code):
        problems.append(Problem(WHO, 0, "--code", f"{req.code!r} is not a GSS code "
                                "(E, N, S or W then eight digits)"))
    else:
        for other, rec in estate.councils.items():
            if rec.council.code == req.code:
                where = f"{rec.source.file}:{rec.source.line(('code',))}"
                problems.append(Problem(WHO, 0, "--code", f"code {req.code} is already {other}'s ({where})"))
    if req.users < 1:
        problems.append(Problem(WHO, 0, "--users", f"{req.users} users: a council has at least one"))
    if req.desktop_users is not None and not 0 <= req.desktop_users <= req.users:
        problems.append(Problem(WHO, 0, "--desktop-users", f"{req.desktop_users} desktop users: from 0 to --users"))
    if req.helpdesk_agents < 0:
        problems.append(Problem(WHO, 0, "--helpdesk-agents", "cannot be negative"))
    if problems:
        raise EstateError(problems)


def allocate_block(estate: Estate, key: str, today: dt.date | None = None) -> IPv4Network:
    """The lowest free council block: the hub block, every council's block and every block a departed council
    still reserves on `today` (departed/*/departure.yml, up to and including its departure day) are taken."""
    net = estate.framework.network
    supernet = ipam.parse_network(net.supernet)
    reserved = estate.reservations(today or dt.date.today())
    taken = [ipam.parse_network(net.hub.block), *(ipam.parse_network(r.council.block)
                                                   for r in estate.councils.values()),
             *(ipam.parse_network(d.departure.block) for d in reserved)]
    try:
        return ipam.next_free_block(supernet, net.council_prefix, taken)
    except ipam.SupernetExhausted:
        src = estate.framework_source
        n = len(estate.councils)
        holders = f"the hub and {n} council{'s' if n != 1 else ''}"
        if reserved:
            holders = (f"the hub, {n} council{'s' if n != 1 else ''} and {len(reserved)} departed "
                       f"council{'s' if len(reserved) != 1 else ''} until {min(d.departure.leaves for d in reserved)}")
        raise src.error(("network", "supernet"),
                        f"supernet {supernet} is exhausted: no free /{net.council_prefix} block for {key!r} "
                        f"({holders} hold every block)") from None


def host_names(estate: Estate, key: str) -> list[tuple[str, str, str]]:
    """(name, role, vlan) for the new council's lab hosts: names from the key, unique in the estate."""
    fw = estate.framework
    if fw.onboarding is None:
        raise EstateError.one(estate.framework_source.file, 0, "onboarding",
                              "framework.yaml has no onboarding section: which lab hosts should a council get?")
    taken = {h.name for h in (estate.hub_hosts.hosts if estate.hub_hosts else [])}
    for rec in estate.councils.values():
        taken |= {h.name for h in (rec.hosts.hosts if rec.hosts else [])}
    out: list[tuple[str, str, str]] = []
    for entry in fw.onboarding.hosts:
        suffix = ROLE_SUFFIX[entry.role]
        prefix = key[: HOST_NAME_MAX - len(suffix) - 3].rstrip("-")
        n = 1
        while f"{prefix}-{suffix}{n:02d}" in taken:
            n += 1
        name = f"{prefix}-{suffix}{n:02d}"
        taken.add(name)
        out.append((name, entry.role, entry.vlan))
    return out


def council_data(req: Request, block: IPv4Network, assets: dict[str, Any] | None,
                 contracts: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {
        "name": req.title or default_title(req.key),
        "code": req.code,
        "block": str(block),
        "users": {"staff": req.users,
                  "desktop": req.users if req.desktop_users is None else req.desktop_users,
                  "helpdesk_agents": req.helpdesk_agents},
        "assets": assets if assets is not None else {"desktops": [], "servers": [], "network": []},
        "contracts": contracts or [],
        "exemptions": [],
    }


def _flow(value: Any) -> str:
    """One value in YAML flow style on one line (a scalar without the document-end marker)."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000).strip()
    return text.removesuffix("...").strip()


def render_council(data: Mapping[str, Any], header: str) -> str:
    """council.yml in the layout of the example inventories: one asset per line, contracts as blocks."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for key in ("name", "code", "block"):
        lines.append(f"{key}: {_flow(data[key])}")
    lines.append("users:")
    lines += [f"  {k}: {_flow(v)}" for k, v in data["users"].items()]
    lines.append("assets:")
    assets = data["assets"]
    for group in ("desktops", "servers", "network"):
        items = assets.get(group, [])
        if not items:
            lines.append(f"  {group}: []")
            continue
        lines.append(f"  {group}:")
        lines += [f"    - {_flow(item)}" for item in items]
    if assets.get("helpdesk") is not None:
        lines.append(f"  helpdesk: {_flow(assets['helpdesk'])}")
    for group in ("contracts", "exemptions"):
        items = data[group]
        if not items:
            lines.append(f"{group}: []")
            continue
        lines.append(f"{group}:")
        for item in items:
            block = yaml.safe_dump([item], sort_keys=False, default_flow_style=False, width=10_000, indent=2)
            lines += [f"  {line}" for line in block.rstrip("\n").splitlines()]
    return "\n".join(lines) + "\n"


def render_hosts(hosts: Sequence[tuple[str, str, str]]) -> str:
    lines = ["# Lab hosts of this council: each joins the bridge of its VLAN with an address from IPAM.",
             "hosts:"]
    lines += [f"  - {_flow({'name': name, 'role': role, 'vlan': vlan})}" for name, role, vlan in hosts]
    return "\n".join(lines) + "\n"


def stack_config_path(root: Path, key: str) -> Path:
    return root / f"Pulumi.{key}.yaml"


def _project_name(root: Path) -> str:
    """The Pulumi project name from Pulumi.yaml (the namespace of the stack's own config keys)."""
    path = root / "Pulumi.yaml"
    if path.is_file():
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise EstateError.one(display(path), 0, "", f"YAML: {exc}") from None
        name = data.get("name") if isinstance(data, dict) else None
        if isinstance(name, str):
            return name
    raise EstateError.one(display(path), 0, "name", "no Pulumi project name (Pulumi.yaml with 'name:')")


def _stack_comment(estate: Estate) -> str:
    """The leading comment of an existing council's stack config (what every spoke must also be given
    per deployment), so a new council's file reads like the others; a plain one when there is none."""
    for key in sorted(estate.councils):
        path = stack_config_path(estate.root, key)
        if path.is_file():
            lines = []
            for line in path.read_text(encoding="utf-8").splitlines():
                if not line.startswith("#"):
                    break
                lines.append(line)
            if lines and not any(key in line for line in lines):
                return "\n".join(lines) + "\n"
    return "# A council's spoke (written by estate onboard); needs the hub stack deployed first.\n"


def render_stack_config(estate: Estate, key: str) -> str:
    """Pulumi.<key>.yaml: only what Pulumi needs that the estate does not say elsewhere: the region
    (framework.yaml data_centre.regions.primary) and the council the stack deploys."""
    project = _project_name(estate.root)
    config = {"azure-native:location": estate.framework.data_centre.regions.primary,
              f"{project}:council": key}
    return _stack_comment(estate) + yaml.safe_dump({"config": config}, sort_keys=False, default_flow_style=False)


# --------------------------------------------------------------------------- writing, all or nothing


@contextmanager
def estate_lock(root: Path) -> Iterator[None]:
    """An exclusive lock on the repo folder itself (so no lock file is left behind): two onboards at
    once would otherwise take the same block."""
    fd = os.open(root, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


STAGING = ".estate-onboard"  # a staging folder in the repo root: `.estate-onboard.<random>.tmp`
# In a council folder while its onboard links the stack config: left there only by a SIGKILL in that step.
UNFINISHED = ".onboard-unfinished"


def clear_stale_staging(root: Path) -> None:
    """Remove staging folders a killed onboard left (SIGKILL cannot be caught). Called under
    `estate_lock`, so no onboard that is still running owns one. Nothing else reads them: they lie
    outside inventories/ and their names start with a dot."""
    for stale in root.glob(f"{STAGING}.*.tmp"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)


def finish_unfinished(estate: Estate) -> list[Path]:
    """Write the stack config of a council whose onboard was killed (SIGKILL) after its folder appeared and
    before its Pulumi.<key>.yaml was linked (its folder still holds UNFINISHED). Called under `estate_lock`.
    Such a council loads and validates meanwhile: a missing stack file has no values. Returns what it wrote."""
    wrote: list[Path] = []
    for key in estate.councils:
        marker = estate.root / INVENTORIES / key / UNFINISHED
        if not marker.is_file():
            continue
        stack_path = stack_config_path(estate.root, key)
        if not (stack_path.exists() or stack_path.is_symlink()):
            write_atomic(stack_path, render_stack_config(estate, key))
            wrote.append(stack_path)
        marker.unlink()
    return wrote


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (onboarding's and offboarding's all-or-nothing steps)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all_or_nothing(root: Path, folder: Path, files: Sequence[tuple[Path, str]],
                         check: Callable[[], None] | None = None) -> None:
    """Write the new `folder` (a council's) with its files, and the files outside it (its stack
    config), all or nothing.

    Every file is first written and fsynced in a staging folder in `root` (`.estate-onboard.*.tmp`:
    outside inventories/, so no loader ever reads it). Then the folder is renamed into inventories/ in
    one step (the moment the council exists it is whole), then each outside file is linked to its name
    (never overwriting: one that already holds exactly this text is kept), then `check()`. Any failure
    at any step, an exception, Ctrl-C, SIGTERM or SIGHUP (estate.signals), removes everything written;
    an OSError becomes one line `PATH: cannot write: <reason>`.

    A SIGKILL cannot be caught. It can leave the staging folder, which nothing reads and the next
    onboard removes; or, between the folder's rename and the stack config's link, a whole council
    without its stack config (a missing stack file is no values: every command still works), marked
    by UNFINISHED in its folder, whose stack config the next onboard writes. Never a stack file without
    its council, which `estate validate` refuses.
    """
    inside = [(path, text) for path, text in files if path.parent == folder]
    outside = [(path, text) for path, text in files if path.parent != folder]
    staging: Path | None = None
    linked: list[Path] = []
    made_parent = False
    renamed = False
    current = folder
    try:
        staging = Path(tempfile.mkdtemp(prefix=f"{STAGING}.", suffix=".tmp", dir=root))
        staged_folder = staging / folder.name
        staged_folder.mkdir()  # the council folder's mode: as any mkdir (mkdtemp's own is 0o700)
        staged: list[tuple[Path, Path, str]] = []
        for path, text in inside:
            staged.append((staged_folder / path.name, path, text))
        marker_text = "estate onboard stopped before writing this council's stack config; the next onboard writes it\n"
        staged.append((staged_folder / UNFINISHED, folder / UNFINISHED, marker_text))
        for i, (path, text) in enumerate(outside):
            staged.append((staging / f"{i}-{path.name}", path, text))
        for tmp, path, text in staged:
            current = path
            with open(tmp, "x", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        fsync_dir(staged_folder)
        current = folder
        if not folder.parent.exists():
            folder.parent.mkdir()
            made_parent = True
        if folder.exists() or folder.is_symlink():  # a rename would replace an empty folder silently
            raise EstateError.one(display(folder), 0, "", "already exists; not overwritten")
        os.rename(staged_folder, folder)
        renamed = True
        fsync_dir(folder.parent)
        for tmp, path, text in staged[len(inside) + 1:]:
            current = path
            try:
                os.link(tmp, path)
            except FileExistsError:
                if not _holds(path, text):
                    raise EstateError.one(display(path), 0, "", "already exists; not overwritten") from None
                continue
            linked.append(path)
            fsync_dir(path.parent)
        current = folder
        os.unlink(folder / UNFINISHED)
        fsync_dir(folder)
        shutil.rmtree(staging)
        staging = None
        if check is not None:
            check()
    except BaseException as exc:
        for path in linked:
            with suppress(OSError):
                path.unlink()
        if renamed:
            shutil.rmtree(folder, ignore_errors=True)
        if made_parent:
            with suppress(OSError):
                folder.parent.rmdir()
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise EstateError.one(display(current), 0, "", f"cannot write: {exc.strerror or exc}") from None
        raise


def _holds(path: Path, text: str) -> bool:
    """Whether `path` is a regular file holding exactly `text`."""
    try:
        return path.is_file() and path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False


# --------------------------------------------------------------------------- the whole job


def prepare(estate: Estate, req: Request) -> tuple[IPv4Network, list[tuple[Path, str]], list[tuple[str, str, str]]]:
    """Everything up to writing: refusals, the block, the files' text, validated in memory against the
    models and the cross-file checks (blocks, codes, host names) of the estate with the new council."""
    check_request(estate, req)
    assets = read_asset_register(req.assets) if req.assets else None
    contracts = read_contracts(req.contracts) if req.contracts else None
    day = req.today or dt.date.today()
    block = allocate_block(estate, req.key, day)
    hosts = host_names(estate, req.key)
    folder = estate.root / INVENTORIES / req.key
    sources = []
    if req.assets:
        sources.append(f"asset register {req.assets.name}")
    if req.contracts:
        sources.append(f"contracts {req.contracts.name}")
    header = (f"{req.title or default_title(req.key)}: onboarded by `estate onboard` on {day.isoformat()}\n"
              + (f"from {' and '.join(sources)}" if sources else "with no asset register yet") + ". "
              "Edited by people from here on: add contracts, exemptions\nand transactions as they are agreed.")
    council_text = render_council(council_data(req, block, assets, contracts), header)
    hosts_text = render_hosts(hosts)
    council_path, hosts_path = folder / COUNCIL_FILE, folder / HOSTS_FILE
    stack_path = stack_config_path(estate.root, req.key)
    stack_text = render_stack_config(estate, req.key)
    # one that holds exactly this text is what a killed onboard of this council left: taken as is
    if (stack_path.exists() or stack_path.is_symlink()) and not _holds(stack_path, stack_text):
        raise EstateError.one(display(stack_path), 0, "", "already exists; not overwritten")

    council_src = parse(council_text, display(council_path))
    hosts_src = parse(hosts_text, display(hosts_path))
    record = CouncilRecord(req.key, validate(Council, council_src), council_src,
                           validate(Hosts, hosts_src), hosts_src)
    trial = Estate(estate.root, estate.framework, estate.framework_source,
                   councils={**estate.councils, req.key: record},
                   hub_hosts=estate.hub_hosts, hub_hosts_source=estate.hub_hosts_source,
                   departures=estate.departures)
    check_estate(trial, day)
    files = [(council_path, council_text), (hosts_path, hosts_text), (stack_path, stack_text)]
    return block, files, hosts


def onboard(root: Path, req: Request) -> Onboarded:
    """Onboard one council; raises EstateError (nothing written) when it cannot."""
    loaded: list[Estate] = []
    with estate_lock(root):
        clear_stale_staging(root)
        estate = load_estate(root)
        finish_unfinished(estate)
        block, files, hosts = prepare(estate, req)

        def reload() -> None:
            """The estate as written must load, exactly as `estate validate` loads it."""
            loaded.append(load_estate(root))

        write_all_or_nothing(root, estate.root / INVENTORIES / req.key, files, check=reload)
    done = loaded[-1]
    addresses = {name: str(addr) for name, _, _, addr in host_addresses(done, req.key)}
    return Onboarded(req.key, block, tuple(p for p, _ in files),
                     tuple((name, role, addresses[name]) for name, role, _ in hosts))
