"""OpenAPI 3.1 (placeholder until the generator lands)."""

from __future__ import annotations

from typing import Any

import msgspec

from twofold.table import MethodTable


def document(table: MethodTable, *, title: str, version: str) -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": title, "version": version}, "paths": {}}


def encode(doc: dict[str, Any]) -> bytes:
    return msgspec.json.encode(doc)
