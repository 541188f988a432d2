"""Calling the library over Connect with nothing but httpx.

Run the server with ``uvicorn docs_src.connect.service:app``, then this module.
"""

import asyncio
import base64
import json
from typing import Any

import httpx

SERVICE = "/library.v1.LibraryService"


async def call(client: httpx.AsyncClient, method: str, message: Any) -> httpx.Response:
    """A unary call: POST the message as JSON to /<package>.<Service>/<Method>."""
    headers = {"connect-protocol-version": "1"}
    return await client.post(f"{SERVICE}/{method}", json=message, headers=headers)


async def get(client: httpx.AsyncClient, method: str, message: Any) -> httpx.Response:
    """The same call by GET, for side-effect-free methods: a URL a cache can keep."""
    text = json.dumps(message, separators=(",", ":"), sort_keys=True)
    encoded = base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()
    params = {"connect": "v1", "encoding": "json", "base64": "1", "message": encoded}
    return await client.get(f"{SERVICE}/{method}", params=params)


async def main(client: httpx.AsyncClient) -> dict[str, Any]:
    # Keys may be lowerCamelCase, as protobuf JSON clients send them, or the
    # field names; answers always use the field names.
    new = {"title": "Hyperion", "pageCount": 482, "publishedAt": "2024-05-01T10:00:00+02:00"}
    created = (await call(client, "CreateBook", {"book": new})).json()
    # created["id"] is a string: an int64 in proto3 JSON.
    by_post = (await call(client, "GetBook", {"id": created["id"]})).json()
    by_get = (await get(client, "GetBook", {"id": created["id"]})).json()

    missing = await call(client, "GetBook", {"id": 99})
    invalid = await call(client, "CreateBook", {"book": {"title": "Empty", "pageCount": 0}})
    bad = invalid.json()
    return {
        "created": created,
        "by_post": by_post,
        "by_get": by_get,
        "missing": (missing.status_code, missing.json()["code"], missing.json()["message"]),
        "invalid": (
            invalid.status_code,
            bad["code"],
            bad["details"][0]["debug"]["fieldViolations"],
        ),
    }


async def _run() -> None:
    async with httpx.AsyncClient(base_url="http://127.0.0.1:8000") as client:
        for name, result in (await main(client)).items():
            print(name, result)


if __name__ == "__main__":
    asyncio.run(_run())
