"""5.4 Multi-factor authentication for administrators and cloud services (framework.yaml `security.mfa`).

MFA is configured in each council's identity provider (Entra ID conditional access, its admin portals), which
neither the plan nor a host shows: no rule judges it, and a council attests it (`attestations:` in council.yml).
"""

from __future__ import annotations

from estate.controls.spec import declare

CONTROL = declare(
    "security.mfa",
    rationale=("A stolen or guessed password alone must not open an administrator's account or a cloud service; a "
               "second factor stops most account takeovers."),
    # CAF: additional authentication such as MFA for all user access, remote access included (B2.a.A.4; 4.0 says
    # "additional strong authentication mechanisms"), by current best practice (B2.a.A.6).
    caf={"3.2": ("B2.a.A.4", "B2.a.A.6"),
         "4.0": ("B2.a.A.4", "B2.a.A.6")},
    # Cyber Essentials: MFA wherever available, always for cloud services (CE-UAC.4).
    ce=("CE-UAC.4",),
    attested=True,
)
