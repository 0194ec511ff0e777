"""3.11 Virtual machines use Trusted Launch with Secure Boot, vTPM and guest attestation (framework.yaml
`data_centre.trusted_launch`).

Cloud-only: the stacks make every VM and scale set a Trusted Launch machine with Secure Boot and a vTPM, and
install Azure's Guest Attestation extension for its operating system. Judged on the planned or deployed VMs,
scale sets and VM extensions of each stack (DCN-016).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from estate.controls.azure import COMPUTE, VM, vm_profile
from estate.controls.base import CloudResource, Context, Outcome, Rule, get, mapping, objects, rule
from estate.controls.data_centre.common import trusted_launch, verdict
from estate.controls.spec import declare

CONTROL = declare()

VM_EXTENSION = "azure-native:compute:VirtualMachineExtension"
GUEST_ATTESTATION = "GuestAttestation"
# Azure's Guest Attestation publishers per OS (learn.microsoft.com/azure/virtual-machines/trusted-launch-existing-vm).
ATTESTATION_PUBLISHERS = {"linux": "Microsoft.Azure.Security.LinuxAttestation",
                          "windows": "Microsoft.Azure.Security.WindowsAttestation"}


def _os_of(res: CloudResource) -> str:
    where = "virtualMachineProfile" if res.type != VM else ""
    profile = mapping(vm_profile(res), "osProfile", where)
    return "windows" if "windowsConfiguration" in profile else "linux"


@rule
class TrustedLaunchAttested(Rule):
    id = "DCN-016"

    def stack(self, resources: Sequence[CloudResource], ctx: Context) -> Iterable[Outcome]:
        c = ctx.fw.data_centre.trusted_launch
        extensions = [r for r in resources if r.type == VM_EXTENSION]
        for machine in (r for r in resources if r.type in COMPUTE):
            where = "virtualMachineProfile" if machine.type != VM else ""
            security = mapping(vm_profile(machine), "securityProfile", where)
            wrong = []
            if not trusted_launch(machine):
                wrong.append(f"security type {security.get('securityType')!r}, not TrustedLaunch")
            if c.secure_boot and get(security, "uefiSettings.secureBootEnabled") is not True:
                wrong.append("Secure Boot is off")
            if c.vtpm and get(security, "uefiSettings.vTpmEnabled") is not True:
                wrong.append("vTPM is off")
            if c.guest_attestation:
                publisher = ATTESTATION_PUBLISHERS[_os_of(machine)]
                if machine.type == VM:
                    names = {machine.name, str(machine.inputs.get("vmName", ""))}
                    mine = [e.inputs for e in extensions if str(e.inputs.get("vmName")) in names]
                else:
                    mine = objects(vm_profile(machine), "extensionProfile.extensions", where)
                if not any(e.get("type") == GUEST_ATTESTATION and e.get("publisher") == publisher for e in mine):
                    wrong.append(f"no {publisher} {GUEST_ATTESTATION} extension")
            yield verdict(machine, wrong, f"{machine.name} is Trusted Launch with Secure Boot, vTPM and attestation")
