"""Every rule, one class each, by service area. Importing this package registers them all."""

from estate.compliance.rules import datacentre, desktop, network, platform, reachability, security

__all__ = ["datacentre", "desktop", "network", "platform", "reachability", "security"]
