"""What the baseline role enforces, checked on the converged Molecule instance."""

import re
from pathlib import Path

import yaml

DEFAULTS = yaml.safe_load((Path(__file__).parents[3] / "defaults" / "main.yml").read_text(encoding="utf-8"))


def test_sshd_hardened(host):
    effective = dict(line.split(" ", 1) for line in host.check_output("sshd -T").splitlines() if " " in line)
    assert effective["permitrootlogin"] == "without-password"  # sshd -T spells prohibit-password so
    assert effective["passwordauthentication"] == "no"
    assert effective["maxauthtries"] == str(DEFAULTS["baseline_ssh_max_auth_tries"])
    assert effective["x11forwarding"] == "no"


def test_default_accounts_removed_and_system_shells_locked(host):
    names = {line.split(":")[0] for line in host.file("/etc/passwd").content_string.splitlines()}
    assert not names & {"games", "irc", "list", "news", "uucp", "gnats"}
    assert host.user("sync").shell == "/usr/sbin/nologin"
    assert host.user("root").shell == "/bin/bash"


def test_lockout_and_password_policy(host):
    faillock = host.file("/etc/security/faillock.conf").content_string
    assert re.search(r"^deny = 10$", faillock, re.M)
    assert re.search(r"^unlock_time = 900$", faillock, re.M)
    auth = host.file("/etc/pam.d/common-auth").content_string
    preauth = auth.index("pam_faillock.so preauth")
    unix = auth.index("pam_unix.so")
    authfail = auth.index("pam_faillock.so authfail")
    assert preauth < unix < authfail
    assert "pam_faillock.so" in host.file("/etc/pam.d/common-account").content_string
    assert re.search(r"^minlen = 12$", host.file("/etc/security/pwquality.conf").content_string, re.M)
    assert "pam_pwquality.so" in host.file("/etc/pam.d/common-password").content_string


def test_firewall_default_deny_with_role_ports(host):
    ruleset = host.check_output("nft list table inet estate_host")
    assert "hook input priority filter; policy drop;" in ruleset
    assert re.search(r"tcp dport \{ 22, 443, 5060-5061 \} accept", ruleset)
    assert "udp dport 123 accept" in ruleset
    assert host.service("nftables").is_enabled


def test_unattended_upgrades_in_window(host):
    assert host.package("unattended-upgrades").is_installed
    periodic = host.file("/etc/apt/apt.conf.d/20auto-upgrades").content_string
    assert 'APT::Periodic::Unattended-Upgrade "1";' in periodic
    assert host.service("apt-daily-upgrade.timer").is_enabled
    timer = host.check_output("systemctl show -p TimersCalendar apt-daily-upgrade.timer")
    assert "03:00:00" in timer


def test_time_from_council_ntp(host):
    conf = host.file("/etc/chrony/chrony.conf").content_string
    assert re.findall(r"^(?:server|pool) (\S+)", conf, re.M) == ["192.0.2.123"]
    assert host.service("chrony").is_running


def test_logs_forwarded_and_audited(host):
    forward = host.file("/etc/rsyslog.d/90-estate-forward.conf").content_string
    assert 'target="192.0.2.50" port="514" protocol="tcp"' in forward
    assert host.service("rsyslog").is_running
    assert host.file("/etc/audit/rules.d/50-estate.rules").contains("-k identity")
    assert host.package("auditd").is_installed


def test_unused_packages_gone(host):
    for name in ("telnet", "rsh-client", "xinetd"):
        assert not host.package(name).is_installed


def test_no_core_dumps_idle_shells_end_and_passwords_keep_a_minimum_age(host):
    assert host.file("/etc/systemd/coredump.conf.d/10-estate-no-core.conf").contains("^Storage=none")
    profile = host.file("/etc/profile").content_string
    assert "ulimit -c 0" in profile
    assert f"TMOUT={DEFAULTS['baseline_shell_idle_minutes'] * 60}" in profile and "readonly TMOUT" in profile
    timeout = host.run("bash -lc 'echo $TMOUT'").stdout.strip()
    assert timeout == str(DEFAULTS["baseline_shell_idle_minutes"] * 60)
    login_defs = host.file("/etc/login.defs").content_string
    assert re.search(rf"^PASS_MIN_DAYS\s+{DEFAULTS['baseline_password_min_days']}$", login_defs, re.M)
