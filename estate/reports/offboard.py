"""The separation plan of a council that leaves (estate.offboard) as a section of the HTML report."""

from __future__ import annotations

from estate.offboard import SeparationPlan
from estate.reports.html import _env


def render_section(plan: SeparationPlan) -> str:
    """The whole <section id="offboard"> (trusted markup: every value is escaped by the template)."""
    data = plan.to_dict()
    money = data["money"]
    return str(_env().get_template("offboard.html.j2").render(
        plan=plan, data=data, areas=list(money["shared_service_annual_cost"]), money=money))
