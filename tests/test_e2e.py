"""End to end, on the lab: lab up -> estate configure -> a second configure changes nothing -> estate check
--hosts judges the live hosts and they pass -> a ticket made through RT's REST API in one council's queue is
invisible to another council's agent -> drift is reported by --check without being changed -> a host
stopped during a configure is reported unreachable while the others converge, and the next configure heals
it -> lynis scores a configured host at least 80, beside the bare image's score.

One lab for the module (up at the start, down at the end); the tests run in file order and build on each
other (`make labtests` passes -p no:randomly).
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from estate.inventory import LAB_INVENTORY, inventory_hosts, load_inventory
from estate.podman import podman_env

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parent.parent
ESTATE = str(Path(sys.executable).parent / "estate")
TODAY = "2026-11-22"
LYNIS_MIN = 80
KIOSK_SESSION = "/etc/estate/kiosk-session"


@pytest.fixture(scope="module")
def lab() -> Iterator[dict[str, dict[str, Any]]]:
    """The lab, up; yields its hosts (inventory name -> vars and groups). Down at the end."""
    from estate.lab.lab import down, up

    up(REPO, progress=False)
    try:
        yield inventory_hosts(load_inventory(REPO / LAB_INVENTORY))
    finally:
        down(REPO, progress=False)


def estate(*args: str, timeout: int = 3600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([ESTATE, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)
    shown = f"{proc.stdout[-4000:]}{proc.stderr[-2000:]}"
    sys.stdout.write(f"$ estate {' '.join(args)}  (exit {proc.returncode})\n{shown}\n")
    return proc


def totals(output: str) -> dict[str, int]:
    """The summary table's total row: ok, changed (or drift), failed, unreachable, skipped."""
    row = next(line for line in output.splitlines() if re.match(r"^\W*total\W", line))
    ok, changed, failed, unreachable, skipped = (int(n) for n in re.findall(r"\d+", row))
    return {"ok": ok, "changed": changed, "failed": failed, "unreachable": unreachable, "skipped": skipped}


def podman(*args: str, check: bool = True) -> str:
    from estate.lab.lab import Podman

    return Podman(REPO)(*args, check=check, timeout=600)


def host_of(lab: dict[str, dict[str, Any]], role: str, council: str | None = None) -> str:
    return sorted(n for n, h in lab.items() if h["vars"].get("estate_role") == role
                  and (council is None or h["vars"].get("estate_council") == council))[0]


def councils(lab: dict[str, dict[str, Any]]) -> list[str]:
    return sorted({h["vars"]["estate_council"] for h in lab.values()} - {"shared"})


def test_configure_converges_every_host(lab: dict[str, dict[str, Any]]) -> None:
    proc = estate("configure", "--quiet")
    assert proc.returncode == 0
    for name in lab:
        assert re.search(rf"\b{re.escape(name)}\b", proc.stdout), f"{name} is missing from the summary"
    t = totals(proc.stdout)
    assert t["failed"] == 0 and t["unreachable"] == 0 and t["changed"] > 0


def test_second_configure_changes_nothing(lab: dict[str, dict[str, Any]]) -> None:
    proc = estate("configure", "--quiet")
    assert proc.returncode == 0
    assert totals(proc.stdout)["changed"] == 0


RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
# In stdout mode navigator passes on what ansible-runner's display callback writes: each event's data base64-encoded
# between erase-line (ESC [K) and cursor-back (ESC [<n>D) sequences, which a terminal hides.
RUNNER_EVENT = re.compile(r"\x1b\[K(?:[A-Za-z0-9+/=]*\x1b\[\d+D)?")


def navigator_site(limit: str) -> dict[str, dict[str, int]]:
    """`ansible-navigator run playbooks/site.yml --ee false -m stdout -i inventories/estate.yml` from the repo root
    (ansible-navigator.yml and ansible.cfg read from there), the plugin's inventory, no estate CLI: the PLAY RECAP
    per host."""
    cmd = [str(Path(sys.executable).parent / "ansible-navigator"), "run", "playbooks/site.yml", "--ee", "false",
           "-m", "stdout", "-i", "inventories/estate.yml", "--limit", limit]
    env = podman_env(REPO)  # os.environ, and the venv's ansible-playbook first on PATH
    # SSH pipelining, as `estate configure` runs (and as an AWX job may set it): a setting of Ansible's, not the CLI's
    env.update(PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}", ANSIBLE_NOCOLOR="1",
               ANSIBLE_PIPELINING="True")
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800, check=False)
    out = RUNNER_EVENT.sub("", proc.stdout)
    sys.stdout.write(f"$ {' '.join(cmd[1:])}  (exit {proc.returncode})\n{out[-3000:]}{proc.stderr[-2000:]}\n")
    recap = {m[0]: {"ok": int(m[1]), "changed": int(m[2]), "unreachable": int(m[3]), "failed": int(m[4])}
             for m in RECAP.findall(out.split("PLAY RECAP")[-1])}
    assert recap, "no PLAY RECAP"
    return recap


