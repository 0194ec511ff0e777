"""5.3 Passwords meet the minimum length (framework.yaml `security.passwords`).

pam_pwquality refuses a new password shorter than `min_length`. Enforced by the baseline role's PAM tasks (tag
`control_5.3`), judged on live hosts (pwquality.conf's `minlen`, when pam_pwquality checks passwords: SEC-003).
"""

from __future__ import annotations

from typing import Any

from estate.controls.base import rule
from estate.controls.checks import HostFactCheck
from estate.controls.probing import probe
from estate.controls.security.common import pam_setting
from estate.controls.spec import declare


def parse_pass_min_len(conf: str, common_password: str) -> int | None:
    """minlen of pwquality.conf, when pam_pwquality checks passwords (else None). Its default is 8."""
    return pam_setting(conf, common_password, "pam_pwquality.so", "minlen", 8)


CONTROL = declare(probes=(probe("pass_min_len",
                  {"pwquality": "cat /etc/security/pwquality.conf /etc/security/pwquality.conf.d/*.conf 2>/dev/null",
                   "common-password": "cat /etc/pam.d/common-password 2>/dev/null"},
                  parse_pass_min_len),))


@rule
class PasswordLength(HostFactCheck):
    id = "SEC-003"
    area_by_role = False

    def shown(self, value: Any) -> str:
        return str(value or "any")  # passing, the value is at least the framework's minimum (8 or more)
