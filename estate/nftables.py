"""The consortium router's firewall, generated from the framework's flow matrix.

One generator for the lab's router and the Ansible `router` role: `render_router_ruleset(estate)`
returns an nftables script (load it with `nft -f`; check it with `nft -c -f`). It holds one table,
`inet estate_flows`, with one forward chain whose policy is drop: a packet crosses the router only
when a flow of framework.yaml `network.flows` allows it, or when it belongs to a connection a flow
allowed (and whose source address is routed back through the interface it came in on: no
spoofing one VLAN from another). The script replaces that table atomically and touches nothing
else, so a host firewall in its own table (the input chain) is left alone.

Scopes, as framework.yaml defines them (the rules read the matrix's paths, `Estate.resolved`; the flows are listed
here only for a comment line each and the sets their hub flows name):
- intra: from a council's source VLAN to the same council's destination VLAN (one rule per council);
- hub:   between every council's VLAN and one hub segment (one rule, through a set of the VLAN's
         subnets in every council);
- inter: from a council's source VLAN to the destination VLAN of the councils that flow joins it with
         (both council.yml declare it: `Estate.exchanges`); one rule per council with partners, naming
         their subnets; a council with none gets no rule, so its traffic meets the default deny;
- hub-internal: between two hub segments (one rule).

Free text (a flow's or purpose's description) never reaches the script as it stands: a `#` comment line
and an nft `comment "..."` string carry only `_safe` text (letters, digits, space and `._/:,()>-`, at most
128 characters), so no newline, quote, `;` or brace in framework.yaml can end a comment and start a rule.

Egress (framework.yaml `network.egress`): each purpose allows its sources (a set of its VLANs' subnets in
every council and its hub segments) to addresses outside the supernet on its protocol and ports, and no
other segment leaves. A router matches addresses and ports, not names: the purpose's FQDNs and tags are
the hub firewall's to enforce. (In the lab the router has no uplink: lab hosts reach Debian's mirror over
their management leg through the controller's NAT, a path the router never sees.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from itertools import groupby

from estate import ipam
from estate.loader import Estate
from estate.models import Flow
from estate.resolved import HUB_PREFIX, Path, networks

TABLE = "estate_flows"
FAMILY = "inet"


def set_name(vlan: str) -> str:
    """The nft set holding one VLAN's subnet in every council."""
    return "vlan_" + vlan.replace("-", "_")


def egress_set_name(purpose: str) -> str:
    """The nft set holding the subnets an egress purpose lets out."""
    return "egress_" + purpose.replace("-", "_")


def _ports(ports: list[str]) -> str:
    return ports[0] if len(ports) == 1 else "{ " + ", ".join(ports) + " }"


def _elements(items: Sequence[str]) -> str:
    """One address, or an anonymous set of them."""
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def _match(flow: Flow) -> str:
    return f"{flow.protocol} dport {_ports(list(flow.ports))}"


# nft reads a comment string up to the next `"` and has no escape for one; a `#` comment runs to the end of the
# line. Whatever else a name or description holds becomes a space.
_UNSAFE = re.compile(r"[^A-Za-z0-9 ._/:,()>-]")
COMMENT_MAX = 128  # nft's limit on a rule comment (NFT_USERDATA_MAXLEN is 256 bytes; stay well inside it)


def _safe(text: str) -> str:
    """Text that cannot leave a comment: only the characters above, runs of spaces collapsed, at most 128."""
    return " ".join(_UNSAFE.sub(" ", text).split())[:COMMENT_MAX]


def _quote(text: str) -> str:
    return '"' + _safe(text) + '"'


def _set_lines(name: str, elements: Iterable[str]) -> list[str]:
    items = list(elements)
    lines = [f"\tset {name} {{", "\t\ttype ipv4_addr", "\t\tflags interval"]
    if items:
        lines.append("\t\telements = { " + ", ".join(items) + " }")
    lines.append("\t}")
    return lines


def _council_networks(paths: Iterable[Path], vlan: str) -> tuple[str, ...]:
    """The subnets of one council VLAN at the council end of some paths, in order, each once."""
    return tuple(dict.fromkeys(str(end.network) for p in paths for end in (p.source, p.destination)
                               if end.site != ipam.HUB and end.segment == vlan))


