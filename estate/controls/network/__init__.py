"""Network controls (framework section 1): address plan, segmentation, hub routing, egress, administration,
flow logs."""
