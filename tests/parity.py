"""Call one method of an in-process App over any protocol, with any headers.

HTTP protocols go through httpx's ASGITransport; native gRPC through a real
:class:`GrpcServer` on an ephemeral 127.0.0.1 port. Each call answers a
:class:`Result`: the canonical code name (None on success), the decoded
output and the response headers (trailing metadata on gRPC), so one test can
assert the same outcome whatever the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
import msgspec

from twofold import App, Code, GrpcServer
from twofold.core.method import Method
from twofold.http.envelope import frame
from twofold.http.routing import Template
from twofold.protobuf import Schema

PROTOCOLS = ["rest", "jsonrpc", "connect", "connect-proto", "grpc-web", "grpc"]


@dataclass
class Result:
    code: str | None
    output: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200


class Wires:
    def __init__(self, app: App, client: httpx.AsyncClient, channel: grpc.aio.Channel) -> None:
        self.app = app
        self.http = client
        self.channel = channel
        self.schema = Schema(app.table)
        self.methods = {m.name: m for m in app.table}

    async def call(
        self, protocol: str, rpc: str, payload: dict[str, Any], headers: dict[str, str]
    ) -> Result:
        method = self.methods[rpc]
        if protocol == "grpc":
            # gRPC metadata is printable ASCII: non-ASCII garbage goes escaped.
            escaped = {k: v.encode("unicode_escape").decode() for k, v in headers.items()}
            return await self._grpc(method, payload, escaped)
        # Raw UTF-8 bytes on HTTP, as a careless client would send them.
        raw: Any = {k: v.encode() for k, v in headers.items()}
        return await getattr(self, "_" + protocol.replace("-", "_"))(method, payload, raw)

    def _message(self, method: Method, payload: dict[str, Any]) -> Any:
        return msgspec.convert(payload, method.input_type, strict=False)

    async def _rest(
        self, method: Method, payload: dict[str, Any], headers: dict[str, str]
    ) -> Result:
        verb, path, kwargs = rest_request(method, payload)
        r = await self.http.request(verb, path, headers=headers, **kwargs)
        if r.is_success:
            return Result(None, r.json() if r.content else None, dict(r.headers), r.status_code)
        return Result(r.json()["code"], None, dict(r.headers), r.status_code)

    async def _jsonrpc(
        self, method: Method, payload: dict[str, Any], headers: dict[str, str]
    ) -> Result:
        body = {"jsonrpc": "2.0", "id": 1, "method": method.name, "params": payload}
        r = await self.http.post("/jsonrpc", json=body, headers=headers)
        doc = r.json()
        if "result" in doc:
            return Result(None, doc["result"], dict(r.headers), r.status_code)
        return Result(doc["error"]["data"]["code"], None, dict(r.headers), r.status_code)

    async def _connect(
        self, method: Method, payload: dict[str, Any], headers: dict[str, str]
    ) -> Result:
        r = await self.http.post(method.path, json=payload, headers=headers)
        if r.status_code == 200:
            return Result(None, r.json(), dict(r.headers), 200)
        return Result(r.json()["code"], None, dict(r.headers), r.status_code)

    async def _connect_proto(
        self, method: Method, payload: dict[str, Any], headers: dict[str, str]
    ) -> Result:
        data = self.schema.codec(method.input_type).encode(self._message(method, payload))
        all_headers = {**headers, "content-type": "application/proto"}
        r = await self.http.post(method.path, content=data, headers=all_headers)
        if r.status_code == 200:
            output = self.schema.codec(method.output_type).decode(r.content)
            return Result(None, msgspec.to_builtins(output), dict(r.headers), 200)
        return Result(r.json()["code"], None, dict(r.headers), r.status_code)

    async def _grpc_web(
        self, method: Method, payload: dict[str, Any], headers: dict[str, str]
    ) -> Result:
        data = self.schema.codec(method.input_type).encode(self._message(method, payload))
        body = struct.pack(">BI", 0, len(data)) + data
        all_headers = {**headers, "content-type": "application/grpc-web+proto"}
        r = await self.http.post(method.path, content=body, headers=all_headers)
        messages, found = grpc_web_answer(r)
        output = None
        for data in messages:
            output = msgspec.to_builtins(self.schema.codec(method.output_type).decode(data))
        status = int(found["grpc-status"])
        code = None if status == 0 else Code(status).wire_name
        return Result(code, output, found, r.status_code)

    async def _grpc(
        self, method: Method, payload: dict[str, Any], headers: dict[str, str]
    ) -> Result:
        call = self.channel.unary_unary(
            method.path,
            request_serializer=self.schema.codec(method.input_type).encode,
            response_deserializer=self.schema.codec(method.output_type).decode,
        )
        metadata = tuple((k.lower(), v) for k, v in headers.items())
        try:
            output = await call(self._message(method, payload), metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            trailers = {k: v for k, v in exc.trailing_metadata() or () if isinstance(v, str)}
            return Result(Code(exc.code().value[0]).wire_name, None, trailers)
        return Result(None, msgspec.to_builtins(output))

    async def stream(
        self,
        protocol: str,
        rpc: str,
        payloads: list[dict[str, Any]],
        headers: dict[str, str],
        timeout_ms: int = 500,
    ) -> Result:
        """A streaming call: ``payloads`` are the request messages (one for a
        server stream), ``timeout_ms`` the client's deadline in each protocol's
        own header, so that a stream that never ends by itself ends anyway.
        ``output`` is the list of messages received."""
        method = self.methods[rpc]
        messages = [self._message(method, p) for p in payloads]
        decode = self.schema.codec(method.output_type).decode
        if protocol == "grpc":
            return await self._grpc_stream(method, messages, headers, timeout_ms)
        raw: dict[str, Any] = {k: v.encode() for k, v in headers.items()}
        if protocol == "jsonrpc":
            return await self._jsonrpc(method, payloads[0], raw)
        if protocol == "rest":
            deadline = {"request-timeout": str(timeout_ms / 1000)}
            return await self._sse(method, payloads[0], {**raw, **deadline})
        if protocol.startswith("connect"):
            binary = protocol == "connect-proto"
            encode = self.schema.codec(method.input_type).encode
            body = b"".join(
                frame(encode(m) if binary else msgspec.json.encode(p))
                for m, p in zip(messages, payloads, strict=True)
            )
            all_headers = {
                **raw,
                "content-type": f"application/connect+{'proto' if binary else 'json'}",
                "connect-timeout-ms": str(timeout_ms),
            }
            r = await self.http.post(method.path, content=body, headers=all_headers)
            *frames, (_, end) = envelopes(r.content)
            outputs = [
                msgspec.to_builtins(decode(f)) if binary else msgspec.json.decode(f)
                for _, f in frames
            ]
            error = msgspec.json.decode(end).get("error")
            return Result(error and error["code"], outputs, dict(r.headers), r.status_code)
        encode = self.schema.codec(method.input_type).encode
        all_headers = {
            **raw,
            "content-type": "application/grpc-web+proto",
            "grpc-timeout": f"{timeout_ms}m",
        }
        body = b"".join(frame(encode(m)) for m in messages)
        r = await self.http.post(method.path, content=body, headers=all_headers)
        found = dict(r.headers)
        outputs = []
        for flags, chunk in envelopes(r.content):
            if flags & 0x80:
                for line in chunk.decode().split("\r\n"):
                    key, _, value = line.partition(":")
                    if key:
                        found[key.strip().lower()] = value.strip()
            else:
                outputs.append(msgspec.to_builtins(decode(chunk)))
        status = int(found["grpc-status"])
        return Result(None if status == 0 else Code(status).wire_name, outputs, found)

    async def _sse(self, method: Method, payload: dict[str, Any], headers: Any) -> Result:
        binding = method.http
        assert binding is not None and binding.verb == "GET"
        r = await self.http.get(binding.path, params=payload, headers=headers)
        if r.status_code != 200:
            return Result(r.json()["code"], [], dict(r.headers), r.status_code)
        data = [
            msgspec.json.decode(line[6:]) for line in r.text.splitlines() if line[:6] == "data: "
        ]
        if "event: error" in r.text:
            return Result(data[-1]["code"], data[:-1], dict(r.headers), 200)
        return Result(None, data, dict(r.headers), 200)

    async def _grpc_stream(
        self, method: Method, messages: list[Any], headers: dict[str, str], timeout_ms: int
    ) -> Result:
        serialize = self.schema.codec(method.input_type).encode
        deserialize = self.schema.codec(method.output_type).decode
        metadata = tuple(
            (k.lower(), v.encode("unicode_escape").decode()) for k, v in headers.items()
        )
        outputs: list[Any] = []
        try:
            if method.kind.value == "server":
                call = self.channel.unary_stream(method.path, serialize, deserialize)
                async for output in call(messages[0], metadata=metadata, timeout=timeout_ms / 1e3):
                    outputs.append(msgspec.to_builtins(output))
            else:
                call = self.channel.stream_unary(method.path, serialize, deserialize)

                async def feed() -> AsyncIterator[Any]:
                    for m in messages:
                        yield m

                answer = await call(feed(), metadata=metadata, timeout=timeout_ms / 1e3)
                outputs.append(msgspec.to_builtins(answer))
        except grpc.aio.AioRpcError as exc:
            trailers = {k: v for k, v in exc.trailing_metadata() or () if isinstance(v, str)}
            return Result(Code(exc.code().value[0]).wire_name, outputs, trailers)
        return Result(None, outputs)


def envelopes(body: bytes) -> list[tuple[int, bytes]]:
    """The (flags, payload) of each enveloped message in a response body."""
    out = []
    while body:
        flags, size = struct.unpack(">BI", body[:5])
        out.append((flags, body[5 : 5 + size]))
        body = body[5 + size :]
    return out


def grpc_web_answer(response: httpx.Response) -> tuple[list[bytes], dict[str, str]]:
    """A gRPC-Web answer's messages, and its trailers: the trailers envelope's
    header lines over the response headers (trailers-only puts them there)."""
    messages, trailers = [], dict(response.headers)
    for flags, data in envelopes(response.content):
        if flags & 0x80:
            for line in data.decode().split("\r\n"):
                key, _, value = line.partition(":")
                if key:
                    trailers[key.strip().lower()] = value.strip()
        else:
            messages.append(data)
    return messages, trailers


def rest_request(method: Method, payload: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """The verb, path and httpx arguments of a call on the method's REST route:
    path variables into the path, the body field (or all) as JSON, the rest as query."""
    payload = dict(payload)
    binding = method.http
    assert binding is not None, f"{method.name} has no REST binding"
    template = Template.parse(binding.path)
    path = template.expand({v: str(payload.pop(v)) for v in template.variables})
    kwargs: dict[str, Any] = {}
    if binding.body == "*":
        kwargs["json"] = payload
    elif binding.body:
        kwargs["json"] = payload.pop(binding.body)
    if binding.body != "*":
        kwargs["params"] = {k: v for k, v in payload.items() if v is not None}
    return binding.verb, path, kwargs


@contextlib.asynccontextmanager
async def wires(app: App, url: str | None = None) -> AsyncIterator[Wires]:
    """Every protocol of ``app``, in process (HTTP) and over a real gRPC server.

    With ``url``, HTTP goes over the network to the server there instead
    (``tests.e2e.threaded.serve(app)``).
    """
    server = GrpcServer(app)
    port = server.add_port("127.0.0.1:0")
    await server.start()
    try:
        transport = None if url is not None else httpx.ASGITransport(app)
        async with (
            httpx.AsyncClient(transport=transport, base_url=url or "http://t") as client,
            grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
        ):
            yield Wires(app, client, channel)
    finally:
        await server.stop(None)


def run(app: App, scenario: Callable[[Wires], Awaitable[None]]) -> None:
    """Run ``scenario`` with every wire of ``app`` at hand, in one event loop."""

    async def main() -> None:
        async with wires(app) as w:
            await scenario(w)

    asyncio.run(main())
