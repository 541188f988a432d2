"""Contracts derived from the definition: OpenAPI 3.1, JSON Schema, the docs page."""
