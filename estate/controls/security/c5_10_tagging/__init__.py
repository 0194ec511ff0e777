"""5.10 Every taggable resource carries the consortium tags (framework.yaml `security.tagging`).

Every Azure resource that takes tags carries `required` (council, service, cost centre, framework version), the
framework version the one in force and the council its stack's. Set by the Pulumi stacks, judged on the planned or
deployed resources (SEC-010); no Ansible role enforces it.
"""

from __future__ import annotations

from collections.abc import Iterable

from estate.controls.base import CloudResource, Context, Outcome, Rule, failed, passed, rule, tags
from estate.controls.spec import declare

CONTROL = declare(
    "security.tagging",
    rationale=("Tags are how a shared subscription says whose a resource is, what it serves and who pays for it; a "
               "resource without them cannot be apportioned, owned or found in an incident."),
    # CAF: assets identified and inventoried (A3.a.A.1), with responsibility for managing them assigned (A3.a.A.4)
    # - the same indicators in 3.2 and 4.0.
    caf={"3.2": ("A3.a.A.1", "A3.a.A.4"),
         "4.0": ("A3.a.A.1", "A3.a.A.4")},
    # Cyber Essentials: none; tags are asset management, not one of its five technical themes.
    ce=(),
)


@rule
class Tagging(Rule):
    id = "SEC-010"
    title = "every taggable resource carries the consortium tags"
    severity = "low"
    control = "security.tagging"
    area = "datacentre"
    fix = "Tag the resource with {c.required}; framework-version is {fw.version}, council the stack's council key."
    types = ("azure-native:*",)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        # ARM tracked resources (the ones that take tags) are the ones with a location.
        if "location" not in res.inputs and "tags" not in res.inputs:
            return []
        have = tags(res)
        required = ctx.fw.security.tagging.required
        missing = [k for k in required if not have.get(k)]
        wrong = []
        if "framework-version" in have and have["framework-version"] != ctx.fw.version:
            wrong.append(f"framework-version {have['framework-version']!r} is not {ctx.fw.version}")
        if "council" in have and have["council"] != res.stack:
            wrong.append(f"council {have['council']!r} is not the stack's {res.stack!r}")
        if missing or wrong:
            parts = ([f"missing tags {', '.join(missing)}"] if missing else []) + wrong
            return [failed(res.urn, f"{res.name}: " + "; ".join(parts))]
        return [passed(res.urn, f"{res.name} carries {', '.join(required)}")]
