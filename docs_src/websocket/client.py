"""docs/websocket.md: a third-party client (websockets + jsonrpcclient) calls the example."""

from __future__ import annotations

import json
from typing import Any

from jsonrpcclient import Ok, parse_json, request_json
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol


async def main(url: str) -> list[Any]:
    """A call, a subscription and a bidi stream; what the server sent, in order."""
    seen: list[Any] = []
    async with connect(url, subprotocols=[Subprotocol("jsonrpc")]) as ws:
        await ws.send(request_json("Shout", params={"text": "hello"}))
        answer = parse_json(await ws.recv())
        assert isinstance(answer, Ok)
        seen.append(answer.result)  # {"text": "HELLO"}

        # A server stream answers its subscription id; its messages follow.
        await ws.send(request_json("Count", params={"to": 2}))
        subscription = parse_json(await ws.recv()).result
        for _ in range(3):  # two messages, then the end
            note = json.loads(await ws.recv())
            assert note["params"]["subscription"] == subscription
            seen.append(note["params"])

        # A bidi stream takes its messages by rpc.send; rpc.close ends its input.
        await ws.send(request_json("Echo"))
        stream = parse_json(await ws.recv()).result
        message = {"subscription": stream, "message": {"text": "ping"}}
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "rpc.send", "params": message}))
        seen.append(json.loads(await ws.recv())["params"])  # the echo
        await ws.send(request_json("rpc.close", params={"subscription": stream}))
        answers = [json.loads(await ws.recv()) for _ in range(2)]  # true, then the end
        seen.extend(a.get("result", a.get("params")) for a in answers)
    return seen
