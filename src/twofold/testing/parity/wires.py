"""One call of a method over any wire, sent as that wire's own clients send it.

:class:`AsyncWires` builds each request by hand from a JSON-like payload:
REST from the method's route (in JSON, or XML for ``rest-xml``), JSON-RPC and
Connect as JSON, XML-RPC as XML, protobuf
messages by the protobuf runtime from the app's descriptors; gRPC goes
through grpcio. The ``client-*`` wires call through :class:`twofold.AsyncClient`
instead. Every call answers an :class:`~twofold.testing.parity.Outcome`.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
import xmlrpc.client
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
import msgspec
from google.protobuf import json_format

from twofold.client.errors import Failure
from twofold.core import messages
from twofold.core.code import HTTP_STATUS, Code
from twofold.core.errors import Error
from twofold.core.method import Idempotency, Method, StreamKind
from twofold.core.table import MethodTable
from twofold.http import xmlmessage, xmlrpcvalue
from twofold.http.envelope import frame
from twofold.http.routing import Template
from twofold.protobuf import json as protojson
from twofold.protobuf.schema import Schema
from twofold.testing.parity.answers import (
    DETAILS,
    Outcome,
    Unsupported,
    connect_error,
    envelopes,
    fail,
    grpc_web_answer,
    grpc_web_status,
    jsonrpc_error,
    rest_error,
    rest_xml_error,
    status_details,
    xmlrpc_fault,
)

if TYPE_CHECKING:
    import grpc

    from twofold.client.stubs import AsyncClient

# Every wire a Twofold app serves, each as its own clients speak it.
WIRES = (
    "rest",
    "rest-xml",
    "jsonrpc",
    "xmlrpc",
    "connect",
    "connect-proto",
    "connect-get",
    "grpc-web",
    "grpc",
)
# The same wires through twofold.AsyncClient (REST, JSON-RPC, Connect, gRPC-Web, gRPC).
CLIENT_WIRES = (
    "client-rest",
    "client-jsonrpc",
    "client-connect",
    "client-connect-proto",
    "client-grpc-web",
    "client-grpc",
)
_PROTO = ("connect-proto", "grpc-web", "grpc")
# Codes grpcio makes by itself, with no server status to carry details: a
# deadline passed, a call cancelled, a connection lost, metadata over its limit.
_GRPC_CORE_CODES = {
    Code.DEADLINE_EXCEEDED,
    Code.CANCELED,
    Code.UNAVAILABLE,
    Code.RESOURCE_EXHAUSTED,
}
Payload = Mapping[str, Any] | bytes


class AsyncWires:
    """Every wire of one app, for ``await wires.call("grpc-web", "GetBook", {"id": 1})``.

    ``http`` is an ``httpx.AsyncClient`` bound to the app (in process or at
    its URL), ``channel`` a grpcio channel to its gRPC port (None: gRPC is
    not served, and calls on it are :class:`Unsupported`), ``headers`` go
    with every call. ``clients`` makes the ``client-*`` wire's
    :class:`~twofold.AsyncClient` for a protocol; ``grpc_target``, the
    channel's address, lets client streams use grpcio's blocking client.
    """

    def __init__(
        self,
        table: MethodTable,
        http: httpx.AsyncClient,
        channel: grpc.aio.Channel | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        clients: Any = None,
        grpc_target: str | None = None,
    ) -> None:
        self.table = table
        self.http = http
        self.channel = channel
        self.grpc_target = grpc_target
        self.headers = dict(headers or {})
        self.schema = Schema(table)
        self.methods = {m.name: m for m in table}
        self._python = {m.python_name: m for m in table if m.python_name}
        self._make_client = clients
        self._clients: dict[str, AsyncClient] = {}

    def method(self, name: str) -> Method:
        """A method by RPC name (``GetBook``) or Python name (``get_book``)."""
        found = self.methods.get(name) or self._python.get(name)
        if found is None:
            raise KeyError(f"the app has no method {name!r}")
        return found

    async def call(
        self,
        wire: str,
        rpc: str,
        payload: Payload | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Outcome:
        """Call ``rpc`` with ``payload`` (JSON-like; raw protobuf bytes on the
        protobuf wires) over ``wire``; :class:`Unsupported` if it cannot be sent there."""
        if wire not in WIRES + CLIENT_WIRES:
            raise ValueError(f"no wire {wire!r}: one of {', '.join(WIRES + CLIENT_WIRES)}")
        method = self.method(rpc)
        payload = {} if payload is None else payload
        sent = {**self.headers, **(headers or {})}
        if method.kind is not StreamKind.UNARY:
            if wire in ("jsonrpc", "client-jsonrpc"):
                raise Unsupported(f"JSON-RPC over HTTP carries no {method.kind.value} streams")
            if wire == "xmlrpc":
                raise Unsupported(f"XML-RPC carries no {method.kind.value} streams")
            # A stream declared as one call ends by itself: a deadline only
            # for one that does not, well past any slow machine's pace.
            return await self.stream(wire, rpc, [payload], headers, timeout_ms=10_000)
        if wire.startswith("client-"):
            return await self._client(wire.removeprefix("client-"), method, payload, sent)
        if isinstance(payload, bytes) and wire not in _PROTO:
            raise Unsupported(f"raw protobuf bytes cannot be sent on {wire}")
        if wire == "grpc":
            return await self._grpc(method, payload, _escaped(sent))
        # Raw UTF-8 bytes on HTTP, as a careless client would send them.
        raw: Any = {k: v.encode() for k, v in sent.items()}
        handler = {
            "rest": self._rest,
            "rest-xml": self._rest_xml,
            "jsonrpc": self._jsonrpc,
            "xmlrpc": self._xmlrpc,
            "connect": self._connect,
            "connect-proto": self._connect_proto,
            "connect-get": self._connect_get,
            "grpc-web": self._grpc_web,
        }[wire]
        return await handler(method, payload, raw)

    # -- unary, over HTTP ------------------------------------------------------

    def _typed(self, method: Method, doc: Any) -> Any:
        return msgspec.convert(doc or {}, method.output_type, strict=False)

    async def _rest(self, method: Method, payload: Any, headers: Any) -> Outcome:
        verb, path, kwargs = rest_request(method, payload)
        r = await self.http.request(verb, path, headers=headers, **kwargs)
        if r.is_success:
            doc = r.json() if r.content else None
            return Outcome(None, doc, dict(r.headers), r.status_code, self._typed(method, doc))
        return rest_error(r)

    async def _rest_xml(self, method: Method, payload: Any, headers: Any) -> Outcome:
        # The body written by Twofold's XML mapping with no type to guide it
        # (the payload may well be wrong on purpose); the answer read by the
        # standard library's ElementTree, then by the mapping's rules.
        verb, path, kwargs = rest_request(method, payload)
        headers = {**headers, "accept": b"application/xml"}
        if "json" in kwargs:
            try:
                kwargs["content"] = xmlmessage.document(kwargs.pop("json"), _body_root(method))
            except xmlmessage.Unrepresentable as exc:
                raise Unsupported(f"XML: {exc}") from None
            headers["content-type"] = b"application/xml"
        r = await self.http.request(verb, path, headers=headers, **kwargs)
        if not r.is_success:
            return rest_xml_error(r)
        doc = None
        if r.content:
            if r.headers.get("content-type") != "application/xml":
                raise fail(f"REST asked for XML answered {r.headers.get('content-type')}")
            root = ET.fromstring(r.content)
            if root.tag != xmlmessage.root_name(method.output_type):
                raise fail(f"REST XML answered a <{root.tag}> for {method.name}")
            doc = xmlmessage.tree(root, xmlmessage.plan(method.output_type))
        return Outcome(None, doc, dict(r.headers), r.status_code, self._typed(method, doc))

    async def _jsonrpc(self, method: Method, payload: Any, headers: Any) -> Outcome:
        body = {"jsonrpc": "2.0", "id": 7, "method": method.name, "params": dict(payload)}
        r = await self.http.post("/jsonrpc", json=body, headers=headers)
        if r.status_code != 200 or not r.headers.get("content-type", "").startswith(
            "application/json"
        ):
            raise fail(f"JSON-RPC answered {r.status_code}: {r.text[:200]}")
        doc = r.json()
        if doc.get("jsonrpc") != "2.0" or doc.get("id") != 7:
            raise fail(f"not a JSON-RPC 2.0 response to id 7: {doc}")
        if "result" in doc:
            result = doc["result"]
            return Outcome(None, result, dict(r.headers), 200, self._typed(method, result))
        return jsonrpc_error(r, doc["error"])

    async def _xmlrpc(self, method: Method, payload: Any, headers: Any) -> Outcome:
        # Written with Twofold's own value writer (xmlrpc.client refuses ints
        # past i4), read back with Python's xmlrpc.client, a reader we did not write.
        try:
            params = xmlrpcvalue.write(dict(payload)).encode()
        except xmlrpcvalue.NotXml as exc:
            raise Unsupported(f"XML-RPC: {exc}") from None
        body = (
            b"<?xml version='1.0'?><methodCall><methodName>"
            + method.name.encode()
            + b"</methodName><params><param>"
            + params
            + b"</param></params></methodCall>"
        )
        headers = {**headers, "content-type": b"text/xml"}
        r = await self.http.post("/RPC2", content=body, headers=headers)
        if r.status_code != 200 or r.headers.get("content-type") != "text/xml":
            raise fail(f"XML-RPC answered {r.status_code}: {r.text[:200]}")
        try:
            (result,), _ = xmlrpc.client.loads(r.content, use_builtin_types=True)
        except xmlrpc.client.Fault:
            return xmlrpc_fault(r)
        return Outcome(None, result, dict(r.headers), 200, self._typed(method, result))

    async def _connect(self, method: Method, payload: Any, headers: Any) -> Outcome:
        headers = {**headers, "connect-protocol-version": "1"}
        r = await self.http.post(method.path, json=dict(payload), headers=headers)
        return self._connect_json(method, r)

    async def _connect_get(self, method: Method, payload: Any, headers: Any) -> Outcome:
        if method.idempotency is not Idempotency.NO_SIDE_EFFECTS:
            raise Unsupported(f"{method.name} has side effects: Connect GET is for reads only")
        message = msgspec.json.encode(dict(payload)).decode()
        query = urlencode({"connect": "v1", "encoding": "json", "message": message})
        r = await self.http.get(f"{method.path}?{query}", headers=headers)
        return self._connect_json(method, r)

    def _connect_json(self, method: Method, r: httpx.Response) -> Outcome:
        if r.status_code != 200:
            return connect_error(r)
        # Proto3 JSON (enum names, int64 strings), read as Connect clients read it.
        data = protojson.codec(method.output_type).decode(r.content)
        return Outcome(None, r.json(), dict(r.headers), 200, data)

    def encode(self, tp: type[Any], payload: Payload) -> bytes:
        """The protobuf request of ``tp`` for ``payload`` (see :func:`proto_request`)."""
        return proto_request(self.schema, tp, payload)

    def _decoded(self, method: Method, data: bytes) -> tuple[Any, Any]:
        value = self.schema.codec(method.output_type).decode(data)
        return value, msgspec.to_builtins(value)

    async def _connect_proto(self, method: Method, payload: Any, headers: Any) -> Outcome:
        body = self.encode(method.input_type, payload)
        headers = {
            **headers,
            "content-type": "application/proto",
            "connect-protocol-version": "1",
        }
        r = await self.http.post(method.path, content=body, headers=headers)
        if r.status_code != 200:
            return connect_error(r)
        if r.headers.get("content-type") != "application/proto":
            raise fail(f"Connect answered {r.headers.get('content-type')} to application/proto")
        data, output = self._decoded(method, r.content)
        return Outcome(None, output, dict(r.headers), 200, data)

    async def _grpc_web(self, method: Method, payload: Any, headers: Any) -> Outcome:
        body = frame(self.encode(method.input_type, payload))
        headers = {**headers, "content-type": "application/grpc-web+proto", "x-grpc-web": "1"}
        r = await self.http.post(method.path, content=body, headers=headers)
        if r.status_code != 200:
            # gRPC-Web carries every outcome in grpc-status: HTTP stays 200.
            raise fail(f"gRPC-Web answered HTTP {r.status_code}: {r.text[:200]}")
        messages, trailers = grpc_web_answer(r)
        code, fields = grpc_web_status(trailers)
        if code is not None:
            return Outcome(code, None, trailers, r.status_code, violations=fields)
        if len(messages) != 1:
            raise fail(f"a unary gRPC-Web answer with {len(messages)} messages")
        data, output = self._decoded(method, messages[0])
        return Outcome(None, output, trailers, r.status_code, data)

    # -- unary, over gRPC ------------------------------------------------------

    def _channel(self) -> grpc.aio.Channel:
        if self.channel is None:
            raise Unsupported("no gRPC port to call")
        return self.channel

    async def _grpc(self, method: Method, payload: Any, headers: dict[str, str]) -> Outcome:
        import grpc

        call = self._channel().unary_unary(method.path)
        metadata = tuple((k.lower(), v) for k, v in headers.items())
        try:
            answer = await call(self.encode(method.input_type, payload), metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            return _grpc_error(exc, [])
        data, output = self._decoded(method, answer)
        return Outcome(None, output, {}, 200, data)

    # -- streams ---------------------------------------------------------------

    async def stream(
        self,
        wire: str,
        rpc: str,
        payloads: Sequence[Payload],
        headers: Mapping[str, str] | None = None,
        timeout_ms: int = 500,
    ) -> Outcome:
        """A streaming call: ``payloads`` are the request messages (one for a
        server stream), ``timeout_ms`` the client's deadline in each wire's
        own header, so that a stream that never ends by itself ends anyway.
        ``output`` and ``data`` are the lists of messages received."""
        if wire not in WIRES + CLIENT_WIRES:
            raise ValueError(f"no wire {wire!r}: one of {', '.join(WIRES + CLIENT_WIRES)}")
        method = self.method(rpc)
        sent = {**self.headers, **(headers or {})}
        if wire == "grpc":
            return await self._grpc_stream(method, payloads, _escaped(sent), timeout_ms)
        raw: dict[str, Any] = {k: v.encode() for k, v in sent.items()}
        if wire == "jsonrpc":
            return await self._jsonrpc(method, payloads[0], raw)
        if wire == "xmlrpc":  # refused by the wire, as JSON-RPC's are: sent all the same
            return await self._xmlrpc(method, payloads[0], raw)
        if wire in ("rest", "rest-xml"):  # Server-Sent Events are not negotiated
            deadline = {"request-timeout": str(timeout_ms / 1000)}
            return await self._sse(method, payloads[0], {**raw, **deadline})
        if wire.startswith("client-") and method.kind is StreamKind.SERVER:
            protocol = wire.removeprefix("client-")
            return await self._client(protocol, method, payloads[0], sent, timeout_ms / 1e3)
        if wire in ("connect", "connect-proto"):
            return await self._connect_stream(method, payloads, raw, wire, timeout_ms)
        if wire == "grpc-web":
            return await self._grpc_web_stream(method, payloads, raw, timeout_ms)
        if wire == "connect-get":
            raise Unsupported("Connect GET carries unary calls only")
        raise Unsupported(f"{wire} does not carry {method.kind.value} streams")

    async def _sse(self, method: Method, payload: Any, headers: Any) -> Outcome:
        binding = method.http
        if binding is None or binding.verb != "GET":
            raise Unsupported(f"{method.name} has no Server-Sent Events route")
        r = await self.http.get(binding.path, params=dict(payload), headers=headers)
        if r.status_code != 200:
            error = rest_error(r)
            error.output = error.data = []
            return error
        outputs = [
            msgspec.json.decode(line[6:]) for line in r.text.splitlines() if line[:6] == "data: "
        ]
        code = None
        if "event: error" in r.text:
            code = outputs.pop()["code"]
        data = [self._typed(method, o) for o in outputs]
        return Outcome(code, outputs, dict(r.headers), 200, data)

    async def _connect_stream(
        self, method: Method, payloads: Sequence[Payload], raw: Any, wire: str, timeout_ms: int
    ) -> Outcome:
        binary = wire == "connect-proto"
        if not binary and any(isinstance(p, bytes) for p in payloads):
            raise Unsupported("raw protobuf bytes cannot be sent as Connect JSON")
        body = b"".join(
            frame(
                self.encode(method.input_type, p)
                if binary or isinstance(p, bytes)
                else msgspec.json.encode(dict(p))
            )
            for p in payloads
        )
        headers = {
            **raw,
            "content-type": f"application/connect+{'proto' if binary else 'json'}",
            "connect-timeout-ms": str(timeout_ms),
        }
        r = await self.http.post(method.path, content=body, headers=headers)
        if r.status_code != 200:
            error = connect_error(r)
            error.output = error.data = []
            return error
        found = envelopes(r.content)
        if not found or not found[-1][0] & 0x02:
            raise fail("a Connect stream without its end-of-stream message")
        *frames, (_, end) = found
        outputs, data = [], []
        for _, f in frames:
            if binary:
                value, output = self._decoded(method, f)
            else:
                value = protojson.codec(method.output_type).decode(f)
                output = msgspec.json.decode(f)
            data.append(value)
            outputs.append(output)
        error = msgspec.json.decode(end).get("error")
        code = error and error["code"]
        return Outcome(code, outputs, dict(r.headers), r.status_code, data)

    async def _grpc_web_stream(
        self, method: Method, payloads: Sequence[Payload], raw: Any, timeout_ms: int
    ) -> Outcome:
        headers = {
            **raw,
            "content-type": "application/grpc-web+proto",
            "grpc-timeout": f"{timeout_ms}m",
        }
        body = b"".join(frame(self.encode(method.input_type, p)) for p in payloads)
        r = await self.http.post(method.path, content=body, headers=headers)
        messages, trailers = grpc_web_answer(r)
        code, fields = grpc_web_status(trailers)
        decoded = [self._decoded(method, m) for m in messages]
        data, outputs = [d for d, _ in decoded], [o for _, o in decoded]
        return Outcome(code, outputs, trailers, r.status_code, data, fields)

    async def _grpc_stream(
        self,
        method: Method,
        payloads: Sequence[Payload],
        headers: dict[str, str],
        timeout_ms: int,
    ) -> Outcome:
        import grpc

        channel = self._channel()
        messages = [self.encode(method.input_type, p) for p in payloads]
        metadata = tuple((k.lower(), v) for k, v in headers.items())
        answers: list[bytes] = []
        try:
            if method.kind is StreamKind.SERVER:
                call = channel.unary_stream(method.path)
                async for answer in call(messages[0], metadata=metadata, timeout=timeout_ms / 1e3):
                    answers.append(answer)
            elif self.grpc_target is not None:
                # grpcio's asyncio client loses the server's status when the
                # server ends a client or bidi stream before the client
                # half-closes (a write that then fails overwrites it with a
                # local "INTERNAL: Internal error from Core", grpc/grpc#36066);
                # its blocking client keeps it, so these streams go through that.
                target, path = self.grpc_target, method.path
                blocking = (target, path, messages, metadata, timeout_ms)
                if method.kind is StreamKind.BIDI:
                    await asyncio.to_thread(_bidi_stream, *blocking, answers)
                else:
                    answers.append(await asyncio.to_thread(_client_stream, *blocking))
            elif method.kind is StreamKind.BIDI:
                duplex = channel.stream_stream(method.path)
                fed = duplex(_fed(messages), metadata=metadata, timeout=timeout_ms / 1e3)
                async for answer in fed:
                    answers.append(answer)
            else:
                call = channel.stream_unary(method.path)
                answer = await call(_fed(messages), metadata=metadata, timeout=timeout_ms / 1e3)
                answers.append(answer)
        except (grpc.aio.AioRpcError, grpc.RpcError) as exc:
            return _grpc_error(exc, [self._decoded(method, a) for a in answers])
        decoded = [self._decoded(method, a) for a in answers]
        return Outcome(None, [o for _, o in decoded], {}, 200, [d for d, _ in decoded])

    # -- through twofold.AsyncClient -------------------------------------------

    async def _client(
        self,
        protocol: str,
        method: Method,
        payload: Payload,
        headers: dict[str, str],
        timeout: float | None = None,  # noqa: ASYNC109 - the call's deadline, sent
    ) -> Outcome:
        if isinstance(payload, bytes):
            raise Unsupported("raw protobuf bytes cannot be sent through twofold.AsyncClient")
        if protocol == "rest" and method.http is None:
            raise Unsupported(f"{method.name} has no REST route")
        client = self._clients.get(protocol)
        if client is None:
            if self._make_client is None:
                raise Unsupported("no twofold.AsyncClient to call through")
            client = self._clients[protocol] = self._make_client(protocol)
        stream = method.kind is StreamKind.SERVER
        options: dict[str, Any] = {"headers": headers or None, "timeout": timeout}
        outputs: list[Any] = []
        try:
            if stream:
                async for output in client.call_stream(method.name, dict(payload), **options):
                    outputs.append(output)
            else:
                outputs.append(await client.call(method.name, dict(payload), **options))
        except Error as exc:
            fields = [v.field for v in exc.violations]
            got = (outputs, [msgspec.to_builtins(o) for o in outputs]) if stream else (None, None)
            status = HTTP_STATUS[exc.code]
            return Outcome(exc.code.wire_name, got[1], {}, status, got[0], fields)
        except Failure as exc:
            raise fail(f"{protocol}: the client could not read the answer: {exc}") from exc
        for output in outputs:
            if not isinstance(output, method.output_type):
                raise fail(f"{protocol}: the client answered a {type(output).__name__}")
        if stream:
            return Outcome(None, [msgspec.to_builtins(o) for o in outputs], {}, 200, outputs)
        return Outcome(None, msgspec.to_builtins(outputs[0]), {}, 200, outputs[0])

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()


def proto_request(schema: Schema, tp: type[Any], payload: Payload) -> bytes:
    """Protobuf bytes for a JSON-like payload, as a protobuf client sends them:
    parsed by the protobuf runtime into the message class of ``schema``'s
    descriptors; raw bytes are sent as they are. :class:`Unsupported` if
    protobuf cannot hold it ("forty-two" for an int64)."""
    if isinstance(payload, bytes):
        return payload
    cls = schema.message_class(tp)
    try:
        return json_format.ParseDict(dict(payload), cls()).SerializeToString()
    except json_format.ParseError as exc:
        problem = exc
    # Python values (bytes, enum members) the JSON parser does not take: as
    # Twofold's own client would send them.
    try:
        message = msgspec.convert(dict(payload), tp, strict=False)
    except msgspec.ValidationError:
        raise Unsupported(f"protobuf cannot hold the request: {problem}") from None
    return schema.codec(tp).encode(message)


async def _fed(messages: list[bytes]) -> AsyncIterator[bytes]:
    for m in messages:
        yield m


def _client_stream(
    target: str,
    path: str,
    messages: list[bytes],
    metadata: tuple[tuple[str, str], ...],
    timeout_ms: int,
) -> bytes:
    """One client-streaming call through grpcio's blocking client."""
    import grpc

    with grpc.insecure_channel(target) as channel:
        call = channel.stream_unary(path)
        answer: bytes = call(iter(messages), metadata=metadata, timeout=timeout_ms / 1e3)
        return answer


