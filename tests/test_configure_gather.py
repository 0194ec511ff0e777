"""Host fact gathering without hosts: the script's output parsed into HostFacts, targets from an inventory,
unreachable hosts, and the facts judged by the compliance engine."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from estate.compliance import gather as g
from estate.controls.data_centre import c3_9_server_operating_systems as server_os
from estate.controls.desktop import c2_4_screen_lock as screen_lock
from estate.controls.desktop import c2_5_usb_storage as usb_storage
from estate.controls.desktop import c2_7_rdp_client as rdp_client
from estate.controls.desktop import c2_8_local_admin as admin
from estate.controls.facts import HostFacts
from estate.controls.security import c5_1_patching as patching
from estate.controls.security import c5_2_lockout as lockout
from estate.controls.security import c5_3_passwords as passwords
from estate.controls.security import c5_5_default_accounts as default_accounts
from estate.controls.security import c5_6_host_firewall as host_firewall
from estate.controls.security import c5_7_ssh as ssh
from estate.controls.security import c5_8_logging as logs
from estate.controls.security import c5_9_time_sync as time_sync
from estate.loader import Estate

DATA = Path(__file__).parent / "data" / "gather"

NFT = json.dumps({"nftables": [
    {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
    {"chain": {"family": "inet", "table": "estate_host", "name": "input", "handle": 1, "type": "filter",
               "hook": "input", "prio": 0, "policy": "drop"}},
    {"chain": {"family": "inet", "table": "estate_host", "name": "forward", "handle": 2, "type": "filter",
               "hook": "forward", "prio": 0, "policy": "drop"}},
]})


def _output(**sections: str) -> str:
    parts = [f"\n{g.MARK}{name.replace('_', '-')}\n{text}" for name, text in sections.items()]
    return "".join(parts) + f"\n{g.MARK}end\n"


def test_sections_split_at_markers() -> None:
    out = _output(os_release="ID=debian\nVERSION_ID=\"12\"", sshd="")
    assert g.sections(out) == {"os-release": 'ID=debian\nVERSION_ID="12"', "sshd": "", "end": ""}


def test_parse_small_pieces() -> None:
    os_release = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
    assert server_os.parse_os(os_release) == ("debian", "12")
    assert ssh.parse_sshd("port 22\npermitrootlogin without-password\nPasswordAuthentication no\n") == {
        "port": "22", "permitrootlogin": "without-password", "passwordauthentication": "no"}
    assert host_firewall.parse_nft_input_policy(NFT) == "drop"
    assert host_firewall.parse_nft_input_policy('{"nftables": [{"metainfo": {}}]}') is None
    assert host_firewall.parse_nft_input_policy("") is None
    accept = NFT.replace('"drop"}}, {"chain"', '"accept"}}, {"chain"', 1)
    assert host_firewall.parse_nft_input_policy(accept) == "accept"
    listen = ("LISTEN 0      128          0.0.0.0:22        0.0.0.0:*\n"
              "LISTEN 0      511             [::]:443          [::]:*\n"
              "LISTEN 0      4096   127.0.0.53%lo:53        0.0.0.0:*\n")
    assert g.parse_listening_tcp(listen) == [22, 53, 443]
    accounts, login = default_accounts.parse_passwd(
        "root:x:0:0:root:/root:/bin/bash\nsync:x:4:65534:sync:/bin:/bin/sync\n"
        "kiosk:x:1000:1000::/home/kiosk:/bin/sh\nnews:x:9:9:news:/var:/usr/sbin/nologin\n")
    assert accounts == ["root", "sync", "kiosk", "news"] and login == ["root", "kiosk"]
    assert time_sync.parse_chrony_sources(
        "^,?,10.64.19.10,0,6,0,377,+0.0,+0.0,0.0,0.0\n=,?,10.0.0.1,1,6,0,0,0,0,0,0\n") == ["10.64.19.10"]
    assert g.parse_services("ssh.service loaded active running OpenBSD Secure Shell server\n"
                            "cron.service loaded active running cron\n") == ["cron", "ssh"]


@pytest.mark.parametrize(("conf", "auth", "deny"), [
    ("deny = 10\nunlock_time = 900\n", "auth requisite pam_faillock.so preauth\n", 10),
    ("# deny = 10\n", "auth requisite pam_faillock.so preauth\n", 3),  # pam_faillock's default
    ("deny = 10\n", "auth [success=1 default=ignore] pam_unix.so nullok\n", None),  # not in the stack
    ("deny = 10\n", "# auth requisite pam_faillock.so preauth\n", None),
])
def test_faillock_counts_only_when_pam_uses_it(conf: str, auth: str, deny: int | None) -> None:
    assert lockout.parse_faillock(conf, auth) == deny


def test_password_length_only_when_pam_checks_it() -> None:
    stack = "password requisite pam_pwquality.so retry=3\n"
    assert passwords.parse_pass_min_len("minlen = 12\n", stack) == 12
    assert passwords.parse_pass_min_len("", stack) == 8
    assert passwords.parse_pass_min_len("minlen = 12\n", "password [success=1] pam_unix.so obscure\n") is None


def test_unattended_upgrades_needs_package_setting_and_timer() -> None:
    periodic = 'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n'
    assert patching.parse_unattended("install ok installed", periodic, "enabled")
    off = periodic.replace('Upgrade "1"', 'Upgrade "0"')
    assert not patching.parse_unattended("install ok installed", off, "enabled")
    assert not patching.parse_unattended("", periodic, "enabled")
    assert not patching.parse_unattended("install ok installed", periodic, "disabled")


def test_log_forward_rainerscript_and_legacy() -> None:
    rainer = ('module(load="imuxsock")\n*.* action(type="omfwd" target="10.64.0.11" port="514" protocol="tcp"\n'
              '           queue.type="LinkedList")\n')
    assert logs.parse_log_forward(rainer, "active") == "10.64.0.11:514"
    assert logs.parse_log_forward(rainer, "inactive") is None
    assert logs.parse_log_forward("*.* @@logs.example:1514\n", "active") == "logs.example:1514"
    assert logs.parse_log_forward('# *.* action(type="omfwd" target="x" port="1")\n', "active") is None
    assert logs.parse_log_forward('action(type="omfile" file="/var/log/x")\n', "active") is None


def test_thin_client_facts() -> None:
    assert screen_lock.parse_screen_lock("xset s 600 0\nxss-lock -- slock &\n") == 10
    assert screen_lock.parse_screen_lock("xset s 90 0\n") == 2  # rounded up: it locks within 2 minutes
    assert screen_lock.parse_screen_lock("# xset s 600\n") is None
    assert screen_lock.parse_screen_lock("xset s 0 0\n") is None  # off
    assert usb_storage.parse_usb_blocked("install usb-storage /bin/false\nblacklist usb-storage\n")
    assert usb_storage.parse_usb_blocked("install usb_storage /bin/true\n")
    assert not usb_storage.parse_usb_blocked("blacklist usb-storage\n")  # blacklisting alone still loads on demand
    assert not usb_storage.parse_usb_blocked("# install usb-storage /bin/false\n")
    rdp = "freerdp2-x11 install ok installed\nremmina deinstall ok config-files\n"
    assert rdp_client.parse_rdp(rdp, g.rdp_candidates("freerdp2-x11")) == "freerdp2-x11"
    assert rdp_client.parse_rdp("remmina install ok installed\n", g.rdp_candidates("freerdp2-x11")) == "remmina"
    assert rdp_client.parse_rdp("", g.RDP_CLIENTS) is None
    user = "kiosk:x:1000:1000::/home/kiosk:/bin/sh"
    assert admin.parse_kiosk_sudo(user, "User kiosk is not allowed to run sudo on tc01.", "kiosk audio video") is False
    assert admin.parse_kiosk_sudo(user, "User kiosk may run the following commands on tc01:\n    (ALL) ALL", "kiosk")
    assert admin.parse_kiosk_sudo(user, "User kiosk is not allowed to run sudo on tc01.", "kiosk sudo") is True
    assert admin.parse_kiosk_sudo("", "sudo: unknown user kiosk", "") is None


def test_ntp_servers_of_a_running_chronyd() -> None:
    conf = "server 10.64.26.138 iburst\npool 2.debian.pool.ntp.org iburst\n# server 192.0.2.1\nallow 10.64.0.0/11\n"
    sources = "^,?,10.64.26.138,0,6,0,0,+0.0,+0.0,0.0,0.0\n"
    assert time_sync.parse_ntp_servers("active", sources, conf) == ["10.64.26.138", "2.debian.pool.ntp.org"]
    assert time_sync.parse_ntp_servers("inactive", sources, conf) == []


def test_no_answer_is_unreachable() -> None:
    target = g.Target("hav-tc01", "havering", "thin_client", "podman://se-hav-tc01")
    facts = g.parse(target, "")
    assert facts == HostFacts(host="hav-tc01", council="havering", role="thin_client", reachable=False)
    truncated = g.parse(target, _output(os_release="ID=debian").replace(f"{g.MARK}end", ""))
    assert not truncated.reachable


def test_gather_runs_in_parallel_and_survives_a_dead_host() -> None:
    targets = [g.Target(f"h{i}", "havering", "app_server", f"podman://se-h{i}") for i in range(6)]
    seen: list[str] = []

    def runner(target: g.Target, script: str, timeout: float) -> str:
        seen.append(target.host)
        assert "### estate-section" in script and "freerdp2-x11" in script
        if target.host == "h3":
            raise ConnectionError("no route to host")
        return _output(os_release="ID=debian\nVERSION_ID=12")

    facts = g.gather(targets, approved_rdp="freerdp2-x11", runner=runner)
    assert [f.host for f in facts] == [t.host for t in targets]  # the targets' order
    assert sorted(seen) == sorted(t.host for t in targets)
    assert [f.reachable for f in facts] == [True, True, True, False, True, True]
    assert facts[0].os == "debian"


def test_targets_from_inventory() -> None:
    inv = {"all": {"children": {
        "council_havering": {"hosts": {
            "hav-tc01": {"ansible_host": "100.64.18.10", "ansible_user": "root", "estate_council": "havering",
                         "estate_role": "thin_client", "estate_container": "se-hav-tc01",
                         "ansible_ssh_private_key_file": "/k"},
            "hav-app01": {"ansible_host": "100.64.17.10", "estate_council": "havering",
                          "estate_container": "se-hav-app01"}}},
        "app_server": {"hosts": {"hav-app01": {}}}}}}
    auto = {t.host: t for t in g.targets_from_inventory(inv, "auto", containers={"se-hav-tc01"})}
    assert auto["hav-tc01"].spec == "podman://se-hav-tc01"
    assert auto["hav-app01"].spec == "ssh://root@100.64.17.10"  # its container does not run here
    assert auto["hav-app01"].role == "app_server"  # from its group when estate_role is missing
    ssh = {t.host: t for t in g.targets_from_inventory(inv, "ssh")}
    assert ssh["hav-tc01"].spec == "ssh://root@100.64.18.10" and ssh["hav-tc01"].ssh_key == "/k"


@pytest.mark.parametrize("name", sorted(p.stem for p in DATA.glob("*.txt")))
def test_recorded_hosts(name: str) -> None:
    """Output recorded on real hosts (a configured lab host and the bare image), parsed."""
    expected = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    target = g.Target(expected["host"], expected["council"], expected["role"], "podman://x")
    facts = g.parse(target, (DATA / f"{name}.txt").read_text(encoding="utf-8"))
    assert facts.model_dump() == expected


def _recorded(name: str, host: str, role: str) -> HostFacts:
    target = g.Target(host, "havering", role, "podman://x")
    return g.parse(target, (DATA / f"{name}.txt").read_text(encoding="utf-8"))


def test_recorded_hosts_judged_by_the_host_rules(estate: Estate) -> None:
    """Configured lab hosts fail no host rule (auditd's does not apply in a container: the kernel lets only its
    initial PID namespace run an audit daemon); the bare image fails the baseline's rules."""
    from estate.compliance import evaluate

    hosts = [_recorded("hav-tc01", "hav-tc01", "thin_client"), _recorded("hav-svc01", "hav-svc01", "dc_services"),
             _recorded("bare-image", "hav-app01", "app_server")]
    report = evaluate(estate, hosts=hosts, councils=["havering"], today=dt.date(2026, 11, 22))
    failing: dict[str, set[str]] = {h.host: set() for h in hosts}
    for f in report.councils["havering"].findings:
        if f.kind == "host" and f.status != "pass":
            failing[f.resource].add(f.rule_id)
    assert failing["hav-tc01"] == set() and failing["hav-svc01"] == set()
    judged = {(f.resource, f.rule_id) for f in report.councils["havering"].findings if f.kind == "host"}
    assert not {(h.host, "SEC-008") for h in hosts} & judged  # containers all three
    assert {"SEC-002", "SEC-003", "SEC-004", "SEC-005", "SEC-006", "SEC-007", "SEC-009"} <= failing["hav-app01"]


