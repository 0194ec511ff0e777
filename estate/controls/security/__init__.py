"""Security baseline controls (framework section 5): patching, accounts, host firewall, SSH, logging, time,
tagging."""
