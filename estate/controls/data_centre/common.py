"""What the data-centre controls share: the Key Vault type, Trusted Launch, the verdict of a resource judged on
several settings at once, the asset register's Azure servers against an allowed list, and a retention period on
a SKU (Log Analytics workspaces, Key Vaults)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from typing import ClassVar

from estate.controls.azure import vm_profile
from estate.controls.base import CloudResource, Context, Outcome, Rule, failed, get, number, passed
from estate.models import Council

VAULT = "azure-native:keyvault:Vault"


def trusted_launch(res: CloudResource) -> bool:
    """A VM's or scale set's securityProfile.securityType is TrustedLaunch."""
    return str(get(vm_profile(res), "securityProfile.securityType", "")).lower() == "trustedlaunch"


def verdict(res: CloudResource, wrong: list[str], passing: str | Callable[[], str], joiner: str = "; ") -> Outcome:
    """Fails naming what is wrong (`name: a; b`), or passes with `passing` (a function: called only when nothing
    is wrong, for a message that cannot be written otherwise)."""
    if wrong:
        return failed(res.urn, f"{res.name}: " + joiner.join(wrong))
    return passed(res.urn, passing if isinstance(passing, str) else passing())


def azure_servers(council: Council, attribute: str, allowed: Collection[str], passing: str, failing: str,
                  missing: str) -> Iterator[Outcome]:
    """Each Azure server of the register whose `attribute` is one of `allowed`. Templates see `name`, `value`
    (`missing` where the register records none, in the failing one) and `expected` (comma-separated)."""
    for s in council.assets.servers:
        if s.location != "azure":
            continue
        value = getattr(s, attribute)
        if value in allowed:
            yield passed(s.name, passing.format(name=s.name, value=value))
        else:
            yield failed(s.name, failing.format(name=s.name, value=value or missing, expected=", ".join(allowed)))


class RetentionOnSku(Rule):
    """A resource keeps `kept` (logs, deleted secrets) at least the framework's days (`days_key`) on its SKU
    (`sku_key`); `wanted(ctx)` gives (days, SKU)."""

    days_key: ClassVar[str]
    sku_key: ClassVar[str]
    kept: ClassVar[str]

    def wanted(self, ctx: Context) -> tuple[int, str]:
        raise NotImplementedError

    def resource(self, res: CloudResource, ctx: Context) -> Iterable[Outcome]:
        least, sku_wanted = self.wanted(ctx)
        days = number(res, self.days_key)
        sku = get(res.inputs, self.sku_key)
        wrong = []
        if days is None or days < least:
            wrong.append(f"keeps {self.kept} {days!r} days, not {least}")
        if sku != sku_wanted:
            wrong.append(f"sku {sku!r}, not {sku_wanted}")
        return [verdict(res, wrong, lambda: f"{res.name} keeps {self.kept} {days:g} days on {sku}")]
