"""The stacks under mocks make requests Azure accepts and that meet Azure's security baseline (issue 13): each
test names the Azure rule it stands for. Mock tests are no proof Azure accepts a request: these pin the shapes
that Microsoft's documentation and templates give."""

from __future__ import annotations

import pytest

from estate.loader import Estate
from estate.plan import Plan
from tests.stacks_support import only, repo_estate, repo_plan

COUNCILS = ["havering", "newham", "waltham-forest"]
SITES = ["shared", *COUNCILS]


@pytest.fixture(scope="module")
def estate() -> Estate:
    return repo_estate()


@pytest.fixture(scope="module")
def planned() -> Plan:
    return repo_plan()


@pytest.mark.parametrize("site", SITES)
def test_trusted_launch_servers_are_backed_up_by_an_enhanced_policy(estate: Estate, planned: Plan, site: str) -> None:
    """recoveryservices 2024-10-01 refuses a Trusted Launch VM under a Standard (V1) policy."""
    backup = estate.framework.data_centre.backup
    policy = only(planned.of_type("azure-native:recoveryservices:ProtectionPolicy", site), f"bkpol-{site}-vm")
    props = policy.inputs["properties"]
    assert props["policyType"] == "V2"
    schedule = props["schedulePolicy"]
    assert schedule["schedulePolicyType"] == "SimpleSchedulePolicyV2"
    assert schedule["scheduleRunFrequency"] == backup.frequency
    assert "scheduleRunTimes" not in schedule  # a V2 schedule keeps its times in its daily/weekly schedule
    runs = schedule["dailySchedule" if backup.frequency == "Daily" else "weeklySchedule"]["scheduleRunTimes"]
    assert [t[11:16] for t in runs] == [backup.time]
    vms = planned.of_type("azure-native:compute:VirtualMachine", site)
    assert vms and all(vm.inputs["securityProfile"]["securityType"] == "TrustedLaunch" for vm in vms)


@pytest.mark.parametrize("council", COUNCILS)
def test_session_hosts_hand_the_registration_token_as_microsofts_templates_do(planned: Plan, council: str) -> None:
    """The DSC extension reads the token from protectedSettings.Items, referenced by the credential in settings."""
    from stacks.desktop import dsc_protected_settings

    vmss = only(planned.of_type("azure-native:compute:VirtualMachineScaleSet", council), f"vmss-{council}-avd")
    extensions = {e["name"]: e for e in vmss.inputs["virtualMachineProfile"]["extensionProfile"]["extensions"]}
    dsc = extensions["AddSessionHost"]
    assert (dsc["publisher"], dsc["type"]) == ("Microsoft.Powershell", "DSC")
    properties = dsc["settings"]["properties"]
    assert properties["hostPoolName"] == f"vdpool-{council}"
    assert properties["registrationInfoTokenCredential"] == {
        "UserName": "PLACEHOLDER_DO_NOT_USE", "Password": "PrivateSettingsRef:RegistrationInfoToken"}
    assert "registrationInfoToken" not in properties  # the token is never a plain setting
    assert dsc["protectedSettings"] == "[secret]"  # the plan shows secrets redacted: judge the shape below
    assert dsc_protected_settings("tok") == {"Items": {"RegistrationInfoToken": "tok"}}
