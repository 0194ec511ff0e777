"""Every rule, one class each, by service area. Importing this package registers them all."""

__all__: list[str] = []
