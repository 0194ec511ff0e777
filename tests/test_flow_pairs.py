"""Inter-council flows join only the pairs of councils that both declare them (council.yml `exchanges`).

The example estate: Havering and Newham agree FL-14 (revenues and benefits); Waltham Forest agrees nothing. A
declared pair is open and every other pair of councils is closed on every plane: the NSGs and the hub firewall's
rules (stacks), the router's nftables ruleset, the compliance judgement of a rule, the reachability proof of the
plan and the lab's own probe table. A declaration one council makes alone, naming an unknown council, itself, or a
flow that is not `inter`, is one line with its file, line and field.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from estate.cli import app
from estate.controls.network.flows import judge_allow
from estate.lab.probe import build_matrix
from estate.lab.topology import build, load_config
from estate.loader import Estate, load_estate
from estate.nftables import render_router_ruleset
from estate.plan import PlannedResource, plan
from estate.reach import Network, verify
from stacks.flows import firewall_rules, segment_rules
from tests.stacks_support import REPO, repo_plan

HAV, NWM, WF = "havering", "newham", "waltham-forest"
TCP_443 = (("tcp", 443),)


def _append(root: Path, council: str, text: str) -> int:
    """Append YAML text to a council.yml; the line number its first line lands on."""
    path = root / "inventories" / council / "council.yml"
    before = path.read_text(encoding="utf-8")
    path.write_text(before + text, encoding="utf-8")
    return before.count("\n") + 1


def _validate() -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, ["validate"])
    return result.exit_code, result.stderr.strip().splitlines()


def _servers(estate: Estate, council: str) -> str:
    return str(estate.addresses.councils[council].segment("servers").network)


@pytest.fixture
def opened(tmp_path: Path) -> Estate:
    """The example estate with Waltham Forest and Havering agreeing FL-14 as well (both declare it)."""
    shutil.copy(REPO / "framework.yaml", tmp_path / "framework.yaml")
    shutil.copytree(REPO / "inventories", tmp_path / "inventories")
    _append(tmp_path, WF, "exchanges:\n  - {flow: FL-14, with: havering}\n")
    _append(tmp_path, HAV, "  - {flow: FL-14, with: waltham-forest}\n")
    return load_estate(tmp_path)


# --------------------------------------------------------------------------- the declarations


def test_the_example_estate_opens_fl14_between_havering_and_newham_only(estate: Estate) -> None:
    assert estate.exchanges.pairs == {("FL-14", HAV, NWM), ("FL-14", NWM, HAV)}
    assert estate.exchanges.partners("FL-14", WF) == []
    assert not estate.exchanges.open("FL-14", HAV, WF) and not estate.exchanges.open("FL-14", WF, NWM)


def test_a_pair_declared_by_both_is_open_both_ways(opened: Estate) -> None:
    assert opened.exchanges.partners("FL-14", HAV) == [NWM, WF]
    assert opened.exchanges.open("FL-14", WF, HAV) and opened.exchanges.open("FL-14", HAV, WF)
    assert not opened.exchanges.open("FL-14", WF, NWM)


@pytest.mark.parametrize(("council", "text", "field", "message"), [
    (WF, "exchanges:\n  - {flow: FL-14, with: havering}\n", "with",
     "havering does not declare FL-14 with waltham-forest: an inter-council flow opens only when both councils "
     "declare it"),
    (WF, "exchanges:\n  - {flow: FL-14, with: camden}\n", "with",
     "unknown council 'camden' (known: havering, newham)"),
    (WF, "exchanges:\n  - {flow: FL-14, with: waltham-forest}\n", "with",
     "a council does not exchange with itself: name another council"),
    (WF, "exchanges:\n  - {flow: FL-01, with: havering}\n", "flow",
     "FL-01 has scope 'intra': only an 'inter' flow is agreed per pair of councils"),
    (WF, "exchanges:\n  - {flow: FL-99, with: havering}\n", "flow", "unknown flow 'FL-99'"),
    (HAV, "  - {flow: FL-14, with: newham}\n", "with", "FL-14 with newham is already declared"),
])
def test_a_bad_declaration_is_one_line(repo_copy: Path, council: str, text: str, field: str, message: str) -> None:
    line = _append(repo_copy, council, text)
    index = 0 if text.startswith("exchanges") else 1
    line += 1 if text.startswith("exchanges") else 0
    code, err = _validate()
    assert code == 2
    assert err == [f"inventories/{council}/council.yml:{line}: exchanges[{index}].{field}: {message}"]


def test_an_offboarded_council_still_named_by_a_partner_is_refused(repo_copy: Path) -> None:
    """Taking Newham's folder away while Havering still agrees FL-14 with it: Havering's declaration is the error
    (issue #15: a council that another council's inventory still names)."""
    shutil.rmtree(repo_copy / "inventories" / NWM)
    text = (repo_copy / "inventories" / HAV / "council.yml").read_text(encoding="utf-8").splitlines()
    line = text.index("  - {flow: FL-14, with: newham}") + 1
    code, err = _validate()
    assert code == 2
    assert err == [f"inventories/havering/council.yml:{line}: exchanges[0].with: unknown council 'newham' "
                   f"(known: waltham-forest)"]


def test_the_example_estate_validates(repo_copy: Path) -> None:
    assert _validate()[0] == 0


# --------------------------------------------------------------------------- stacks: NSGs and the hub firewall


def _flow_rules(estate: Estate, council: str) -> dict[str, tuple[str, ...]]:
    rules = {r.name: r for r in segment_rules(estate, council, "servers")}
    return {name: (r.sources if r.direction == "Inbound" else r.destinations)
            for name, r in rules.items() if name.startswith("FL-14")}


def test_the_nsgs_list_only_the_partners(estate: Estate) -> None:
    assert _flow_rules(estate, HAV) == {"FL-14-in": (_servers(estate, NWM),), "FL-14-out": (_servers(estate, NWM),)}
    assert _flow_rules(estate, NWM) == {"FL-14-in": (_servers(estate, HAV),), "FL-14-out": (_servers(estate, HAV),)}
    assert _flow_rules(estate, WF) == {}  # no partner: no FL-14 rule, the deny-consortium rules decide


def test_the_nsgs_follow_a_new_pair(opened: Estate) -> None:
    assert _flow_rules(opened, HAV)["FL-14-in"] == (_servers(opened, NWM), _servers(opened, WF))
    assert _flow_rules(opened, WF) == {"FL-14-in": (_servers(opened, HAV),), "FL-14-out": (_servers(opened, HAV),)}


def test_the_firewall_has_one_rule_per_council_with_partners(estate: Estate, opened: Estate) -> None:
    found = {r.name: (r.sources, r.destinations) for r in firewall_rules(estate)}
    assert found == {"FL-14-havering": ((_servers(estate, HAV),), (_servers(estate, NWM),)),
                     "FL-14-newham": ((_servers(estate, NWM),), (_servers(estate, HAV),))}
    found = {r.name: (r.sources, r.destinations) for r in firewall_rules(opened)}
    assert found["FL-14-waltham-forest"] == ((_servers(opened, WF),), (_servers(opened, HAV),))
    assert found["FL-14-havering"] == ((_servers(opened, HAV),), (_servers(opened, NWM), _servers(opened, WF)))
    assert found["FL-14-newham"] == ((_servers(opened, NWM),), (_servers(opened, HAV),))


# --------------------------------------------------------------------------- the router


def _fl14_lines(estate: Estate) -> list[str]:
    return [line.strip() for line in render_router_ruleset(estate).splitlines()
            if line.startswith("\t\tip ") and '"FL-14 ' in line]


def test_the_router_accepts_only_the_declared_pairs(estate: Estate, opened: Estate) -> None:
    hav, nwm, wf = (_servers(estate, c) for c in (HAV, NWM, WF))
    assert _fl14_lines(estate) == [
        f'ip saddr {hav} ip daddr {nwm} tcp dport 443 counter accept comment "FL-14 havering"',
        f'ip saddr {nwm} ip daddr {hav} tcp dport 443 counter accept comment "FL-14 newham"']
    assert _fl14_lines(opened) == [
        f'ip saddr {hav} ip daddr {{ {nwm}, {wf} }} tcp dport 443 counter accept comment "FL-14 havering"',
        f'ip saddr {nwm} ip daddr {hav} tcp dport 443 counter accept comment "FL-14 newham"',
        f'ip saddr {wf} ip daddr {hav} tcp dport 443 counter accept comment "FL-14 waltham-forest"']


# --------------------------------------------------------------------------- compliance


def test_a_rule_opening_an_undeclared_pair_is_beyond_the_matrix(estate: Estate, opened: Estate) -> None:
    hav, nwm, wf = (_servers(estate, c) for c in (HAV, NWM, WF))

    def judge(e: Estate, src: str, dst: str) -> list[str]:
        return judge_allow(e.addresses, e.resolved, [src], [dst], ["Tcp"], ["443"])

    assert judge(estate, hav, nwm) == [] and judge(estate, nwm, hav) == []
    assert judge(estate, wf, hav) == [
        "waltham-forest/servers -> havering/servers tcp/443 is not a flow of the matrix"]
    assert judge(opened, wf, hav) == [] and judge(opened, wf, nwm) != []


# --------------------------------------------------------------------------- reachability and the lab


@pytest.fixture(scope="module")
def planned() -> list[PlannedResource]:
    return list(repo_plan().resources)


def test_the_plan_proves_the_declared_pair_open_and_the_rest_closed(planned: list[PlannedResource],
                                                                   estate: Estate) -> None:
    network = Network.from_plan(planned, estate)
    found = verify(network, estate, ["segmentation"])
    assert found.ok, found.summary()
    for src, dst, want in ((HAV, NWM, True), (NWM, HAV, True), (WF, HAV, False), (HAV, WF, False),
                           (WF, NWM, False), (NWM, WF, False)):
        a, b = (network.endpoint(f"{c}/servers") for c in (src, dst))
        assert network.verdicts(a, b, TCP_443) == (want,), (src, dst)


def test_a_plan_opening_an_undeclared_pair_fails_the_proof(opened: Estate, estate: Estate) -> None:
    """The plan built for `opened` (Waltham Forest and Havering agree FL-14), judged against the example estate's
    matrix: exactly the two Waltham Forest <-> Havering server pairs on tcp/443 must be denied and are not."""
    network = Network.from_plan(list(plan(opened).resources), estate)
    found = verify(network, estate, ["segmentation"], fast=True)
    failed = {(f.source, f.destination, f.service, f.expected) for f in found.failing("segmentation")}
    assert failed == {(f"{WF}/servers", f"{HAV}/servers", ("tcp", 443), False),
                      (f"{HAV}/servers", f"{WF}/servers", ("tcp", 443), False)}
    assert verify(network, opened, ["segmentation"]).ok


def test_the_lab_probes_every_inter_pair_with_its_own_reading(estate: Estate, opened: Estate) -> None:
    """The lab's probe table (its own reading of the declarations): FL-14 only between the agreed pairs."""
    for e, pairs in ((estate, {(HAV, NWM), (NWM, HAV)}), (opened, {(HAV, NWM), (NWM, HAV), (HAV, WF), (WF, HAV)})):
        probes = build_matrix(e.framework, build(e, load_config(REPO)))
        inter = [p for p in probes if p.scope == "inter" and p.protocol == "tcp" and p.port == 443
                 and p.src.segment.name == p.dst.segment.name == "servers"]
        assert {(p.src.segment.site, p.dst.segment.site) for p in inter if p.flow == "FL-14"} == pairs
        assert len(inter) == 6  # every ordered pair of the three councils is probed; the rest expect a drop