def test_ansible_navigator_runs_the_site_with_the_plugin_inventory(lab: dict[str, dict[str, Any]]) -> None:
    """Issue 16: the roles run without the estate CLI, as ansible-navigator (and AWX) run them, on the lab
    `estate configure` converged: 0 failed, then 0 changed. One host (`--limit`, the first council's app server,
    which runs the baseline), not the whole lab: without configure's Mitogen strategy a run is slow, and measured
    under load two runs over one council's 3 hosts took 10 minutes, far past the three minutes this module may add
    to CI (README: AWX, Automation Platform and ansible-navigator). The plugin's whole inventory is still read."""
    host = host_of(lab, "app_server", councils(lab)[0])
    first = navigator_site(host)
    assert set(first) == {host}
    assert all(r["failed"] == 0 and r["unreachable"] == 0 and r["ok"] > 0 for r in first.values()), first
    again = navigator_site(host)
    assert set(again) == {host}
    assert all(r["failed"] == 0 and r["unreachable"] == 0 and r["changed"] == 0 for r in again.values()), again


def test_check_hosts_judges_the_live_hosts(lab: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    proc = estate("check", "--hosts", "--today", TODAY, "--format", "json", "--output", str(out))
    assert proc.returncode in (0, 1), proc.stderr  # 1: the asset registers' own findings, judged too
    report = json.loads(out.read_text(encoding="utf-8"))
    findings = [f for c in report["councils"].values() for f in c["findings"] if f["kind"] == "host"]
    judged = {f["resource"] for f in findings}
    assert judged == set(lab), f"hosts not judged: {set(lab) - judged}"
    # a finding an active exemption covers is exempt and not enforced on that host (the exemption switched the
    # control's tasks off there, issue 14); everything else passes
    exempt = [f for f in findings if f["status"] == "exempt"]
    assert all(f["exemption"] and f.get("not_enforced") for f in exempt), exempt
    failing = [(f["resource"], f["rule"], f["message"]) for f in findings if f["status"] not in ("pass", "exempt")]
    assert not failing, failing


def _rest(address: str, user: str, password: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(f"https://{address}/rt/REST/2.0/{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the helpdesk's self-signed certificate
    try:
        with urllib.request.urlopen(request, context=context, timeout=60) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as err:
        text = err.read()
        try:
            return err.code, json.loads(text)
        except ValueError:
            return err.code, text.decode(errors="replace")


def test_ticket_in_one_councils_queue_is_invisible_to_another(lab: dict[str, dict[str, Any]]) -> None:
    from estate.configure import agent_name

    secrets = json.loads((REPO / ".state" / "configure" / "secrets.json").read_text(encoding="utf-8"))
    address = lab[host_of(lab, "helpdesk")]["vars"]["ansible_host"]
    a, b = councils(lab)[:2]
    status, ticket = _rest(address, "estate-automation", secrets["helpdesk_rest_password"], "POST", "ticket",
                           {"Queue": a, "Subject": f"e2e: a ticket for {a} only"})
    assert status == 201, ticket
    tid = ticket["id"]
    status, seen = _rest(address, agent_name(a), secrets["agents"][a], "GET", f"ticket/{tid}")
    assert status == 200 and seen["Queue"]["id"] and seen["Subject"] == f"e2e: a ticket for {a} only"
    status, _ = _rest(address, agent_name(b), secrets["agents"][b], "GET", f"ticket/{tid}")
    assert status == 403
    status, found = _rest(address, agent_name(b), secrets["agents"][b], "GET", "tickets?query=id%3E0")
    assert status == 200 and all(str(t["id"]) != str(tid) for t in found["items"])
    status, found = _rest(address, agent_name(a), secrets["agents"][a], "GET", "tickets?query=id%3E0")
    assert status == 200 and str(tid) in {str(t["id"]) for t in found["items"]}


@pytest.fixture(scope="module")
def victim(lab: dict[str, dict[str, Any]]) -> str:
    """A thin client of the last council: the host the next tests break."""
    return host_of(lab, "thin_client", councils(lab)[-1])


def test_check_mode_reports_drift_and_changes_nothing(lab: dict[str, dict[str, Any]], victim: str) -> None:
    container = lab[victim]["vars"]["estate_container"]
    council = lab[victim]["vars"]["estate_council"]
    podman("exec", container, "rm", "-f", KIOSK_SESSION)
    proc = estate("configure", "--check", "--council", council, "--quiet")
    assert proc.returncode == 1  # drift
    assert totals(proc.stdout)["changed"] >= 1
    assert re.search(rf"^{re.escape(victim)} drifts: .*2\.4", proc.stdout, re.M), proc.stdout
    assert not [line for line in proc.stdout.splitlines() if " drifts: " in line and not line.startswith(victim)]
    assert subprocess.run(["podman", "exec", container, "test", "-e", KIOSK_SESSION], env=podman_env(REPO),
                          check=False).returncode == 1  # still missing: --check changed nothing


def test_host_stopped_during_configure_is_unreachable_and_the_next_run_heals_it(
        lab: dict[str, dict[str, Any]], victim: str) -> None:
    from estate import configure
    from estate.loader import load_estate

    container = lab[victim]["vars"]["estate_container"]
    stopped = threading.Event()

    def stop_once(event: Any) -> None:
        data = event.get("event_data") or {}
        if event.get("event") == "runner_on_ok" and data.get("host") == victim and not stopped.is_set():
            stopped.set()
            threading.Thread(target=podman, args=("stop", "-t", "0", container), daemon=True).start()

    est = load_estate(REPO)
    council = lab[victim]["vars"]["estate_council"]
    members = {n for n, h in lab.items() if h["vars"]["estate_council"] == council}
    result = configure.run(est, inventory=REPO / LAB_INVENTORY, council=council, on_event=stop_once)
    assert stopped.is_set()
    tally = result.tally.hosts
    print({name: (t.ok, t.changed, t.failed, t.unreachable) for name, t in sorted(tally.items())})
    assert result.exit_code == 1
    assert tally[victim].unreachable >= 1
    others = {name: t for name, t in tally.items() if name != victim}
    assert set(others) == members - {victim} and others
    assert all(t.failed == 0 and t.unreachable == 0 and t.changed == 0 and t.ok > 40 for t in others.values()), others

    assert estate("lab", "up", "-q").returncode == 0  # starts the stopped host and waits for its sshd
    healed = configure.run(est, inventory=REPO / LAB_INVENTORY, council=council)
    tally = healed.tally.hosts
    assert healed.exit_code == 0
    assert tally[victim].changed >= 1 and tally[victim].unreachable == 0  # the kiosk session is back
    assert all(t.changed == 0 for name, t in tally.items() if name != victim)
    podman("exec", container, "test", "-s", KIOSK_SESSION)


def _lynis(container: str) -> int:
    """Install Debian's lynis in the container and return its hardening index."""
    env = podman_env(REPO)

    def run(script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podman", "exec", container, "sh", "-c", script], env=env, capture_output=True,
                              text=True, timeout=900, check=False)

    run("systemctl is-system-running --wait")
    install = run("export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q --no-install-recommends lynis "
                  "|| { apt-get update -q && apt-get install -y -q --no-install-recommends lynis; }")
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    audit = run("lynis audit system --quick --no-colors")
    match = re.search(r"Hardening index : (\d+)", audit.stdout)
    assert match, audit.stdout[-2000:] + audit.stderr[-2000:]
    return int(match.group(1))


def test_lynis_hardening_index(lab: dict[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    from estate.lab.image import ensure_image

    configured = host_of(lab, "app_server")
    bare = "molecule-lynis-bare"
    podman("rm", "-f", "-t", "0", bare, check=False)
    podman("run", "-d", "--name", bare, "--cap-add", "NET_ADMIN", ensure_image(REPO, progress=False), "/sbin/init")
    try:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=2) as pool:
            mine = pool.submit(_lynis, lab[configured]["vars"]["estate_container"])
            base = pool.submit(_lynis, bare)
            scores = {configured: mine.result(), "bare image": base.result()}
    finally:
        podman("rm", "-f", "-t", "0", bare, check=False)
    with capsys.disabled():
        print(f"\nlynis hardening index: {configured} (configured) {scores.get(configured)}, "
              f"bare image {scores.get('bare image')}")
    assert scores[configured] >= LYNIS_MIN
    assert scores[configured] > scores["bare image"]
