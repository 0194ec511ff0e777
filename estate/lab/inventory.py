"""The Ansible inventory of the running lab (.state/lab/inventory.yml).

Groups: one per council (`council_<key with - as _>`) and `hub`; one per role (thin_client, app_server,
dc_services, router, helpdesk, log_collector). Per host: how to reach it (ansible_host is its
management address; SSH as root with the controller's key) and what the roles need to know
(estate_* facts: its council, VLAN, address, gateway; its council's services host, the hub's log
collector and helpdesk).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from estate.ipam import HUB
from estate.lab.topology import LabHost, Topology

ROLES = ("thin_client", "app_server", "dc_services", "router", "helpdesk", "log_collector")


def group_of(site: str) -> str:
    return "hub" if site == HUB else "council_" + site.replace("-", "_")


def _first(topo: Topology, role: str, site: str | None = None) -> LabHost | None:
    return next((h for h in topo.hosts if h.role == role and (site is None or h.site == site)), None)


def render_inventory(topo: Topology, *, key_file: Path, known_hosts: Path, framework_version: str) -> dict[str, Any]:
    log = _first(topo, "log_collector", HUB)
    helpdesk = _first(topo, "helpdesk", HUB)
    ssh_args = (f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes "
                "-o ControlMaster=auto -o ControlPersist=60s")
    groups: dict[str, dict[str, Any]] = {}
    for site in dict.fromkeys(s.site for s in topo.segments):
        groups.setdefault(group_of(site), {"hosts": {}})
    for role in ROLES:
        groups.setdefault(role, {"hosts": {}})
    for host in topo.hosts:
        services = _first(topo, "dc_services", host.site)
        hostvars: dict[str, Any] = {
            "ansible_host": str(host.mgmt_address),
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(key_file),
            "ansible_ssh_common_args": ssh_args,
            "ansible_python_interpreter": "/usr/bin/python3",
            "estate_council": host.site,
            "estate_role": host.role,
            "estate_vlan": host.segment.name,
            "estate_vlan_id": host.segment.vlan_id,
            "estate_network": str(host.segment.network),
            "estate_address": str(host.address),
            "estate_gateway": str(host.segment.gateway),
            "estate_prefixlen": host.segment.network.prefixlen,
            "estate_mgmt_address": str(host.mgmt_address),
            "estate_controller_address": str(topo.controller.ip),
            "estate_container": host.container,
            "estate_services_address": str(services.address) if services else None,
            "estate_log_collector": str(log.address) if log else None,
            "estate_helpdesk_address": str(helpdesk.address) if helpdesk else None,
        }
        if host is topo.router:
            hostvars["estate_router_legs"] = [
                {"segment": leg.segment.label, "interface": leg.ifname, "network": str(leg.segment.network),
                 "addresses": [str(a) for a in leg.addresses]}
                for leg in topo.legs
            ]
        groups[group_of(host.site)]["hosts"][host.name] = hostvars
        groups.setdefault(host.role, {"hosts": {}})["hosts"][host.name] = {}
    return {
        "all": {
            "vars": {"estate_lab": True, "estate_framework_version": framework_version},
            "children": groups,
        }
    }
