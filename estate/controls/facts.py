"""Live host facts: what the roles engineer's fact gathering reports about one lab (or real) host.

The compliance engine's host rules (kind "host") judge these against framework.yaml. The model is
the contract between the gatherer and the engine (CONTRACTS.md section 3): it forbids unknown keys
so that a renamed fact is an error, not a silently passing rule.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

HOST_ROLES = ("thin_client", "app_server", "dc_services", "router", "helpdesk", "log_collector")


class HostFacts(BaseModel):
    # strict: a fact has its JSON type (no "yes" read as true, no true read as 1 failed login, no 3.0 as 3):
    # a host rule compares numbers, and a boolean or string in their place would pass or fail by accident.
    model_config = ConfigDict(extra="forbid", strict=True)

    host: str
    council: str  # council key, or "shared" for hub hosts
    role: str  # thin_client | app_server | dc_services | router | helpdesk | log_collector
    reachable: bool
    os: str = ""  # e.g. "debian"
    os_version: str = ""  # e.g. "12"
    sshd: dict[str, str] = Field(default_factory=dict)  # `sshd -T` output: lowercase key -> value
    nft_input_policy: str | None = None  # policy of the host firewall's input chain ("drop"/"accept")
    listening_tcp: list[int] = Field(default_factory=list)
    accounts: list[str] = Field(default_factory=list)  # every name in /etc/passwd
    login_accounts: list[str] = Field(default_factory=list)  # accounts with a login shell
    faillock_deny: int | None = None  # deny= in /etc/security/faillock.conf
    pass_min_len: int | None = None  # minlen in /etc/security/pwquality.conf
    unattended_upgrades: bool = False  # installed and enabled
    auditd_active: bool = False
    container: bool = False  # runs in a container (systemd-detect-virt --container)
    log_forward: str | None = None  # "host:port" rsyslog forwards to
    ntp_servers: list[str] = Field(default_factory=list)  # servers chrony uses
    services_active: list[str] = Field(default_factory=list)
    screen_lock_minutes: int | None = None  # thin clients only (None elsewhere)
    usb_storage_blocked: bool | None = None
    rdp_client: str | None = None  # installed RDP client package
    kiosk_sudo: bool | None = None  # does the kiosk user have sudo

    @field_validator("role")
    @classmethod
    def _known_role(cls, value: str) -> str:
        if value not in HOST_ROLES:
            raise ValueError(f"unknown role {value!r} (known: {', '.join(HOST_ROLES)})")
        return value
