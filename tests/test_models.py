"""The spec and the example inventories load, and the models hold what they must."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError

from estate.loader import Estate
from estate.models import Council, Framework


def test_framework_has_version_and_every_control_names_its_clause(estate: Estate) -> None:
    fw = estate.framework
    assert fw.version == "2026.11"
    controls = fw.controls()
    assert len(controls) >= 30
    standards = {s.id for s in fw.standards}
    for path, control in controls:
        assert control.clause.split(":")[0] in standards, path
    assert len({c.id for _, c in controls}) == len(controls)


def test_vlan_catalogue_has_the_required_vlans(estate: Estate) -> None:
    names = {v.name for v in estate.framework.network.vlans}
    assert {"management", "servers", "desktops", "voice", "printers", "guest", "shared-services"} <= names


def test_flow_matrix_covers_every_scope(estate: Estate) -> None:
    scopes = {f.scope for f in estate.framework.network.flows}
    assert scopes == {"intra", "hub", "inter", "hub-internal"}


def test_every_administration_flow_starts_at_an_administration_source(estate: Estate) -> None:
    net = estate.framework.network
    admin = [f for f in net.flows if f.kind == "administration"]
    assert {f.source for f in admin} == set(net.administration.sources)
    assert {f.destination for f in admin} >= {"servers", "management", "hub/shared-services"}


def test_three_example_councils_differ(estate: Estate) -> None:
    assert set(estate.councils) == {"havering", "newham", "waltham-forest"}
    codes = {r.council.code for r in estate.councils.values()}
    assert codes == {"E09000016", "E09000025", "E09000031"}
    last_end = {k: max(c.end for c in r.council.contracts) for k, r in estate.councils.items()}
    assert last_end["waltham-forest"].year >= 2028
    legacy = {k: sum(1 for c in r.council.contracts if c.annual_cost > 0) for k, r in estate.councils.items()}
    assert legacy["havering"] < legacy["newham"] < legacy["waltham-forest"]


def test_unknown_keys_are_errors(estate: Estate) -> None:
    data = estate.councils["newham"].council.model_dump()
    data["favourite_colour"] = "green"
    with pytest.raises(ValidationError, match="Extra inputs"):
        Council.model_validate(data)


def test_types_are_strict(estate: Estate) -> None:
    data = estate.councils["newham"].council.model_dump()
    data["users"]["staff"] = "4600"
    with pytest.raises(ValidationError, match="valid integer"):
        Council.model_validate(data)


def test_flow_to_unknown_vlan_is_refused(estate: Estate) -> None:
    data = estate.framework.model_dump()
    data["network"]["flows"][0]["destination"] = "dmz"
    with pytest.raises(ValidationError, match="unknown VLAN 'dmz'"):
        Framework.model_validate(data)


def test_cyclic_migration_order_is_refused(estate: Estate) -> None:
    data = estate.framework.model_dump()
    data["migration"]["areas"][0]["depends_on"] = ["desktop"]
    with pytest.raises(ValidationError, match="cycle"):
        Framework.model_validate(data)


def test_every_council_block_is_inside_the_supernet(estate: Estate) -> None:
    supernet = ipaddress.IPv4Network(estate.framework.network.supernet)
    for rec in estate.councils.values():
        assert ipaddress.IPv4Network(rec.council.block).subnet_of(supernet)
