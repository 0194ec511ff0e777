"""The flow matrix is expanded once (issue 14, item 2): only estate/resolved.py turns flows into paths between
networks, and the NSGs, the router's nftables, the host firewalls and the compliance judge read those paths
(`Estate.resolved`). The lab probe's expansion (estate/isolation.py) stays independent on purpose.

The check reads the source: every place in estate/, stacks/ and policies/ that reaches a flow list (an attribute
`.flows`, however the framework was reached: `fw.network.flows`, `net.flows`) or asks which councils an inter flow
joins (`.partners(...)`) must be one of the places below, each with why it may."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("estate", "stacks", "policies")

# (module, function) -> why it may read the flow list itself
ALLOWED = {
    ("estate/resolved.py", "expand"):
        "the one expansion: a flow's paths, an inter flow's between the councils that agreed it",
    ("estate/loader.py", "Estate.resolved"): "hands the framework's flows to estate.resolved.resolve, once",
    ("estate/loader.py", "_check_exchanges"): "validates council.yml `exchanges` against the flows by id and scope",
    ("estate/models.py", "Network._consistent"): "validates the flow matrix itself (ids, ends, scopes)",
    ("estate/isolation.py", "matrix_ports"):
        "the lab probe's own, independent reading of the matrix (kept on purpose: it checks the resolved one)",
    ("estate/isolation.py", "allowing_flow"): "the lab probe's own, independent expansion, as above",
    ("estate/reach/verify.py", "_declared"):
        "the reachability verifier judges the planned NSGs, routes and firewall (built from the resolved model) "
        "against the lab probe's independent expectations (estate.isolation): it groups the agreed pairs of "
        "councils by the inter flows' VLAN classes",
    ("estate/reach/verify.py", "_segmentation"): "the same verifier: which inter flows a pair of councils agreed",
    ("estate/synthetic.py", "write_synthetic"):
        "lists the inter flows' ids to write synthetic councils' `exchanges` (an input, not a path)",
    ("estate/nftables.py", "render_router_ruleset"):
        "lists every flow for its comment line (a flow with no path too) and the council VLANs its hub flows name "
        "for the sets (there, empty, before any council); the rules and the sets' subnets come from the paths",
    ("estate/configure.py", "inbound_ports"):
        "a hub segment's ports are those of every flow naming it, with or without a council (a path needs one); "
        "a council VLAN's come from the paths",
    ("estate/configure.py", "admin_inbound"): "the same for administration: a hub segment's flows by name",
}

# the functions that build from the matrix: each reads the resolved model
READERS = {
    "stacks/flows.py": ("segment_rules", "firewall_rules"),
    "estate/nftables.py": ("render_router_ruleset",),
    "estate/configure.py": ("inbound_ports", "admin_inbound"),
    "estate/controls/network/flows.py": ("allowed_by_matrix",),
    "estate/controls/network/c1_2_segmentation/__init__.py": ("_network_rule", "_within_matrix"),
}
RESOLVED_READS = frozenset({"resolved", "into", "out_of", "of_flow"})


class _Scan(ast.NodeVisitor):
    """Where a tree reaches a flow list or an inter flow's partners, and which functions read the resolved model:
    by dotted name of the enclosing definitions (`Estate.resolved`, "<module>" at the top)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.flows: set[str] = set()
        self.resolved: set[str] = set()

    def _in(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.names.append(node.name)
        self.generic_visit(node)
        self.names.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _in

    @property
    def here(self) -> str:
        return ".".join(self.names) or "<module>"

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr == "flows":
            self.flows.add(self.here)
        if node.attr in RESOLVED_READS:
            self.resolved.add(self.here)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Attribute) and node.func.attr == "partners":
            self.flows.add(self.here)
        self.generic_visit(node)


def scan(source: str) -> _Scan:
    found = _Scan()
    found.visit(ast.parse(source))
    return found


def modules() -> Iterator[tuple[str, str]]:
    for package in PACKAGES:
        for file in sorted((REPO / package).rglob("*.py")):
            yield file.relative_to(REPO).as_posix(), file.read_text(encoding="utf-8")


def test_only_the_resolved_model_and_the_listed_places_read_the_flow_list() -> None:
    found = {(module, where) for module, source in modules() for where in scan(source).flows}
    assert found - ALLOWED.keys() == set(), "expand the flow matrix in estate/resolved.py; read Estate.resolved"
    assert ALLOWED.keys() - found == set(), "an allowed place no longer reads the flows: take it off the list"


def test_the_builders_read_the_resolved_model() -> None:
    for module, functions in READERS.items():
        readers = scan((REPO / module).read_text(encoding="utf-8")).resolved
        assert set(functions) <= readers, module


def test_the_scan_sees_a_flow_list_however_it_is_reached() -> None:
    """The scan itself: an aliased framework, a nested function, a method, an inter flow's partners."""
    source = """
def rules(estate):
    net = estate.framework.network
    def inner():
        return [f for f in net.flows]
    return inner()

class Builder:
    def build(self, estate):
        return estate.exchanges.partners("FL-14", "havering")

def fine(estate, site, segment):
    return estate.resolved.into(site, segment)
"""
    found = scan(source)
    assert found.flows == {"rules.inner", "Builder.build"}
    assert found.resolved == {"fine"}
