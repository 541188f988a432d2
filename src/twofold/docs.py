"""The /docs page (placeholder until it lands)."""

from __future__ import annotations

from twofold.asgi import ASGIApp


def endpoints(docs_path: str, openapi_path: str, title: str) -> dict[str, ASGIApp]:
    return {}
