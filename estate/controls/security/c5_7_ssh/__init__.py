"""5.7 SSH is hardened (framework.yaml `security.ssh`).

Every host's sshd refuses root password logins, password authentication, more than a few tries per connection
and X11 forwarding; Linux VMs in Azure take SSH keys only. Enforced by the baseline role's SSH tasks (tag
`control_5.7`), judged on live hosts (`sshd -T`, SEC-006) and on the planned or deployed VMs (SEC-011).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from estate.controls.azure import VM, VMSS, vm_profile
from estate.controls.base import CloudResource, Context, HostRule, Outcome, Rule, failed, get, passed, rule
from estate.controls.facts import HostFacts
from estate.controls.spec import Probe, ProbeParams, declare


def parse_sshd(text: str) -> dict[str, str]:
    """`sshd -T` output: lowercase key -> value (the first value of a repeated key)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key and key.lower() not in out:
            out[key.lower()] = value.strip()
    return out


def _probe(sections: Mapping[str, str], params: ProbeParams) -> dict[str, Any]:
    return {"sshd": parse_sshd(sections["sshd"])}


CONTROL = declare(probes=(Probe(fields=("sshd",), commands={"sshd": "sshd -T 2>/dev/null"}, parse=_probe),))


@rule
class SshHardened(HostRule):
    id = "SEC-006"

    def check(self, facts: HostFacts, ctx: Context) -> tuple[bool, str]:
        c = ctx.fw.security.ssh
        sshd = facts.sshd
        if not sshd:
            return False, f"{facts.host}: no sshd settings were gathered"
        root_ok = {"no"} if c.permit_root_login == "no" else {"no", "prohibit-password", "without-password"}
        wrong = []
        if sshd.get("permitrootlogin") not in root_ok:
            wrong.append(f"permitrootlogin {sshd.get('permitrootlogin')}")
        if not c.password_authentication and sshd.get("passwordauthentication") != "no":
            wrong.append(f"passwordauthentication {sshd.get('passwordauthentication')}")
        try:
            tries = int(sshd.get("maxauthtries", "0"))
        except ValueError:
            tries = 0
        if not 1 <= tries <= c.max_auth_tries:
            wrong.append(f"maxauthtries {sshd.get('maxauthtries')}")
        if not c.x11_forwarding and sshd.get("x11forwarding") != "no":
            wrong.append(f"x11forwarding {sshd.get('x11forwarding')}")
        if wrong:
            return False, f"{facts.host}: sshd has " + ", ".join(wrong)
        return True, f"{facts.host}: sshd is hardened"


@rule
class NoLinuxPasswordLogin(Rule):
    id = "SEC-011"
    types = (VM, VMSS)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        if ctx.fw.security.ssh.password_authentication:
            return []
        linux = get(vm_profile(res), "osProfile.linuxConfiguration")
        if not isinstance(linux, Mapping):
            return []  # Windows, or no OS profile of its own
        if linux.get("disablePasswordAuthentication") is True:
            return [passed(res.urn, f"{res.name} takes SSH keys only")]
        return [failed(res.urn, f"{res.name} allows password login (disablePasswordAuthentication is "
                                f"{linux.get('disablePasswordAuthentication')!r})")]
