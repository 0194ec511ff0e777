"""shared-estate: the framework spec, inventories and the tools that converge councils on it."""
