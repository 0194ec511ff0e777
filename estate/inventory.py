"""Reading an Ansible inventory (YAML): the hosts `estate configure` runs on and `estate check --hosts` gathers
facts from. Both read it, so it lives here, below both; the lab writes the one they read by default."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from estate.errors import EstateError
from estate.yamlsrc import display, load

LAB_INVENTORY = Path(".state") / "lab" / "inventory.yml"


def load_inventory(path: Path) -> dict[str, Any]:
    """The Ansible inventory (YAML) as data; a missing or malformed file is one line, exit 2."""
    if not path.exists():
        hint = " (start the lab with `estate lab up`, or pass --inventory)" if path.name == "inventory.yml" else ""
        raise EstateError.one(display(path), 0, "", f"no inventory here{hint}")
    src = load(path)
    data = src.data
    if not isinstance(data, dict) or not isinstance(data.get("all"), dict):
        raise src.error((), "an inventory has a top-level 'all' group")
    return data


def inventory_hosts(inventory: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every host of a YAML inventory with its merged host vars and the groups it belongs to."""
    hosts: dict[str, dict[str, Any]] = {}

    def walk(name: str, group: Mapping[str, Any], inherited: dict[str, Any], lineage: tuple[str, ...]) -> None:
        gvars = {**inherited, **(group.get("vars") or {})}
        for host, hvars in (group.get("hosts") or {}).items():
            entry = hosts.setdefault(str(host), {"vars": {}, "groups": set()})
            entry["vars"] = {**gvars, **entry["vars"], **(hvars or {})}
            entry["groups"].update((*lineage, name))
        for child, body in (group.get("children") or {}).items():
            walk(str(child), body or {}, gvars, (*lineage, name))

    walk("all", inventory.get("all") or {}, {}, ())
    return hosts
