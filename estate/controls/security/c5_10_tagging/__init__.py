"""5.10 Every taggable resource carries the consortium tags (framework.yaml `security.tagging`).

Every Azure resource that takes tags carries `required` (council, service, cost centre, framework version), the
framework version the one in force and the council its stack's. Set by the Pulumi stacks, judged on the planned or
deployed resources (SEC-010); no Ansible role enforces it.
"""

from __future__ import annotations

from collections.abc import Iterable

from estate.controls.base import CloudResource, Context, Outcome, Rule, failed, passed, rule, tags
from estate.controls.spec import declare

CONTROL = declare()


@rule
class Tagging(Rule):
    id = "SEC-010"
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