def test_configured_host_passes_the_host_rules(estate: Estate) -> None:
    """The facts of a configured thin client pass every host rule that does not depend on the lab."""
    from estate.compliance import evaluate

    fw = estate.framework
    council = next(iter(estate.councils))
    from estate.loader import host_addresses

    hosts = host_addresses(estate, council)
    services = next(str(a) for _, r, _, a in hosts if r == "dc_services")
    collector = next(str(a) for _, r, _, a in host_addresses(estate, "shared") if r == "log_collector")
    name = next(n for n, r, _, _ in hosts if r == "thin_client")
    facts = HostFacts(
        host=name, council=council, role="thin_client", reachable=True, os="debian", os_version="12",
        sshd={"permitrootlogin": "without-password", "passwordauthentication": "no",
              "maxauthtries": str(fw.security.ssh.max_auth_tries), "x11forwarding": "no"},
        nft_input_policy=fw.security.host_firewall.default_policy, listening_tcp=[22],
        accounts=["root", "daemon", "kiosk"], login_accounts=["root", "kiosk"],
        faillock_deny=fw.security.lockout.max_attempts, pass_min_len=fw.security.passwords.min_length,
        unattended_upgrades=True, auditd_active=True, log_forward=f"{collector}:{fw.security.logging.forward_port}",
        ntp_servers=[services], services_active=["ssh", "chrony", "rsyslog"],
        screen_lock_minutes=fw.desktop.screen_lock.minutes, usb_storage_blocked=True,
        rdp_client=fw.desktop.rdp_client.package, kiosk_sudo=False)
    report = evaluate(estate, hosts=[facts], councils=[council], today=dt.date(2026, 11, 22))
    host_findings = [f for f in report.councils[council].findings if f.kind == "host"]
    assert host_findings and all(f.status == "pass" for f in host_findings), \
        [(f.rule_id, f.message) for f in host_findings if f.status != "pass"]
