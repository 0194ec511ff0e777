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

CONTROL = declare(
    "data_centre.trusted_launch",
    rationale=("A rootkit or bootkit that replaces the boot chain survives every reinstall of software above it; "
               "Secure Boot refuses an unsigned boot chain, and the vTPM with guest attestation lets Azure report "
               "a machine whose boot was tampered with."),
    # CAF: platforms conform to the secure baseline build (B4.b.A.2) and that they still have the expected
    # secure configuration is regularly validated (B4.b.A.4: attestation checks the boot at every start).
    # Same ids in both versions.
    caf={"3.2": ("B4.b.A.2", "B4.b.A.4"),
         "4.0": ("B4.b.A.2", "B4.b.A.4")},
    ce=(),  # Cyber Essentials has no boot-integrity requirement
    # https://www.ncsc.gov.uk/collection/device-security-principles-for-manufacturers
    device_principle="NCSC device security principles: 4 (maintain device integrity)",
    roles=(),  # cloud-only: the stacks set the security profile and the extension
)

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
    title = "virtual machines and scale sets use Trusted Launch with Secure Boot, vTPM and guest attestation"
    severity = "high"
    control = "data_centre.trusted_launch"
    area = "datacentre"
    fix = ("Set securityProfile.securityType TrustedLaunch with uefiSettings.secureBootEnabled {c.secure_boot} and "
           "vTpmEnabled {c.vtpm}, and install the GuestAttestation extension (Microsoft.Azure.Security."
           "LinuxAttestation or WindowsAttestation): a VirtualMachineExtension on a VM, an entry of a scale set's "
           "extensionProfile.")

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