def _bidi_stream(
    target: str,
    path: str,
    messages: list[bytes],
    metadata: tuple[tuple[str, str], ...],
    timeout_ms: int,
    answers: list[bytes],
) -> None:
    """One bidi call through grpcio's blocking client, its outputs into ``answers``
    as they come (those before a failure are kept)."""
    import grpc

    with grpc.insecure_channel(target) as channel:
        call = channel.stream_stream(path)
        answers.extend(call(iter(messages), metadata=metadata, timeout=timeout_ms / 1e3))


def _escaped(headers: Mapping[str, str]) -> dict[str, str]:
    # gRPC metadata is printable ASCII: non-ASCII garbage goes escaped.
    return {k: v.encode("unicode_escape").decode() for k, v in headers.items()}


def _grpc_error(exc: Any, decoded: list[tuple[Any, Any]]) -> Outcome:
    """A failed gRPC call: its code, trailers and the violations of its status details."""
    status = exc.code().value[0]
    raw = dict(exc.trailing_metadata() or ())
    details = raw.get(DETAILS)
    if details is None and Code(status) not in _GRPC_CORE_CODES:
        raise fail(f"a gRPC {Code(status).wire_name} without {DETAILS}: {exc.details()!r}")
    fields = status_details(details, status, exc.details()) if details else []
    trailers = {k: v for k, v in raw.items() if isinstance(v, str)}
    data, outputs = [d for d, _ in decoded], [o for _, o in decoded]
    return Outcome(
        Code(status).wire_name,
        outputs or None,
        trailers,
        HTTP_STATUS[Code(status)],
        data or None,
        fields,
    )


