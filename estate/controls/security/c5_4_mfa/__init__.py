"""5.4 Multi-factor authentication for administrators and cloud services (framework.yaml `security.mfa`).

MFA is configured in each council's identity provider (Entra ID conditional access, its admin portals), which
neither the plan nor a host shows: no rule judges it, and a council attests it (`attestations:` in council.yml).
"""

from __future__ import annotations

from estate.controls.spec import declare

CONTROL = declare()
