"""The shared-estate CrossGuard policy pack: the compliance rules of estate/compliance as policies.

    pulumi preview --policy-pack policies

Constructing the PolicyPack starts the analyzer's gRPC server and never returns, so this file does
nothing else: the policies are built in estate.compliance.pack, where tests import them.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from estate.compliance.pack import PACK_NAME, policies

PolicyPack(
    name=PACK_NAME,
    policies=policies(),
    enforcement_level=EnforcementLevel.ADVISORY,
    description="Shared estate framework: network, desktop, data centre, helpdesk and security baseline rules.",
    provider="azure-native",
    tags=["shared-estate", "azure", "uk-public-sector"],
)