def render_router_ruleset(estate: Estate) -> str:
    """The nftables script of the router: the flow matrix of framework.yaml for every council."""
    fw = estate.framework
    plan = estate.addresses
    councils = sorted(plan.councils)
    hub = plan.hub

    def subnet(site: str, segment: str) -> str:
        return str(plan.site(site).segment(segment).network)

    # one set per council VLAN a hub flow names: its subnet at the council end of every path of a hub flow
    hub_paths = [p for p in estate.resolved.paths if p.flow.scope == "hub"]
    set_vlans: list[str] = []
    for flow in fw.network.flows:
        if flow.scope != "hub":
            continue  # intra, inter and hub-internal rules name their subnets
        for end in (flow.source, flow.destination):
            if not end.startswith(HUB_PREFIX) and end not in set_vlans:
                set_vlans.append(end)

    out = [
        "#!/usr/sbin/nft -f",
        f"# The consortium router's forward policy: the flow matrix of framework {fw.version}",
        f"# ({len(fw.network.flows)} flows, {len(councils)} councils). Generated by estate.nftables from",
        "# framework.yaml and inventories/: do not edit, change the flow matrix and regenerate.",
        "# Anything no flow allows is dropped.",
        "",
        f"table {FAMILY} {TABLE}",
        f"delete table {FAMILY} {TABLE}",
        "",
        f"table {FAMILY} {TABLE} {{",
    ]
    for vlan in set_vlans:
        out += _set_lines(set_name(vlan), _council_networks(hub_paths, vlan))
        out.append("")
    purposes = fw.network.egress.purposes
    for purpose in purposes:
        sources = [str(hub.segment(end.removeprefix(HUB_PREFIX)).network) if end.startswith(HUB_PREFIX)
                   else subnet(c, end) for end in purpose.sources
                   for c in ([ipam.HUB] if end.startswith(HUB_PREFIX) else councils)]
        out += _set_lines(egress_set_name(purpose.name), sources)
        out.append("")
    out += [
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy drop;",
        "\t\tct state established,related accept",
        "\t\tct state invalid drop",
        "\t\tfib saddr . iif oif missing counter drop comment \"anti-spoofing: source not routed via its interface\"",
    ]
    for flow in fw.network.flows:
        out.append("\t\t# " + _safe(f"{flow.id} ({flow.scope}) {flow.source} -> {flow.destination} "
                                     f"{flow.protocol}/{','.join(flow.ports)}: {flow.description}"))
        match = _match(flow)
        if flow.scope == "hub":
            # one rule through the set of the council VLAN's subnets; its hub end is one segment
            if flow.source_is_hub:
                src, dst = subnet(ipam.HUB, flow.source.removeprefix(HUB_PREFIX)), "@" + set_name(flow.destination)
            else:
                src, dst = "@" + set_name(flow.source), subnet(ipam.HUB, flow.destination.removeprefix(HUB_PREFIX))
            out.append(f"\t\tip saddr {src} ip daddr {dst} {match} counter accept "
                       f"comment {_quote(f'{flow.id} {ipam.HUB}')}")
            continue
        # intra, hub-internal: one rule per path; inter: one per source council (its paths are in source council
        # order), naming its partners' subnets
        for site, from_site in groupby(estate.resolved.of_flow(flow.id), key=lambda p: p.source.site):
            group = list(from_site)
            out.append(f"\t\tip saddr {_elements(networks(group, 'source'))} "
                       f"ip daddr {_elements(networks(group, 'destination'))} {match} counter accept "
                       f"comment {_quote(f'{flow.id} {site}')}")
    for purpose in purposes:
        out.append("\t\t# " + _safe(f"egress {purpose.name} {','.join(purpose.sources)} -> internet "
                                     f"{purpose.protocol}/{','.join(purpose.ports)}: {purpose.description}"))
        out.append(f"\t\tip saddr @{egress_set_name(purpose.name)} ip daddr != {plan.supernet} "
                   f"{purpose.protocol} dport {_ports(purpose.ports)} counter accept "
                   f"comment {_quote(f'egress {purpose.name}')}")
    out += [
        "\t\tcounter drop comment \"default deny\"",
        "\t}",
        "}",
        "",
    ]
    return "\n".join(out)
