"""docs/gateway.md: a client of someone else (``websockets``) calls the Greeter edge over
WebSocket JSON-RPC: a batch with a unary call and a server stream in it."""

from __future__ import annotations

import json
from typing import Any

from websockets.asyncio.client import connect
from websockets.typing import Subprotocol


async def main(url: str) -> list[Any]:
    """What the gateway sent back, in order."""
    seen: list[Any] = []
    async with connect(url, subprotocols=[Subprotocol("jsonrpc")]) as ws:
        hellos = {"name": "Bo", "times": 2}  # a server stream of two greetings
        batch = [
            {"jsonrpc": "2.0", "id": 1, "method": "SayHello", "params": {"name": "Ada"}},
            {"jsonrpc": "2.0", "id": 2, "method": "SayHellos", "params": hellos},
        ]
        await ws.send(json.dumps(batch))
        # One array answers the batch: the unary call's result, the stream's id ...
        answers = json.loads(await ws.recv())
        seen.append(sorted(answers, key=lambda answer: answer["id"]))
        # ... then the stream's messages, relayed as the upstream sends them, and its end.
        for _ in range(3):
            seen.append(json.loads(await ws.recv())["params"])
    return seen
