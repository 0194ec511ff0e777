"""The Azure resource vocabulary rules share: compute types, and where a VM or a scale set keeps its profile,
size and image (wire format, as azure-native sends it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from estate.controls.base import CloudResource, get, mapping

VM = "azure-native:compute:VirtualMachine"
VMSS = "azure-native:compute:VirtualMachineScaleSet"
COMPUTE = (VM, VMSS)
DESKTOP = "desktop"  # the service (tag, or component module) of session hosts


def vm_size(res: CloudResource) -> Any:
    """A VM's hardwareProfile.vmSize, or a scale set's sku.name."""
    return get(res.inputs, "sku.name") if res.type == VMSS else get(res.inputs, "hardwareProfile.vmSize")


def vm_profile(res: CloudResource) -> Mapping[str, Any]:
    """Where a VM keeps its profiles: the VM itself, or a scale set's virtualMachineProfile."""
    if res.type == VMSS:
        return mapping(res, "virtualMachineProfile")
    return res.inputs


def image_of(res: CloudResource) -> tuple[Any, ...]:
    ref = mapping(vm_profile(res), "storageProfile.imageReference", "virtualMachineProfile" if res.type == VMSS else "")
    return tuple(ref.get(k) for k in ("publisher", "offer", "sku", "version"))
