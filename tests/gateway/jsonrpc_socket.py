"""JSON-RPC over WebSocket at a gateway's /jsonrpc, as the ``websockets`` library's
sync client speaks it: the URL, a call, a message read."""

from __future__ import annotations

import json
from typing import Any

from websockets.sync.client import ClientConnection


def ws_url(gateway_url: str) -> str:
    return gateway_url.replace("http://", "ws://") + "/jsonrpc"


def call(ws: ClientConnection, request_id: int, method: str, params: Any = None) -> None:
    doc: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        doc["params"] = params
    ws.send(json.dumps(doc))


def read(ws: ClientConnection) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(ws.recv(timeout=10))
    return doc
