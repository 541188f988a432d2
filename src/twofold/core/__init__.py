"""The core: the definition API, the method table, the call context, invoke, errors."""
