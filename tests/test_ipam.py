"""IPAM: deterministic, never overlapping, clear errors."""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from estate import ipam
from estate.loader import Estate, address_plan


def test_newham_subnets_sit_inside_its_block_inside_the_supernet(estate: Estate) -> None:
    plan = estate.addresses
    site = plan.site("newham")
    assert site.block == IPv4Network(estate.councils["newham"].council.block)
    assert site.block.subnet_of(plan.supernet)
    for seg in site.segments:
        assert seg.network.subnet_of(site.block)
    vlans = {v.name: v for v in estate.framework.network.vlans}
    assert {s.name for s in site.segments} == set(vlans)
    for seg in site.segments:
        assert seg.network.prefixlen == vlans[seg.name].prefix
        assert seg.vlan_id == vlans[seg.name].id


def test_no_segment_overlaps_anywhere_in_the_estate(estate: Estate) -> None:
    nets = {f"{s.key}/{seg.name}": seg.network
            for s in [estate.addresses.hub, *estate.addresses.councils.values()] for seg in s.segments}
    assert ipam.overlaps(nets) == []


def test_carve_is_largest_first_and_aligned() -> None:
    out = ipam.carve(IPv4Network("10.0.0.0/20"), [("a", 26), ("b", 22), ("c", 24)])
    assert out == {"a": IPv4Network("10.0.5.0/26"), "b": IPv4Network("10.0.0.0/22"),
                   "c": IPv4Network("10.0.4.0/24")}


def test_carve_refuses_what_does_not_fit() -> None:
    with pytest.raises(ipam.IpamError, match="no room for c /24"):
        ipam.carve(IPv4Network("10.0.0.0/20"), [("a", 21), ("b", 21), ("c", 24)])


def test_next_free_block_skips_taken_and_fills_gaps() -> None:
    supernet = IPv4Network("10.0.0.0/16")
    taken = [IPv4Network("10.0.0.0/20"), IPv4Network("10.0.32.0/20")]
    assert ipam.next_free_block(supernet, 20, taken) == IPv4Network("10.0.16.0/20")
    taken.append(IPv4Network("10.0.16.0/21"))  # a smaller odd allocation inside the gap
    assert ipam.next_free_block(supernet, 20, taken) == IPv4Network("10.0.48.0/20")


def test_full_supernet_is_exhausted_at_exactly_the_right_count() -> None:
    supernet = IPv4Network("10.0.0.0/18")
    taken: list[IPv4Network] = [IPv4Network("10.0.0.0/20")]  # hub
    for _ in range(3):
        taken.append(ipam.next_free_block(supernet, 20, taken))
    with pytest.raises(ipam.SupernetExhausted, match="exhausted"):
        ipam.next_free_block(supernet, 20, taken)


def test_overlaps_finds_nested_and_equal_blocks() -> None:
    found = ipam.overlaps({"a": IPv4Network("10.0.0.0/16"), "b": IPv4Network("10.0.4.0/24"),
                           "c": IPv4Network("10.1.0.0/24"), "d": IPv4Network("10.1.0.0/24")})
    assert sorted(found) == [("a", "b"), ("c", "d")]


@settings(max_examples=40, deadline=None)
@given(count=st.integers(min_value=1, max_value=400), hub_index=st.integers(min_value=0, max_value=15))
def test_up_to_400_councils_never_overlap_and_plan_deterministically(count: int, hub_index: int,
                                                                      estate: Estate) -> None:
    fw = estate.framework
    supernet = IPv4Network(fw.network.supernet)
    prefix = fw.network.council_prefix
    hub = list(supernet.subnets(new_prefix=prefix))[hub_index]

    def allocate() -> dict[str, IPv4Network]:
        taken = [hub]
        blocks: dict[str, IPv4Network] = {}
        for i in range(count):
            blocks[f"c{i:03d}"] = ipam.next_free_block(supernet, prefix, taken)
            taken.append(blocks[f"c{i:03d}"])
        return blocks

    blocks = allocate()
    assert ipam.overlaps({**blocks, "hub": hub}) == []
    assert all(b.subnet_of(supernet) and b.prefixlen == prefix for b in blocks.values())
    assert allocate() == blocks
    plan_a = address_plan(fw, blocks)
    plan_b = address_plan(fw, dict(reversed(list(blocks.items()))))
    assert plan_a == plan_b
    sample = list(plan_a.councils.values())[:: max(1, count // 20)]
    nets = {f"{s.key}/{g.name}": g.network for s in sample for g in s.segments}
    assert ipam.overlaps(nets) == []


@settings(max_examples=60, deadline=None)
@given(prefixes=st.lists(st.integers(min_value=22, max_value=28), min_size=1, max_size=12))
def test_carve_gives_aligned_disjoint_subnets_or_refuses(prefixes: list[int]) -> None:
    block = IPv4Network("10.8.0.0/20")
    wanted = [(f"v{i}", p) for i, p in enumerate(prefixes)]
    need = sum(1 << (32 - p) for p in prefixes)
    if need > block.num_addresses:
        with pytest.raises(ipam.IpamError):
            ipam.carve(block, wanted)
        return
    out = ipam.carve(block, wanted)
    assert list(out) == [n for n, _ in wanted]
    assert ipam.overlaps(out) == []
    for (name, p), net in zip(wanted, out.values(), strict=True):
        assert net.prefixlen == p and net.subnet_of(block), name
        assert int(net.network_address) % net.num_addresses == 0


def test_host_index_bounds() -> None:
    seg = ipam.Segment("x", IPv4Network("10.0.0.0/29"), 5, "", "snet-x")
    assert seg.gateway == ipaddress.IPv4Address("10.0.0.1")
    assert seg.host(6) == ipaddress.IPv4Address("10.0.0.6")
    with pytest.raises(ipam.IpamError):
        seg.host(7)


def test_sites_overlapping_matches_a_scan_of_every_block(estate: Estate) -> None:
    """The block index gives what comparing the network with every site's block gives, in the same order."""
    ap = estate.addresses
    sites = (ap.hub, *ap.councils.values())
    probes = [ap.supernet, *(s.block for s in sites), *(seg.network for s in sites for seg in s.segments),
              *(s.block.supernet(new_prefix=s.block.prefixlen - 1) for s in sites),
              IPv4Network("10.64.0.0/32"), IPv4Network("192.168.0.0/16"), IPv4Network("0.0.0.0/0")]
    for net in probes:
        scan = [s.key for s in sites if net.overlaps(s.block)]
        assert [s.key for s in ap.sites_overlapping(net)] == scan, net
