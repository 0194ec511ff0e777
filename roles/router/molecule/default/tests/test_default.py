"""The router applies the flow-matrix ruleset it was given and forwards between segments."""

import os
from pathlib import Path


def test_ruleset_installed_and_loaded(host):
    source = os.environ.get("ESTATE_ROUTER_RULESET") or str(Path(__file__).parent.parent / "files" / "router.nft")
    wanted = Path(source).read_text(encoding="utf-8")
    assert host.file("/etc/nftables.d/50-router.nft").content_string == wanted
    live = host.check_output("nft list table inet estate_flows")
    assert "hook forward priority filter; policy drop;" in live
    assert 'comment "default deny"' in live


def test_ip_forwarding(host):
    assert host.file("/proc/sys/net/ipv4/ip_forward").content_string.strip() == "1"
    assert "net.ipv4.ip_forward = 1" in host.file("/etc/sysctl.d/60-estate-router.conf").content_string


def test_nftables_conf_loads_the_folder(host):
    assert 'include "/etc/nftables.d/*.nft"' in host.file("/etc/nftables.conf").content_string
