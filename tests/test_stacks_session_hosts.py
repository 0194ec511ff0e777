"""Session hosts' local administrator: no password in config shared by a council's hosts. Each council's scale set
starts from a generated secret of its own (pulumi_random, stable in the stack's state), and Windows LAPS gives each
host its own password from then on, backed up to Microsoft Entra ID."""

from __future__ import annotations

from estate.plan import REDACTED, stack_config
from stacks.common import ADMIN_USER
from stacks.desktop import ADMIN_PASSWORD_LENGTH, LAPS_EXTENSION
from tests.stacks_support import only, repo_estate, repo_plan

RANDOM = "random:index/randomPassword:RandomPassword"
VMSS = "azure-native:compute:VirtualMachineScaleSet"
COUNCILS = sorted(repo_estate().councils)


def test_no_stack_takes_a_session_host_password_from_config() -> None:
    estate = repo_estate()
    for stack in ["shared", *COUNCILS]:
        assert not [k for k in stack_config(estate, stack) if "Password" in k]


def test_each_council_s_session_hosts_start_from_a_generated_secret_of_their_own() -> None:
    planned = repo_plan()
    passwords = planned.of_type(RANDOM)
    assert sorted(p.stack for p in passwords) == COUNCILS  # one per council's scale set, none shared
    assert len({p.urn for p in passwords}) == len(COUNCILS)
    for council in COUNCILS:
        (password,) = planned.of_type(RANDOM, council)
        # Azure's Windows adminPassword: 8 to 123 characters, 3 of lower, upper, digit and special
        # (learn.microsoft.com/rest/api/compute/virtual-machine-scale-sets/create-or-update, OSProfile)
        assert 8 <= password.inputs["length"] == ADMIN_PASSWORD_LENGTH <= 123
        assert all(password.inputs[k] >= 1 for k in ("minLower", "minUpper", "minNumeric", "minSpecial"))
        assert not password.custom  # lives in Pulumi's state only: no ARM schema, right or rule applies
        os_profile = only(planned.of_type(VMSS, council), f"vmss-{council}-avd").inputs["virtualMachineProfile"][
            "osProfile"]
        assert os_profile["adminPassword"] == REDACTED  # a secret, never in the plan or the state in clear


def test_windows_laps_gives_every_host_its_own_password_backed_up_to_entra() -> None:
    planned = repo_plan()
    for council in COUNCILS:
        profile = only(planned.of_type(VMSS, council), f"vmss-{council}-avd").inputs["virtualMachineProfile"]
        extensions = {e["name"]: e for e in profile["extensionProfile"]["extensions"]}
        laps = extensions[LAPS_EXTENSION]
        assert (laps["publisher"], laps["type"]) == ("Microsoft.Compute", "CustomScriptExtension")
        assert laps["provisionAfterExtensions"] == ["AADLoginForWindows"]  # Entra-joined before LAPS backs up
        command = laps["settings"]["commandToExecute"]
        assert "/v BackupDirectory /t REG_DWORD /d 1 " in command
        assert f"/v AdministratorAccountName /t REG_SZ /d {profile['osProfile']['adminUsername']} " in command
        assert profile["osProfile"]["adminUsername"] == ADMIN_USER
        assert "Invoke-LAPSPolicyProcessing" in command
        assert "protectedSettings" not in laps  # the command carries no secret
