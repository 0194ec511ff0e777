"""Every rule, one class each, by service area. Importing this package registers them all."""

from estate.compliance.rules import 

__all__ = ["security"]
