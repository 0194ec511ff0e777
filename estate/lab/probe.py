"""The isolation test: every (source segment, destination segment, protocol/port) of the lab, probed.

The matrix is generated from framework.yaml's flow matrix and the lab's segments (estate.isolation: the
expectations the cloud plane's reachability check shares), independently of the nftables generator: for every
ordered pair of segments (inside a council, council and hub, council and council, hub and hub) and every port any
flow names (a range counts by both its ends), it says whether a flow allows the pair. An inter flow allows a
pair of councils only when both declare it with each other (estate.isolation's own reading of council.yml
`exchanges`); every other pair of councils must be dropped. Each segment has one endpoint (its first host, or a probe
namespace on a segment without one), so nothing is checked only "at router level".

Each destination endpoint runs listeners (TCP accept, UDP echo) on every port; each source endpoint
probes all its destinations at once. Allowed probes must connect (TCP) or be answered (UDP); denied
probes must be dropped: no answer, no reset, no ICMP error. The router's default-deny counter must
grow by at least the number of denied probes, which shows the drops happened at the router.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from estate.atomic import write_atomic
from estate.isolation import Scope, allowing_flow, matrix_ports, scope_of
from estate.lab import probe_agent
from estate.lab.topology import Endpoint, Topology
from estate.models import Framework


@dataclass(frozen=True)
class Probe:
    src: Endpoint
    dst: Endpoint
    protocol: str
    port: int
    scope: Scope
    flow: str | None        # the flow that allows it, or None: denied

    @property
    def expected(self) -> bool:
        return self.flow is not None

    @property
    def target(self) -> str:
        return f"{self.protocol}/{self.dst.address}/{self.port}"


@dataclass(frozen=True)
class Outcome:
    probe: Probe
    result: str             # open | refused | dropped | error: ...

    @property
    def passed(self) -> bool:
        return self.result == "open" if self.probe.expected else self.result == "dropped"


def build_matrix(framework: Framework, topo: Topology) -> list[Probe]:
    ports = matrix_ports(framework)
    endpoints = topo.endpoints()
    probes: list[Probe] = []
    for src in endpoints:
        for dst in endpoints:
            if src.segment == dst.segment:
                continue  # one bridge: the router never sees it
            for protocol, port in ports:
                probes.append(Probe(src, dst, protocol, port, scope_of(src.segment, dst.segment),
                                    allowing_flow(framework, src.segment, dst.segment, protocol, port,
                                                  topo.exchanges)))
    return probes


# --------------------------------------------------------------------------- running


def _agent_source() -> str:
    return Path(probe_agent.__file__).read_text(encoding="utf-8")


def _agent_argv(endpoint: Endpoint, env_podman: bool, args: list[str]) -> list[str]:
    code = _agent_source()
    if endpoint.container is not None and env_podman:
        return ["podman", "exec", "-i", endpoint.container, "python3", "-c", code, *args]
    return ["ip", "netns", "exec", endpoint.netns, "python3", "-c", code, *args]


def _deny_counter(topo: Topology) -> int:
    out = subprocess.run(["ip", "netns", "exec", topo.router.netns, "nft", "-j", "list", "chain", "inet",
                          "estate_flows", "forward"], capture_output=True, text=True, check=False).stdout
    total = 0
    for item in json.loads(out).get("nftables", []) if out.strip() else []:
        rule = item.get("rule")
        if rule and rule.get("comment") == "default deny":
            for expr in rule.get("expr", []):
                if "counter" in expr:
                    total += int(expr["counter"]["packets"])
    return total


@dataclass
class Run:
    outcomes: list[Outcome]
    seconds: float
    deny_counter: int
    busy: dict[str, list[str]]
    retried: int = 0

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.passed]

    @property
    def denied(self) -> int:
        return sum(1 for o in self.outcomes if not o.probe.expected)

    @property
    def ok(self) -> bool:
        return not self.failures and self.deny_counter >= self.denied


def run_matrix(framework: Framework, topo: Topology, env: dict[str, str], *, timeout: float,
               in_containers: bool = True) -> Run:
    """Start listeners everywhere, probe from every endpoint at once, stop the listeners."""
    probes = build_matrix(framework, topo)
    specs = ",".join(f"{p}/{n}" for p, n in matrix_ports(framework))
    endpoints = topo.endpoints()
    started = time.monotonic()
    listeners: list[tuple[Endpoint, subprocess.Popen[str]]] = []
    busy: dict[str, list[str]] = {}
    try:
        for ep in endpoints:
            argv = _agent_argv(ep, in_containers, ["listen", str(ep.address), specs, "300"])
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env=env)
            listeners.append((ep, proc))
        for ep, proc in listeners:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                err = proc.stderr.read() if proc.stderr else ""
                raise RuntimeError(f"listener on {ep.name} did not start: {err.strip()[-300:]}")
            report = json.loads(line)
            if report.get("busy"):
                busy[ep.name] = list(report["busy"])
        before = _deny_counter(topo)

        def from_source(src: Endpoint) -> dict[str, str]:
            mine = [p for p in probes if p.src == src]
            argv = _agent_argv(src, in_containers, ["probe", str(timeout), *(p.target for p in mine)])
            done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False,
                                  timeout=timeout * 4 + 60)
            if done.returncode != 0:
                raise RuntimeError(f"probe from {src.name} failed: {done.stderr.strip()[-300:]}")
            results: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])["results"]
            return results

        with ThreadPoolExecutor(max_workers=len(endpoints)) as pool:
            per_source = dict(zip(endpoints, pool.map(from_source, endpoints), strict=True))
        # An allowed probe that got nothing back within the timeout is tried once more, on its own, with a
        # longer one: on two busy cores a SYN can wait past the first timeout. A denied probe is never
        # retried: anything it got back was already an answer it should not have had.
        late = [p for p in probes if p.expected and per_source[p.src].get(p.target) == "dropped"]
        for p in late:
            argv = _agent_argv(p.src, in_containers, ["probe", str(max(5.0, 3 * timeout)), p.target])
            again = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=120)
            if again.returncode == 0:
                per_source[p.src][p.target] = json.loads(again.stdout.strip().splitlines()[-1])["results"][p.target]
        after = _deny_counter(topo)
    finally:
        for _, proc in listeners:
            try:
                if proc.stdin:
                    proc.stdin.close()
                proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
    outcomes = [Outcome(p, per_source[p.src].get(p.target, "missing")) for p in probes]
    return Run(outcomes, time.monotonic() - started, after - before, busy, len(late))


# --------------------------------------------------------------------------- report


def render(run: Run, topo: Topology) -> str:
    """The matrix as checked: a grid of segments (a cell per source/destination pair) and a summary."""
    endpoints = topo.endpoints()
    index = {ep.segment: i + 1 for i, ep in enumerate(endpoints)}
    cells: dict[tuple[int, int], list[Outcome]] = {}
    for o in run.outcomes:
        cells.setdefault((index[o.probe.src.segment], index[o.probe.dst.segment]), []).append(o)
    ports = sorted({(o.probe.protocol, o.probe.port) for o in run.outcomes})
    lines = [
        f"Isolation matrix: {len(endpoints)} segments x {len(endpoints) - 1} x {len(ports)} ports "
        f"({', '.join(f'{p}/{n}' for p, n in ports)}) = {len(run.outcomes)} probes",
        "cell: the number of allowed ports that connected (. = none allowed; every denied port dropped);"
        " X = a probe went wrong",
        "",
    ]
    width = max(len(ep.segment.label) for ep in endpoints)
    header = " " * (width + 6) + "".join(f"{i % 100:>3}" for i in range(1, len(endpoints) + 1))
    lines.append(header)
    for ep in endpoints:
        i = index[ep.segment]
        row = f"{i:>3} {ep.segment.label:<{width}}  "
        for j in range(1, len(endpoints) + 1):
            if i == j:
                row += "  -"
                continue
            group = cells.get((i, j), [])
            if any(not o.passed for o in group):
                row += "  X"
            else:
                allowed = sum(1 for o in group if o.probe.expected)
                row += f"{allowed:>3}" if allowed else "  ."
        lines.append(row + f"   {ep.name}")
    lines.append("")
    by_scope: Counter[tuple[str, bool, bool]] = Counter()
    for o in run.outcomes:
        by_scope[(o.probe.scope, o.probe.expected, o.passed)] += 1
    for scope in ("intra", "hub", "inter", "hub-internal"):
        allowed_ok = by_scope[(scope, True, True)]
        allowed_all = allowed_ok + by_scope[(scope, True, False)]
        denied_ok = by_scope[(scope, False, True)]
        denied_all = denied_ok + by_scope[(scope, False, False)]
        if allowed_all + denied_all:
            lines.append(f"{scope:<13} allowed {allowed_ok}/{allowed_all} connected, "
                         f"denied {denied_ok}/{denied_all} dropped")
    lines.append("allowed flows: " + ", ".join(
        f"{fid} {n}" for fid, n in sorted(Counter(o.probe.flow for o in run.outcomes if o.probe.flow).items())))
    lines.append(f"router default-deny counter: +{run.deny_counter} packets for {run.denied} denied probes")
    held: dict[str, list[str]] = {}
    for name, specs in sorted(run.busy.items()):
        for spec in specs:
            held.setdefault(spec, []).append(name)
    for spec, names in sorted(held.items()):
        lines.append(f"note: a service already holds {spec} on {len(names)} endpoints; probes there reach it")
    if run.retried:
        lines.append(f"note: {run.retried} allowed probes got no answer within the timeout and were tried again")
    passed = sum(1 for o in run.outcomes if o.passed)
    lines.append(f"{passed}/{len(run.outcomes)} probes as the flow matrix says "
                 f"({100.0 * passed / max(1, len(run.outcomes)):.1f} %) in {run.seconds:.1f} s")
    for o in run.failures[:40]:
        p = o.probe
        want = f"allowed by {p.flow}" if p.flow else "denied"
        lines.append(f"FAIL {p.src.segment.label} ({p.src.name}) -> {p.dst.segment.label} ({p.dst.address}) "
                     f"{p.protocol}/{p.port}: {want}, got {o.result}")
    if len(run.failures) > 40:
        lines.append(f"... and {len(run.failures) - 40} more failures")
    return "\n".join(lines)


def to_json(run: Run) -> list[dict[str, Any]]:
    return [{"source": o.probe.src.segment.label, "source_endpoint": o.probe.src.name,
             "destination": o.probe.dst.segment.label, "destination_address": str(o.probe.dst.address),
             "protocol": o.probe.protocol, "port": o.probe.port, "scope": o.probe.scope, "flow": o.probe.flow,
             "expected": "allow" if o.probe.expected else "deny", "result": o.result, "passed": o.passed}
            for o in run.outcomes]


def write_json(run: Run, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(to_json(run), indent=1) + "\n")
