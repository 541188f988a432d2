"""Calling the bookshop over JSON-RPC with nothing but httpx.

Run the server with ``uvicorn docs_src.jsonrpc.service:app``, then this module.
"""

import asyncio
import itertools
from typing import Any

import httpx

_ids = itertools.count(1)


class RpcError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["message"])
        self.code: int = error["code"]
        self.data: dict[str, Any] = error.get("data", {})


async def call(client: httpx.AsyncClient, method: str, params: Any = None) -> Any:
    """One call: the result, or an RpcError carrying the error object."""
    request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": next(_ids)}
    if params is not None:
        request["params"] = params
    body = (await client.post("/jsonrpc", json=request)).json()
    if "error" in body:
        raise RpcError(body["error"])
    return body["result"]


async def main(client: httpx.AsyncClient) -> list[Any]:
    dune = await call(client, "GetBook", {"id": 1})  # params by name
    found = await call(client, "shop.v1.ShopService/Search", ["sol", 5])  # by position
    missing = None
    try:
        await call(client, "GetBook", {"id": 99})
    except RpcError as exc:
        missing = (exc.code, exc.data["code"], str(exc))
    # A batch: answers come back in request order, none for the notification.
    batch = [
        {"jsonrpc": "2.0", "method": "GetBook", "params": {"id": 2}, "id": "a"},
        {"jsonrpc": "2.0", "method": "CountVisit", "params": {"page": "/books/2"}},
        {"jsonrpc": "2.0", "method": "Search", "params": {"limit": "ten"}, "id": "b"},
    ]
    answers = (await client.post("/jsonrpc", json=batch)).json()
    return [dune, found, missing, answers]


async def _run() -> None:
    async with httpx.AsyncClient(base_url="http://127.0.0.1:8000") as client:
        for result in await main(client):
            print(result)


if __name__ == "__main__":
    asyncio.run(_run())
