"""Value checks: most rules compare one value with what the framework wants, and are declared on these bases
instead of written out (as Checkov's BaseResourceValueCheck turns a check into a key and its expected values).

- `ResourceValueCheck`: a cloud resource's value at `key` is one of `expected(ctx)`;
- `AssetCheck`: each asset of a council's register (`collection`, e.g. servers) `holds`;
- `HostFactCheck`: a host's fact (`fact`, a field of HostFacts) `holds` against `expected(ctx)`.

A subclass names the key, the expected values (always read from the framework through `ctx`), and the two
messages, `str.format` templates over the names each base documents. A rule that needs more than one value
overrides `holds`, `value` or the messages' methods, and still reads as a declaration.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any, ClassVar

from estate.controls.base import CloudResource, Context, HostRule, Outcome, Rule, control_at, failed, get, passed
from estate.controls.facts import HostFacts
from estate.models import Council


class ResourceValueCheck(Rule):
    """A resource's value at `key` (dotted path of its wire-format inputs) is one of `expected(ctx)`.
    Templates see `name` (the resource's), `value` (as `shown`) and `expected` (comma-separated)."""

    key: ClassVar[str]
    passing: ClassVar[str] = "{name} is {value}"
    failing: ClassVar[str] = "{name} is {value}, not one of {expected}"

    def expected(self, ctx: Context) -> Collection[Any]:
        raise NotImplementedError

    def applies(self, res: CloudResource, ctx: Context) -> bool:
        return True

    def value(self, res: CloudResource) -> Any:
        return get(res, self.key)

    def holds(self, value: Any, expected: Collection[Any]) -> bool:
        return value in expected

    def shown(self, value: Any) -> str:
        return str(value)

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        if not self.applies(res, ctx):
            return []
        value = self.value(res)
        expected = self.expected(ctx)
        words = {"name": res.name, "value": self.shown(value), "expected": ", ".join(str(x) for x in expected)}
        if self.holds(value, expected):
            return [passed(res.urn, self.passing.format(**words))]
        return [failed(res.urn, self.failing.format(**words))]


class AssetCheck(Rule):
    """Each asset of `collection` in a council's register (`council.assets.<collection>`) that `applies`,
    `holds`. Templates see `name` (the asset's) and `a` (the asset)."""

    collection: ClassVar[str]
    passing: ClassVar[str]
    failing: ClassVar[str]

    def enabled(self, ctx: Context) -> bool:
        """Whether the framework asks for the check at all (e.g. a `required:` flag)."""
        return True

    def applies(self, asset: Any, ctx: Context) -> bool:
        return True

    def holds(self, asset: Any, ctx: Context) -> bool:
        raise NotImplementedError

    def assets(self, key: str, council: Council, ctx: Context) -> Iterable[Outcome]:
        if not self.enabled(ctx):
            return
        for asset in getattr(council.assets, self.collection):
            if not self.applies(asset, ctx):
                continue
            if self.holds(asset, ctx):
                yield passed(asset.name, self.passing.format(name=asset.name, a=asset))
            else:
                yield failed(asset.name, self.failing.format(name=asset.name, a=asset))


def _positive_at_most(value: Any, expected: Any) -> bool:
    return value is not None and 0 < value <= expected


def _at_least(value: Any, expected: Any) -> bool:
    return value is not None and value >= expected


def _none_of(value: Any, expected: Any) -> bool:
    return not set(value) & set(expected)


def _equals(value: Any, expected: Any) -> bool:
    return bool(value == expected)


# How a host fact compares with the framework's setting (HostFactCheck.compare).
COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "equals": _equals, "positive_at_most": _positive_at_most, "at_least": _at_least, "none_of": _none_of}


class HostFactCheck(HostRule):
    """A host's `fact` (a HostFacts field) `holds` against `expected(ctx)`: the control's `setting` (an attribute of
    the framework control the rule judges, e.g. "max_attempts"; True when None), compared as `compare` names
    (equals, positive_at_most, at_least, none_of). Templates see `host`, `value` (as `shown`) and `expected`."""

    fact: ClassVar[str]
    setting: ClassVar[str | None] = None
    compare: ClassVar[str] = "equals"
    passing: ClassVar[str]
    failing: ClassVar[str]

    def expected(self, ctx: Context) -> Any:
        return True if self.setting is None else getattr(control_at(ctx.fw, self.control), self.setting)

    def holds(self, value: Any, expected: Any) -> bool:
        return COMPARE[self.compare](value, expected)

    def shown(self, value: Any) -> str:
        return str(value)

    def fail_message(self, facts: HostFacts, value: Any, expected: Any) -> str:
        return self.failing.format(host=facts.host, value=self.shown(value), expected=expected)

    def check(self, facts: HostFacts, ctx: Context) -> tuple[bool, str]:
        value = getattr(facts, self.fact)
        expected = self.expected(ctx)
        if self.holds(value, expected):
            return True, self.passing.format(host=facts.host, value=self.shown(value), expected=expected)
        return False, self.fail_message(facts, value, expected)
