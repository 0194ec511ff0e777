"""The router's ruleset, generated from the flow matrix: valid nftables, one rule per flow and council,
following framework.yaml and inventories/ when they change. (The lab's isolation test checks what it
does to packets: tests/test_lab.py.)"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from estate.loader import Estate, load_estate
from estate.models import Flow
from estate.nftables import TABLE, render_router_ruleset

REPO = Path(__file__).resolve().parent.parent
RULE = re.compile(r'^\t\tip saddr (\S+) ip daddr (\{ [^}]+ \}|\S+) (?:ip daddr != (\S+) )?(tcp|udp) dport (.+?) '
                  r'counter accept comment "(FL-\d+) (\S+)"$')


def rules(text: str) -> list[tuple[str, ...]]:
    return [m.groups("") for line in text.splitlines() if (m := RULE.match(line))]


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copy(REPO / "framework.yaml", tmp_path / "framework.yaml")
    shutil.copytree(REPO / "inventories", tmp_path / "inventories")
    return tmp_path


def test_nft_accepts_the_ruleset(estate: Estate, tmp_path: Path) -> None:
    path = tmp_path / "router.nft"
    path.write_text(render_router_ruleset(estate))
    check = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr


def test_it_loads_twice_into_a_fresh_namespace_and_holds_one_table(estate: Estate, tmp_path: Path) -> None:
    path = tmp_path / "router.nft"
    path.write_text(render_router_ruleset(estate))
    done = subprocess.run(["unshare", "-n", "sh", "-c", f"nft -f {path} && nft -f {path} && nft list tables"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == f"table inet {TABLE}"
    assert len(done.stdout.strip().splitlines()) == 1


def test_it_is_deterministic(estate: Estate) -> None:
    assert render_router_ruleset(estate) == render_router_ruleset(load_estate(REPO))


def test_the_forward_policy_is_drop_and_the_last_rule_counts_the_rest(estate: Estate) -> None:
    text = render_router_ruleset(estate)
    assert "type filter hook forward priority filter; policy drop;" in text
    chain = text[text.index("chain forward"):]
    last_rule = [line for line in chain.splitlines() if line.startswith("\t\t") and not line.startswith("\t\t#")][-1]
    assert last_rule == '\t\tcounter drop comment "default deny"'
    assert "ct state established,related accept" in chain
    assert "fib saddr . iif oif missing" in chain


def test_every_flow_has_its_rules_with_the_councils_subnets(estate: Estate) -> None:
    found = rules(render_router_ruleset(estate))
    plan = estate.addresses
    for flow in estate.framework.network.flows:
        mine = [r for r in found if r[5] == flow.id]
        ports = flow.ports[0] if len(flow.ports) == 1 else "{ " + ", ".join(flow.ports) + " }"
        assert all(r[3] == flow.protocol and r[4] == ports for r in mine), flow.id
        if flow.scope == "intra":
            assert sorted((r[0], r[1], r[6]) for r in mine) == sorted(
                (str(s.segment(flow.source).network), str(s.segment(flow.destination).network), key)
                for key, s in plan.councils.items())
        elif flow.scope == "inter":
            # from each council's source VLAN to the destination VLAN of the councils it agreed the flow with
            # (inventories: Havering and Newham exchange FL-14; Waltham Forest declares nothing, so has no rule)
            assert sorted((r[0], r[1], r[6]) for r in mine) == sorted(
                (str(plan.councils[c].segment(flow.source).network), str(plan.councils[p].segment(flow.destination)
                                                                          .network), c)
                for c, p in (("havering", "newham"), ("newham", "havering")))
        elif flow.scope == "hub-internal":
            assert [(r[0], r[1], r[6]) for r in mine] == [
                (str(plan.hub.segment(flow.source[4:]).network), str(plan.hub.segment(flow.destination[4:]).network),
                 "shared")]
        else:
            assert len(mine) == 1
            hub_end = flow.source if flow.source_is_hub else flow.destination
            hub_net = str(plan.hub.segment(hub_end.removeprefix("hub/")).network)
            assert hub_net in (mine[0][0], mine[0][1])


EGRESS = re.compile(r'^\t\tip saddr @(egress_\S+) ip daddr != (\S+) (tcp|udp) dport (.+?) counter accept '
                    r'comment "egress (\S+)"$')


def _set(text: str, name: str) -> set[str]:
    block = text[text.index(f"set {name} {{"):]
    block = block[:block.index("}")]
    return {e.strip() for e in block.split("elements = { ")[1].split(", ")} if "elements" in block else set()


def test_each_egress_purpose_lets_exactly_its_sources_out_on_its_ports(estate: Estate) -> None:
    """The router reflects network.egress: a purpose's sources (its VLANs in every council, its hub segments) leave
    the supernet on its protocol and ports; the guest VLAN only for guest-internet; no rule lets a segment out that
    no purpose names (desktops do not reach Debian's mirror on the router: debian-updates does not name them)."""
    text = render_router_ruleset(estate)
    plan = estate.addresses
    found = {m.group(5): m.groups() for line in text.splitlines() if (m := EGRESS.match(line))}
    purposes = estate.framework.network.egress.purposes
    assert set(found) == {p.name for p in purposes}
    for p in purposes:
        set_name, outside, proto, ports, _ = found[p.name]
        assert outside == estate.framework.network.supernet and proto == p.protocol
        assert ports == (p.ports[0] if len(p.ports) == 1 else "{ " + ", ".join(p.ports) + " }")
        assert _set(text, set_name) == {
            str(plan.hub.segment(s[4:]).network) if s.startswith("hub/") else str(c.segment(s).network)
            for s in p.sources for c in ([plan.hub] if s.startswith("hub/") else plan.councils.values())}
    debian = next(p for p in purposes if p.name == "debian-updates")
    desktops = {str(c.segment("desktops").network) for c in plan.councils.values()}
    assert not desktops & _set(text, found[debian.name][0])
    # every accept that leaves the supernet is one of these
    leaving = [line for line in text.splitlines() if "ip daddr !=" in line and "accept" in line
               and "@vlan_" not in line]
    assert len(leaving) == len(purposes)
    assert text.index("egress") < text.index('counter drop comment "default deny"')


def test_the_vlan_sets_hold_every_councils_subnet(estate: Estate) -> None:
    text = render_router_ruleset(estate)
    block = text[text.index("set vlan_servers {"):]
    elements = block[:block.index("}")]
    for site in estate.addresses.councils.values():
        assert str(site.segment("servers").network) in elements


def _drop_exchanges(folder: Path) -> None:
    path = folder / "council.yml"
    doc = yaml.safe_load(path.read_text())
    doc.pop("exchanges", None)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_a_flow_taken_out_of_the_matrix_is_gone_from_the_ruleset(copy: Path) -> None:
    path = copy / "framework.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["network"]["flows"] = [f for f in doc["network"]["flows"] if f["id"] != "FL-14"]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    for council in ("havering", "newham"):  # no council may still agree a flow the matrix no longer has
        _drop_exchanges(copy / "inventories" / council)
    text = render_router_ruleset(load_estate(copy))
    assert "FL-14" not in text
    assert [r for r in rules(text) if r[5] == "FL-01"]


def test_a_new_council_gets_its_own_rules(copy: Path) -> None:
    new = copy / "inventories" / "redbridge"
    shutil.copytree(copy / "inventories" / "newham", new)
    council = (new / "council.yml").read_text()
    council = council.replace("block: 10.64.32.0/20", "block: 10.64.64.0/20").replace("E09000025", "E09000026")
    (new / "council.yml").write_text(council)
    _drop_exchanges(new)  # newham's agreement with havering is newham's, not the newcomer's
    (new / "hosts.yml").write_text("hosts:\n  - {name: red-app01, role: app_server, vlan: servers}\n")
    estate = load_estate(copy)
    servers = str(estate.addresses.councils["redbridge"].segment("servers").network)
    found = rules(render_router_ruleset(estate))
    assert any(r[6] == "redbridge" and r[1] == servers for r in found if r[5] == "FL-01")
    # it agreed no inter flow: no FL-14 rule from it, and none to it
    assert not [r for r in found if r[5] == "FL-14" and (r[6] == "redbridge" or servers in r[1])]


def _with_descriptions(estate: Estate, text: str) -> Estate:
    """The estate with every flow's and egress purpose's description replaced, bypassing validation
    (model_construct): the generator must hold whatever the loader lets through."""
    net = estate.framework.network
    flows = [Flow.model_construct(**{**f.__dict__, "description": f"{f.id} {text}"}) for f in net.flows]
    purposes = [p.model_copy(update={"description": text}) for p in net.egress.purposes]
    network = net.model_copy(update={"flows": flows, "egress": net.egress.model_copy(update={"purposes": purposes})})
    return dataclasses.replace(estate, framework=estate.framework.model_copy(update={"network": network}))


HOSTILE = 'x"\n\t\tip saddr 0.0.0.0/0 accept; }\r\n  ip daddr 10.0.0.0/8 counter accept comment "y\x00\x1b[31m'


def test_free_text_never_becomes_a_rule(estate: Estate, tmp_path: Path) -> None:
    """A description holding a newline, quotes, `;`, `}` and `accept` yields exactly the rule lines of a plain one:
    it stays inside its comment (the old generator wrote it after `#` as it stood: a live accept rule ahead of the
    default deny)."""
    plain = render_router_ruleset(_with_descriptions(estate, "plain words")).splitlines()
    hostile_text = render_router_ruleset(_with_descriptions(estate, HOSTILE))
    hostile = hostile_text.splitlines()
    assert len(hostile) == len(plain)
    assert [line for line in hostile if not line.startswith("\t\t#")] == [
        line for line in plain if not line.startswith("\t\t#")]
    live = "\n".join(line for line in hostile if not line.lstrip().startswith("#"))
    assert "0.0.0.0/0" not in live and "10.0.0.0/8" not in live
    comments = re.findall(r'comment "([^"]*)"', hostile_text)
    assert all(re.fullmatch(r"[A-Za-z0-9 ._/:,()>-]{0,128}", c) for c in comments)
    path = tmp_path / "router.nft"
    path.write_text(hostile_text)
    check = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr


def test_a_long_description_is_cut_to_the_comment_limit(estate: Estate) -> None:
    text = render_router_ruleset(_with_descriptions(estate, "word " * 200))
    assert max(len(line) for line in text.splitlines() if line.startswith("\t\t#")) <= len("\t\t# ") + 128
