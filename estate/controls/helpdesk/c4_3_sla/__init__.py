"""4.3 Tickets meet the agreed response and resolution targets (framework.yaml `helpdesk.sla`).

The helpdesk role writes the priorities' response and resolution hours into Request Tracker (tag `control_4.3`),
but whether tickets meet them is a service level over months of tickets, which no rule of this project judges: a
council attests it (`attestations:` in council.yml), with the service reports as evidence.
"""

from __future__ import annotations

from estate.controls.spec import declare

CONTROL = declare()
