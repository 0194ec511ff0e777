"""Tenants stay apart, on the lab after `estate configure` (issue 17, item 4, and item 10's runner folder):

- the log collector files a message by the address it came from, never by the HOSTNAME it claims, and
  a flood from one sender stops at its cap while another council's logs still arrive;
- the router answers SSH only on its management leg, a server only from the administration sources;
- an offboarded council's queue, group and agent are retired (renamed, disabled: the agent cannot log in),
  a second converge changes nothing, and the same key added again gets a fresh queue that shows none of
  the old tickets;
- after every run no file under .state/configure/ but secrets.json holds a helpdesk password;
- findings become tickets (issue 15, item 3): `estate tickets sync` twice opens one ticket per failing finding and
  no more, a finding fixed in a copy of the estate resolves its ticket, and a council's agent sees no other
  council's (nor the hub's) compliance tickets.

One lab for the module (up and configured at the start, down at the end); the tests run in file order
(`-p no:randomly`).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from estate import configure
from estate.compliance import evaluate
from estate.configure import agent_name
from estate.inventory import LAB_INVENTORY
from estate.lab.probe import _agent_argv
from estate.lab.topology import Endpoint, Topology
from estate.loader import Estate
from estate.podman import podman_env
from estate.tickets import RtClient, duplicates, queue_of, tls_context

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parent.parent
STATE = REPO / ".state" / "configure"


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[Estate, Topology]]:
    from estate.lab.lab import down, plan, up

    up(REPO, progress=False)
    try:
        estate, topo = plan(REPO)
        result = configure.run(estate, inventory=REPO / LAB_INVENTORY)
        assert result.exit_code == 0, {h: t.errors for h, t in result.tally.hosts.items() if t.errors}
        yield estate, topo
    finally:
        down(REPO, progress=False)


def converge(estate: Estate, host: str, **overrides: Any) -> configure.HostTally:
    result = configure.run(estate, inventory=REPO / LAB_INVENTORY, host=host, overrides=overrides)
    assert result.exit_code == 0, result.tally.hosts[host].errors
    assert_no_second_copy_of_a_password()
    return result.tally.hosts[host]


def assert_no_second_copy_of_a_password() -> None:
    stored = json.loads((STATE / "secrets.json").read_text(encoding="utf-8"))
    passwords = [stored["helpdesk_root_password"], stored["helpdesk_rest_password"], stored["helpdesk_api_token"],
                 *stored["agents"].values()]
    holders = [str(f.relative_to(STATE)) for f in STATE.rglob("*") if f.is_file()
               and any(p.encode() in f.read_bytes() for p in passwords)]
    assert holders == ["secrets.json"]


def podman(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(["podman", *args], input=stdin, capture_output=True, text=True, check=True,
                          env=podman_env(REPO), timeout=300)
    return done.stdout


def probe(endpoint: Endpoint, targets: list[str], timeout: float = 1.5) -> dict[str, str]:
    done = subprocess.run(_agent_argv(endpoint, True, ["probe", str(timeout), *targets]), capture_output=True,
                          text=True, check=True, env=podman_env(REPO), timeout=60)
    results: dict[str, str] = json.loads(done.stdout)["results"]
    return results


def probe_on(topo: Topology, site: str, segment: str) -> Endpoint:
    point = next(p for p in topo.probes if p.segment.site == site and p.segment.name == segment)
    return Endpoint(point.segment, point.address, point.netns, None, point.netns)


# --------------------------------------------------------------------------- runner folder (item 10)


def test_configure_leaves_no_second_copy_of_a_password(lab: tuple[Estate, Topology]) -> None:
    assert_no_second_copy_of_a_password()
    assert not list(STATE.glob(".secret-vars.*")) and not (STATE / "runner" / "env").exists()


# --------------------------------------------------------------------------- administration ports


def test_router_answers_ssh_only_on_its_management_leg(lab: tuple[Estate, Topology]) -> None:
    estate, topo = lab
    port = estate.framework.network.administration.linux_port
    council = sorted(estate.councils)[0]
    for vlan in ("guest", "voice", "printers"):
        point = probe_on(topo, council, vlan)
        gateway = f"tcp/{point.segment.gateway}/{port}"
        assert probe(point, [gateway])[gateway] != "open", f"the router answers SSH on the {vlan} leg"
    management = probe_on(topo, "shared", "management")
    router = f"tcp/{topo.router.address}/{port}"
    assert probe(management, [router])[router] == "open"


def test_a_server_answers_ssh_only_from_the_administration_sources(lab: tuple[Estate, Topology]) -> None:
    estate, topo = lab
    port = estate.framework.network.administration.linux_port
    app = next(h for h in topo.hosts if h.role == "app_server")
    target = f"tcp/{app.address}/{port}"
    # from its own VLAN's gateway address (the router's leg: same segment, so no flow matrix in between)
    leg = Endpoint(app.segment, app.segment.gateway, topo.router.name, None, topo.router.netns)
    assert probe(leg, [target])[target] != "open"
    assert probe(probe_on(topo, "shared", "management"), [target])[target] == "open"


# --------------------------------------------------------------------------- the log collector


def send_logs(container: str, collector: str, port: int, claimed: str, marker: str, count: int = 1,
              padding: int = 0) -> None:
    code = ("import socket, sys\n"
            "s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)\n"
            "n = int(sys.argv[5])\n"
            "for i in range(n):\n"
            "    s.sendall(('<13>Nov 22 01:00:00 %s estate-test: %s-%06d %s\\n'\n"
            "               % (sys.argv[3], sys.argv[4], i, 'x' * int(sys.argv[6]))).encode())\n"
            "s.close()\n")
    podman("exec", "-i", container, "python3", "-", collector, str(port), claimed, marker, str(count), str(padding),
           stdin=code)


def filed_under(collector: str, directory: str, marker: str) -> list[str]:
    """The files holding `marker` on the collector, once it has written them (polled, up to ~60 s)."""
    for _ in range(120):
        done = subprocess.run(["podman", "exec", collector, "grep", "-rl", "--", marker, directory],
                              capture_output=True, text=True, check=False, env=podman_env(REPO), timeout=60)
        if done.returncode == 0:
            return sorted(done.stdout.split())
        time.sleep(0.5)
    return []


def test_the_collector_files_by_sender_address_not_claimed_hostname(lab: tuple[Estate, Topology]) -> None:
    estate, topo = lab
    collector = next(h for h in topo.hosts if h.role == "log_collector")
    port = estate.framework.security.logging.forward_port
    a, b = sorted(estate.councils)[:2]
    sender = next(h for h in topo.hosts if h.site == a and h.role == "app_server")
    victim = next(h for h in topo.hosts if h.site == b and h.role == "app_server")
    marker = f"forged-{time.time_ns()}"
    send_logs(sender.container, str(collector.address), port, victim.name, marker)
    assert filed_under(collector.container, "/var/log/remote", marker) == [f"/var/log/remote/{a}/{sender.name}.log"]
    line = podman("exec", collector.container, "grep", "--", marker, f"/var/log/remote/{a}/{sender.name}.log")
    assert f"from={sender.address} claims={victim.name}" in line


def test_a_flood_from_one_sender_stops_at_its_cap_and_other_councils_still_arrive(
        lab: tuple[Estate, Topology]) -> None:
    estate, topo = lab
    collector = next(h for h in topo.hosts if h.role == "log_collector")
    port = estate.framework.security.logging.forward_port
    converge(estate, collector.name, log_collector_sender_cap_mb=1)
    a, b = sorted(estate.councils)[:2]
    # the infrastructure services hosts: their VLAN may send logs to the hub (the flow matrix)
    flooder = next(h for h in topo.hosts if h.site == a and h.role == "dc_services")
    other = next(h for h in topo.hosts if h.site == b and h.role == "dc_services")
    flood = f"flood-{time.time_ns()}"
    send_logs(flooder.container, str(collector.address), port, flooder.name, flood, count=4000, padding=900)
    last = f"{flood}-003999"
    assert filed_under(collector.container, "/var/log/remote", last)  # the newest lines are kept
    sizes = podman("exec", collector.container, "sh", "-c",
                   f"stat -c %s /var/log/remote/{a}/{flooder.name}.log*").split()
    assert len(sizes) == 2 and sum(int(s) for s in sizes) <= 2 * 1024 * 1024 + 64 * 1024, sizes  # 3.7 MB sent
    marker = f"after-the-flood-{time.time_ns()}"
    send_logs(other.container, str(collector.address), port, other.name, marker)
    assert filed_under(collector.container, "/var/log/remote", marker) == [f"/var/log/remote/{b}/{other.name}.log"]


# --------------------------------------------------------------------------- the helpdesk


def rest(address: str, user: str, password: str, method: str, path: str,
         body: dict[str, Any] | None = None) -> tuple[int, Any]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the helpdesk's self-signed certificate
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(f"https://{address}/rt/REST/2.0/{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        text = err.read()
        try:
            return err.code, json.loads(text)
        except ValueError:
            return err.code, text.decode(errors="replace")


QUEUES = """
use lib '/usr/share/request-tracker5/lib'; use lib '/etc/request-tracker5';
use RT; use JSON; RT::LoadConfig(); RT::Init();
my $q = RT::Queues->new(RT->SystemUser); $q->UnLimit; $q->FindAllRows;
my %out;
while (my $queue = $q->Next) {
    my $mark = $queue->FirstAttribute('EstateCouncil');
    $out{$queue->Name} = {disabled => $queue->Disabled ? 1 : 0, council => $mark ? $mark->Content : undef};
}
my $u = RT::Users->new(RT->SystemUser); $u->UnLimit; $u->FindAllRows;
my %users;
while (my $user = $u->Next) { $users{$user->Name} = $user->Disabled ? 1 : 0 }
print encode_json({queues => \\%out, users => \\%users});
"""


def rt_records(container: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(podman("exec", "-i", container, "perl", "-", stdin=QUEUES))
    return out


def test_an_offboarded_council_is_retired_and_a_new_one_with_its_key_starts_afresh(
        lab: tuple[Estate, Topology]) -> None:
    estate, topo = lab
    helpdesk = next(h for h in topo.hosts if h.role == "helpdesk")
    address = str(helpdesk.mgmt_address)
    secrets = json.loads((STATE / "secrets.json").read_text(encoding="utf-8"))
    leaving = sorted(estate.councils)[-1]
    agent, password = agent_name(leaving), secrets["agents"][leaving]
    status, ticket = rest(address, "estate-automation", secrets["helpdesk_rest_password"], "POST", "ticket",
                          {"Queue": leaving, "Subject": f"before {leaving} left"})
    assert status == 201, ticket
    assert rest(address, agent, password, "GET", f"ticket/{ticket['id']}")[0] == 200

    everyone = configure.playbook_vars(estate, configure.load_secrets(STATE / "secrets.json", estate.councils),
                                       STATE / "router.nft")["estate_helpdesk_councils"]
    remaining = [c for c in everyone if c["key"] != leaving]
    changed = converge(estate, helpdesk.name, estate_helpdesk_councils=remaining)
    assert changed.changed > 0
    records = rt_records(helpdesk.container)
    assert leaving not in records["queues"]
    departed = [name for name in records["queues"] if name.startswith(f"{leaving}-departed-")]
    assert len(departed) == 1 and records["queues"][departed[0]]["disabled"] == 1
    assert agent not in records["users"]
    assert [records["users"][u] for u in records["users"] if u.startswith(f"{agent}-departed-")] == [1]
    assert rest(address, agent, password, "GET", "queues/all")[0] == 401  # the old agent cannot log in
    for key in sorted(estate.councils)[:-1]:  # the others are untouched
        assert records["queues"][key] == {"disabled": 0, "council": key}

    again = converge(estate, helpdesk.name, estate_helpdesk_councils=remaining)
    assert again.changed == 0, again.changes

    back = converge(estate, helpdesk.name, estate_helpdesk_councils=everyone)  # the same key, a later council
    assert back.changed > 0
    records = rt_records(helpdesk.container)
    assert records["queues"][leaving] == {"disabled": 0, "council": leaving}
    assert records["queues"][departed[0]]["disabled"] == 1
    status, _ = rest(address, agent, password, "GET", f"ticket/{ticket['id']}")
    assert status == 403  # the new agent of the same key sees none of the departed council's tickets
    status, found = rest(address, agent, password, "GET", "tickets?query=id%3E0")
    assert status == 200 and all(str(t["id"]) != str(ticket["id"]) for t in found["items"])


# --------------------------------------------------------------------------- findings become tickets (issue 15 item 3)


def estate_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = str(Path(sys.executable).parent / "estate")
    return subprocess.run([command, *args], capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, **(env or {})})


def lab_token() -> str:
    """The automation user's auth string, made as `estate tickets sync` makes it from the lab's files."""
    api = json.loads((STATE / "rt-api.json").read_text(encoding="utf-8"))
    secret = json.loads((STATE / "secrets.json").read_text(encoding="utf-8"))["helpdesk_api_token"]
    return f"1-{api['user_id']}-{secret}"


def test_findings_become_tickets_once_resolve_when_fixed_and_stay_in_their_councils_queue(
        lab: tuple[Estate, Topology], tmp_path: Path) -> None:
    estate, topo = lab
    helpdesk = next(h for h in topo.hosts if h.role == "helpdesk")
    url = f"https://{helpdesk.mgmt_address}/rt"
    # the token reaches the CLI through the lab's files (or ESTATE_RT_TOKEN), never a command line
    first = estate_cli("tickets", "sync", "--root", str(REPO))
    assert first.returncode == 0, first.stderr
    second = estate_cli("tickets", "sync", "--root", str(REPO))
    assert second.returncode == 0, second.stderr
    assert all(line.split()[1:3] == ["0", "0"] for line in second.stdout.splitlines()[1:]), second.stdout

    # one ticket per failing finding, in its council's queue (the hub's in the operations queue), none twice
    fw = estate.framework
    cf = fw.helpdesk.tickets.fingerprint_field
    client = RtClient(url, lab_token(), tls_context(STATE / "rt-ca.pem", False, True))
    report = evaluate(estate)
    for key, result in report.councils.items():
        queue = queue_of(key, fw)
        counts = duplicates(client, queue, cf)
        assert set(counts.values()) <= {1}, (queue, counts)
        assert {f.fingerprint for f in result.findings if f.failing} <= set(counts), queue
    newham = report.councils["newham"]
    fixed = next(f for f in newham.findings if f.failing and f.rule_id == "DCN-004" and f.resource == "nwm-app01")

    # a copy of the estate where Newham's server now encrypts its data: its ticket is resolved, with a comment
    copy = tmp_path / "estate"
    copy.mkdir()
    shutil.copy(REPO / "framework.yaml", copy / "framework.yaml")
    shutil.copytree(REPO / "inventories", copy / "inventories")
    register = copy / "inventories" / "newham" / "council.yml"
    text = register.read_text(encoding="utf-8")
    line = next(t for t in text.splitlines() if "{name: nwm-app01," in t)
    register.write_text(text.replace(line, line.replace("encrypted: false", "encrypted: true")), encoding="utf-8")
    # the copy reaches the lab as the repo does: its .state is the repo's (the lab inventory, rt-api.json, the pinned
    # certificate); with --url and --ca-file the host name is checked, and the lab's certificate names the container
    (copy / ".state").symlink_to(REPO / ".state", target_is_directory=True)
    third = estate_cli("tickets", "sync", "--root", str(copy), "--council", "newham",
                       env={"ESTATE_RT_TOKEN": lab_token()})
    assert third.returncode == 0, third.stderr
    assert third.stdout.splitlines()[1].split()[0] == "newham" and third.stdout.splitlines()[1].split()[4] == "1"
    found = client.search(f"Queue = 'newham' AND 'CF.{{{cf}}}' = '{fixed.fingerprint}'", "Status")
    assert [t["Status"] for t in found] == ["resolved"]
    # a refused token: one line naming the endpoint, exit 2
    refused = estate_cli("tickets", "sync", "--root", str(copy), "--council", "newham",
                         env={"ESTATE_RT_TOKEN": "1-1-" + "0" * 32})
    assert refused.returncode == 2 and refused.stderr.splitlines() == [
        f"{url}: the helpdesk refused the token (401 Unauthorized)"]

    # council A's agent sees none of council B's compliance tickets, nor the hub's
    secrets = json.loads((STATE / "secrets.json").read_text(encoding="utf-8"))
    a, b = "newham", "waltham-forest"
    b_ticket = next(iter(duplicates(client, b, cf)))
    b_id = client.search(f"Queue = '{b}' AND 'CF.{{{cf}}}' = '{b_ticket}'", "Status")[0]["id"]
    address = str(helpdesk.mgmt_address)
    status, _ = rest(address, agent_name(a), secrets["agents"][a], "GET", f"ticket/{b_id}")
    assert status == 403
    for queue in (b, fw.helpdesk.tickets.operations_queue):
        query = urllib.parse.quote(f"Queue = '{queue}'")
        status, seen = rest(address, agent_name(a), secrets["agents"][a], "GET", f"tickets?query={query}")
        # RT answers an empty search, or refuses the search on a queue the agent may not see
        assert status in (400, 403, 404) or (status == 200 and seen["items"] == []), (queue, status, seen)
    status, own = rest(address, agent_name(a), secrets["agents"][a], "GET",
                       "tickets?query=" + urllib.parse.quote(f"Queue = '{a}'"))
    assert status == 200 and own["total"] > 0
