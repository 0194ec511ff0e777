"""Synthetic consortia for tests and benchmarks: N councils with blocks from IPAM.

Names, codes and figures are generated (`syn-001`, `E0990xxxx`); nothing here is a real council. Each council
agrees every inter flow of the framework with its neighbours in the list (syn-002 with syn-001 and syn-003), so
the inter flows stay exercised and the plan grows linearly with the councils, as declared pairs do.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import yaml

from estate import ipam
from estate.atomic import write_atomic
from estate.loader import FRAMEWORK_FILE, INVENTORIES, Estate, load_estate, load_framework


def key_of(index: int) -> str:
    return f"syn-{index:03d}"


def exchanges(index: int, count: int, inter_flows: list[str]) -> list[dict[str, str]]:
    """Council `index`'s `exchanges`: every inter flow with its neighbours (index - 1 and index + 1)."""
    neighbours = [key_of(i) for i in (index - 1, index + 1) if 1 <= i <= count]
    return [{"flow": flow, "with": n} for flow in inter_flows for n in neighbours]


def council_data(index: int, block: str, exchanged: list[dict[str, str]] | None = None) -> dict[str, object]:
    staff = 1500 + (index * 137) % 4000
    # contract ids are 2-5 capital letters, -C and digits: SY + the index in three letters (SYAAB for 1)
    key = "SY" + "".join(chr(65 + (index // 26**k) % 26) for k in (2, 1, 0))
    return {
        "name": f"Synthetic Council {index:03d}",
        "code": f"E099{index:05d}",
        "block": block,
        "users": {"staff": staff, "desktop": staff * 4 // 5, "helpdesk_agents": 5 + index % 20},
        "assets": {
            "desktops": [
                {"os": "Windows", "version": "10 22H2" if index % 3 == 0 else "11 25H2",
                 "count": staff // 2, "kind": "desktop", "managed_by": "Legacy Supplier"},
                {"os": "IGEL OS", "version": "12", "count": staff // 4, "kind": "thin-client",
                 "managed_by": "shared-estate"},
            ],
            "servers": [
                {"name": f"syn{index:03d}-app01", "role": "line of business", "os": "Debian", "version": "12",
                 "location": "azure", "region": "uksouth", "sku": "Standard_D2s_v5", "encrypted": True,
                 "backed_up": True},
                {"name": f"syn{index:03d}-file01", "role": "file server", "os": "Windows Server",
                 "version": "2016" if index % 2 else "2022", "location": "on-premises",
                 "encrypted": index % 2 == 0, "backed_up": True},
            ],
            "network": [
                {"name": f"syn{index:03d}-fw01", "kind": "firewall", "vendor": "Generic", "model": "FW-1",
                 "end_of_support": dt.date(2026 + index % 5, 3, 31)},
            ],
            "helpdesk": {"system": "Request Tracker", "version": "5.0.3", "shared_queue": index % 4 != 0},
        },
        "contracts": [
            {"id": f"{key}-C01", "supplier": "Legacy Supplier", "area": "desktop",
             "description": "desktop managed service", "annual_cost": float(300000 + index * 1000),
             "start": dt.date(2021, 4, 1), "end": dt.date(2027 + index % 3, 3, 31)},
        ],
        "exemptions": [],
        **({"exchanges": exchanged} if exchanged else {}),
    }


def write_synthetic(root: Path, count: int, framework: Path) -> Path:
    """A repo-shaped folder with `count` synthetic councils (and the given framework.yaml)."""
    fw, _ = load_framework(framework)
    root.mkdir(parents=True, exist_ok=True)
    write_atomic(root / FRAMEWORK_FILE, framework.read_bytes())
    inv = root / INVENTORIES
    if inv.exists():
        shutil.rmtree(inv)
    inv.mkdir()
    hub = framework.parent / INVENTORIES / ipam.HUB  # the hub's hosts (helpdesk, log collector) come along
    if hub.is_dir():
        for file in sorted(p for p in hub.rglob("*") if p.is_file()):
            write_atomic(inv / ipam.HUB / file.relative_to(hub), file.read_bytes(), parents=True)
    supernet = ipam.parse_network(fw.network.supernet)
    taken = [ipam.parse_network(fw.network.hub.block)]
    inter = [f.id for f in fw.network.flows if f.scope == "inter"]
    for i in range(1, count + 1):
        block = ipam.next_free_block(supernet, fw.network.council_prefix, taken)
        taken.append(block)
        folder = inv / key_of(i)
        folder.mkdir()
        data = council_data(i, str(block), exchanges(i, count, inter))
        write_atomic(folder / "council.yml", yaml.safe_dump(data, sort_keys=False))
    return root


def synthetic_estate(count: int, framework: Path, root: Path) -> Estate:
    return load_estate(write_synthetic(root, count, framework))