def rest_request(method: Method, payload: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """The verb, path and httpx arguments of a call on the method's REST route:
    path variables into the path, the body field (or all) as JSON, the rest as query."""
    binding = method.http
    if binding is None:
        raise Unsupported(f"{method.name} has no REST route")
    payload = dict(payload)
    template = Template.parse(binding.path)
    # A path segment cannot be empty or absent: such a call has no REST URL.
    missing = [v for v in template.variables if payload.get(v) in (None, "")]
    if missing:
        raise Unsupported(f"the REST path {binding.path} needs a value for {', '.join(missing)}")
    path = template.expand({v: str(payload.pop(v)) for v in template.variables})
    kwargs: dict[str, Any] = {}
    if binding.body == "*":
        kwargs["json"] = payload
    elif binding.body:
        kwargs["json"] = payload.pop(binding.body, {})
    if binding.body != "*":
        query = {k: v for k, v in payload.items() if v is not None}
        if any(isinstance(v, (dict, list)) and not _flat(v) for v in query.values()):
            raise Unsupported(f"a nested message cannot go in the query of {binding.path}")
        kwargs["params"] = query
    return binding.verb, path, kwargs


def _body_root(method: Method) -> str:
    """The root element of a method's REST body: the body's message name
    (the request, its body field's type, or ``{Method}Body`` less path fields)."""
    binding = method.http
    assert binding is not None
    if binding.body == "*":
        return f"{method.name}Body" if binding.path_params else method.input_type.__name__
    field = next(f for f in messages.fields(method.input_type) if f.name == binding.body)
    return xmlmessage.root_name(field.type)


def _flat(value: Any) -> bool:
    return isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value)
