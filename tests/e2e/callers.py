"""One way to call a method over each protocol, so one test can run over all of them.

Each caller sends a request the way that protocol's own clients would and
returns an :class:`Outcome`: the typed output, or the canonical error code and
the violated fields. Outputs are converted to the method's output type, so
Connect's int64-as-string and REST's numbers compare equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec

from tests.parity import rest_request
from twofold.core.method import Method
from twofold.protobuf import json as protojson

JSONRPC_CODES = {-32700: "parse_error", -32600: "invalid_request", -32601: "method_not_found"}


@dataclass
class Outcome:
    status: int
    data: Any = None
    code: str | None = None
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.code is None


class Caller:
    name = ""

    def __init__(self, client: httpx.Client, methods: dict[str, Method]) -> None:
        self.client = client
        self.methods = methods

    def __call__(self, rpc: str, payload: dict[str, Any] | None = None) -> Outcome:
        raise NotImplementedError

    def _typed(self, rpc: str, status: int, data: Any) -> Outcome:
        output = self.methods[rpc].output_type
        return Outcome(status, msgspec.convert(data or {}, output, strict=False))


class RestCaller(Caller):
    name = "rest"

    def __call__(self, rpc: str, payload: dict[str, Any] | None = None) -> Outcome:
        verb, path, kwargs = rest_request(self.methods[rpc], payload or {})
        response = self.client.request(verb, path, **kwargs)
        if response.is_success:
            body = response.json() if response.status_code != 204 else {}
            return self._typed(rpc, response.status_code, body)
        assert response.headers["content-type"] == "application/problem+json", response.text
        problem = response.json()
        assert problem["status"] == response.status_code
        fields = [v["field"] for v in problem.get("violations", [])]
        return Outcome(response.status_code, code=problem["code"], violations=fields)


class JsonRpcCaller(Caller):
    name = "jsonrpc"

    def __call__(self, rpc: str, payload: dict[str, Any] | None = None) -> Outcome:
        request = {"jsonrpc": "2.0", "id": 7, "method": rpc, "params": payload or {}}
        response = self.client.post("/jsonrpc", json=request)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["jsonrpc"] == "2.0" and body["id"] == 7
        if "result" in body:
            return self._typed(rpc, 200, body["result"])
        error = body["error"]
        data = error.get("data") or {}
        code = data.get("code") or JSONRPC_CODES.get(error["code"], str(error["code"]))
        fields = [v["field"] for v in data.get("violations", [])]
        return Outcome(200, code=code, violations=fields)


class ConnectCaller(Caller):
    name = "connect"

    def __call__(self, rpc: str, payload: dict[str, Any] | None = None) -> Outcome:
        method = self.methods[rpc]
        response = self.client.post(
            method.path, json=payload or {}, headers={"connect-protocol-version": "1"}
        )
        if response.status_code == 200:
            # Proto3 JSON (enum names, int64 strings), read as Connect clients read it.
            return Outcome(200, protojson.codec(method.output_type).decode(response.content))
        assert response.headers["content-type"].startswith("application/json"), response.text
        error = response.json()
        fields = [
            v["field"]
            for d in error.get("details", [])
            if d["type"] == "google.rpc.BadRequest"
            for v in d.get("debug", {}).get("fieldViolations", [])
        ]
        return Outcome(response.status_code, code=error["code"], violations=fields)


CALLERS: dict[str, type[Caller]] = {c.name: c for c in (RestCaller, JsonRpcCaller, ConnectCaller)}
