"""One encoder/decoder per wire spoken over HTTP: REST, JSON-RPC 2.0, Connect
(JSON or protobuf) and gRPC-Web.

A protocol turns ``(rpc, message)`` into an :class:`HttpRequest` and an
:class:`HttpResponse` into the output message, or raises
:class:`~twofold.client.errors.Failure` with the error the server meant.
Each reads the error document its server side writes (problem+json,
JSON-RPC's ``error.data``, Connect's error body, gRPC-Web's trailers);
anything else is coded by HTTP status
(:data:`~twofold.client.errors.HTTP_FALLBACK`).

Outputs are decoded into the method's output type and any mismatch is
INTERNAL: the server broke its contract, retrying will not mend it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any, ClassVar, Literal

import msgspec
from msgspec import UNSET, UnsetType

from twofold.client import uploads
from twofold.client.codecs import Codecs, MessageCodec
from twofold.client.errors import (
    Failure,
    code_from,
    fail,
    json_details,
    message_from,
    unexpected,
    violations,
)
from twofold.client.rpc import Rpc
from twofold.client.streams import (
    EVENT_STREAM,
    ConnectReader,
    EventReader,
    GrpcWebReader,
    Reader,
    connect_error,
)
from twofold.client.transports import HttpRequest, HttpResponse
from twofold.core.code import INVALID_REQUEST, JSONRPC_CODE, PARSE_ERROR, Code
from twofold.core.errors import Error
from twofold.core.files import File, Upload, is_file, upload_source
from twofold.core.method import HttpBinding, StreamKind
from twofold.http import envelope
from twofold.http.files import disposition, disposition_filename, safe_filename
from twofold.http.routing import Template

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
_encode = msgspec.json.Encoder().encode
_decode_any = msgspec.json.Decoder().decode
Messages = Iterable[Any] | AsyncIterable[Any]
_ENVELOPED = frozenset({StreamKind.UNARY, StreamKind.SERVER, StreamKind.CLIENT})


def _is_json(media_type: str) -> bool:
    return media_type == JSON or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _document(response: HttpResponse) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one."""
    if not _is_json(response.media_type):
        return None
    try:
        doc = _decode_any(response.content)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def _failure(error: Error, response: HttpResponse) -> Failure:
    # Retrying a body that was too large fails the same way however long one waits.
    return Failure(error, retryable=response.status != 413)


class Protocol:
    """The encoder/decoder of one wire.

    The protocols that carry streams (Connect and gRPC-Web; REST, server
    streams only, as Server-Sent Events) also build a streaming request
    (``stream_request``) and read the answer with a
    :mod:`~twofold.client.streams` reader. Native gRPC is not an HTTP
    exchange one can hold in hand (grpcio owns the HTTP/2 connection): it is
    :mod:`twofold.client.channels`.

    Adding a protocol is one class here and one entry in :data:`HTTP_PROTOCOLS`.
    """

    name: ClassVar[str]
    kinds: ClassVar[frozenset[StreamKind]] = frozenset({StreamKind.UNARY})
    """The calls this wire carries over HTTP."""

    def __init__(self, codecs: Codecs) -> None:
        self.codecs = codecs
        self._decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}

    def request(self, rpc: Rpc[Any, Any], message: Any, timeout: float | None) -> HttpRequest:
        raise NotImplementedError

    def response(self, rpc: Rpc[Any, Any], response: HttpResponse) -> Any:
        raise NotImplementedError

    def codec(self, rpc: Rpc[Any, Any]) -> MessageCodec:
        """The message codec of a streaming wire."""
        raise NotImplementedError

    def stream_request(
        self, rpc: Rpc[Any, Any], messages: Messages, timeout: float | None
    ) -> HttpRequest:
        """A streaming call of ``messages`` (a list of one for a server stream)."""
        raise NotImplementedError

    def reader(self, rpc: Rpc[Any, Any], head: HttpResponse, limit: int) -> Reader:
        """The reader of a streamed answer; raises Failure when ``head`` says it is none."""
        raise NotImplementedError

    def _output(self, rpc: Rpc[Any, Any], raw: bytes | msgspec.Raw) -> Any:
        """Plain JSON into the output type, strictly, as REST and JSON-RPC send it."""
        decoder = self._decoders.get(rpc.output_type)
        if decoder is None:
            decoder = self._decoders[rpc.output_type] = msgspec.json.Decoder(rpc.output_type)
        try:
            return decoder.decode(raw)
        except msgspec.ValidationError as exc:
            raise _malformed(rpc, str(exc)) from None
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise fail(Code.INTERNAL, f"{rpc.name} answered malformed JSON: {exc}") from None


def _malformed(rpc: Rpc[Any, Any], problem: str) -> Failure:
    return fail(
        Code.INTERNAL, f"{rpc.name} answered a malformed {rpc.output_type.__name__}: {problem}"
    )


class Rest(Protocol):
    """REST as :mod:`twofold.wires.rest` serves it: the method's HTTP binding."""

    name = "rest"
    kinds = frozenset({StreamKind.UNARY, StreamKind.SERVER})

    def __init__(self, codecs: Codecs) -> None:
        super().__init__(codecs)
        self._templates: dict[str, Template] = {}

    def request(self, rpc: Rpc[Any, Any], message: Any, timeout: float | None) -> HttpRequest:
        binding = rpc.http
        if binding is None:
            raise Error(
                Code.UNIMPLEMENTED,
                f"{rpc.name} has no REST route: call it over jsonrpc or connect",
            )
        template = self._templates.get(binding.path)
        if template is None:
            template = self._templates[binding.path] = Template.parse(binding.path)
        upload = uploads.streamed(message)
        values = msgspec.to_builtins(message)
        if not isinstance(values, dict):
            raise Error(Code.INVALID_ARGUMENT, f"{rpc.name}: a REST request must be an object")
        path_values = {}
        for variable in template.variables:
            value = values.pop(variable, None)
            if value is None:
                raise Error.invalid(variable, "a value is required: it is part of the URL")
            path_values[variable] = _text(value)
        if upload is not None:
            path = template.expand(path_values)
            return self._upload(rpc, binding, path, values, message, upload)
        headers = {"accept": f"{JSON}, {PROBLEM_JSON}"}
        content = b""
        if binding.body == "*":
            content = _encode(values)
            values = {}
        elif binding.body is not None:
            body = values.pop(binding.body, UNSET)
            if body is not UNSET:
                content = _encode(body)
        if content:
            headers["content-type"] = JSON
        return HttpRequest(
            binding.verb, template.expand(path_values), headers, content, _query(values)
        )

    def _upload(
        self,
        rpc: Rpc[Any, Any],
        binding: HttpBinding,
        path: str,
        values: dict[str, Any],
        message: Any,
        upload: Upload,
    ) -> HttpRequest:
        """The upload's chunks as the raw body, its media type and name in the
        headers, the other fields in the query (as twofold.wires.rest takes them)."""
        field = next(n for n in message.__struct_fields__ if getattr(message, n) is upload)
        values.pop(field)
        if binding.body not in ("*", field) or (binding.body == "*" and values):
            raise TypeError(
                f"{rpc.name}: {binding.verb} {binding.path} takes no upload body "
                "(the file must be its body field): send Upload(data=...) instead"
            )
        headers = {
            "accept": f"{JSON}, {PROBLEM_JSON}",
            "content-type": upload.content_type or "application/octet-stream",
        }
        if upload.filename:
            headers["content-disposition"] = disposition(upload.filename).decode("latin-1")
        return HttpRequest(
            binding.verb, path, headers, params=_query(values), stream=upload_source(upload)
        )

    def response(self, rpc: Rpc[Any, Any], response: HttpResponse) -> Any:
        if 200 <= response.status < 300:
            if response.status == 204:
                return self._output(rpc, b"{}")
            if is_file(rpc.output_type) and not _is_json(response.media_type):
                return _file(rpc.output_type, response)
            if not _is_json(response.media_type):
                raise unexpected(response.status, response.media_type, response.content)
            return self._output(rpc, response.content)
        doc = _document(response)
        if doc is None or not isinstance(doc.get("code"), str):
            raise unexpected(response.status, response.media_type, response.content)
        raise _failure(_problem(doc), response)

    def stream_request(
        self, rpc: Rpc[Any, Any], messages: Messages, timeout: float | None
    ) -> HttpRequest:
        if not isinstance(messages, list) or len(messages) != 1:
            raise TypeError("a REST stream is a server stream: one request message")
        request = self.request(rpc, messages[0], timeout)
        request.headers["accept"] = f"{EVENT_STREAM}, {PROBLEM_JSON}"
        return request

    def reader(self, rpc: Rpc[Any, Any], head: HttpResponse, limit: int) -> Reader:
        if head.status != 200 or head.media_type != EVENT_STREAM:
            self.response(rpc, head)  # raises: the problem document, or what came instead
            raise unexpected(head.status, head.media_type, head.content)
        return EventReader(lambda data: self._output(rpc, data), _event_problem, limit)


def _file(tp: type[File], response: HttpResponse) -> File:
    """A download as REST answers it: the bytes, their media type, name and tag."""
    headers = response.headers
    try:
        # A name with a path in it is refused here as on the server: never a
        # file name a caller might write to outside the directory it chose.
        name = safe_filename(
            disposition_filename(headers.get("content-disposition", "").encode("latin-1"))
        )
    except Error as exc:
        raise fail(Code.INTERNAL, f"the download's Content-Disposition: {exc.message}") from None
    return tp(
        data=response.content,
        content_type=headers.get("content-type", "") or "application/octet-stream",
        filename=name,
        etag=headers.get("etag", ""),
    )


def _problem(doc: dict[str, Any]) -> Error:
    """An RFC 9457 problem document with Twofold's ``code`` and ``violations``."""
    code = code_from(doc["code"])
    details = [*violations(doc.get("violations")), *json_details(doc.get("details"))]
    return Error(code, message_from(doc.get("detail"), code), details)


def _event_problem(data: bytes) -> Failure:
    """The failure an SSE ``event: error`` reports, its data a problem document."""
    try:
        doc = _decode_any(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("code"), str):
        return fail(Code.INTERNAL, "malformed error event in the event stream")
    return Failure(_problem(doc))


def _text(value: Any) -> str:
    """A JSON value as URL text: the spelling the server's lenient decoding reads."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return _encode(value).decode()


def _query(values: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The fields left for the query string; a list repeats its name, None is left out."""
    out: list[tuple[str, str]] = []
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, list):
            out.extend((name, _text(v)) for v in value)
        else:
            out.append((name, _text(value)))
    return tuple(out)


class _Answer(msgspec.Struct):
    """A JSON-RPC response object; ``result`` stays raw until the method's type decodes it."""

    jsonrpc: str = ""
    id: Any = None
    result: msgspec.Raw | UnsetType = UNSET
    error: Any = UNSET


_decode_answer = msgspec.json.Decoder(_Answer).decode
# The canonical code of each JSON-RPC error code, for errors with no data.code:
# the server's own table read backwards, plus the spec's protocol faults.
_BY_RPC_CODE: dict[int, Code] = {rpc: code for code, rpc in JSONRPC_CODE.items()}
_BY_RPC_CODE |= {PARSE_ERROR: Code.INVALID_ARGUMENT, INVALID_REQUEST: Code.INVALID_ARGUMENT}


class JsonRpc(Protocol):
    """JSON-RPC 2.0 at ``/jsonrpc``; methods are called by their qualified names."""

    name = "jsonrpc"

    def __init__(self, codecs: Codecs, path: str = "/jsonrpc") -> None:
        super().__init__(codecs)
        self.path = path
        self._ids = itertools.count(1)

    def request(self, rpc: Rpc[Any, Any], message: Any, timeout: float | None) -> HttpRequest:
        request_id = next(self._ids)
        content = b"".join(
            [
                b'{"jsonrpc":"2.0","id":',
                str(request_id).encode(),
                b',"method":',
                # The qualified name is never ambiguous; an Rpc with no service
                # (from `twofold call`) leaves the server to resolve the bare name.
                _encode(rpc.full_name if rpc.service else rpc.name),
                b',"params":',
                _encode(message),
                b"}",
            ]
        )
        headers = {"content-type": JSON, "accept": JSON}
        return HttpRequest("POST", self.path, headers, content)

    def response(self, rpc: Rpc[Any, Any], response: HttpResponse) -> Any:
        if not _is_json(response.media_type):
            raise unexpected(response.status, response.media_type, response.content)
        try:
            answer = _decode_answer(response.content)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            if response.status != 200:
                raise unexpected(response.status, response.media_type, response.content) from None
            raise fail(Code.INTERNAL, f"malformed JSON-RPC response: {exc}") from None
        if isinstance(answer.error, dict):
            raise _failure(self._error(answer.error), response)
        if answer.jsonrpc != "2.0" or isinstance(answer.result, UnsetType):
            if response.status != 200:
                raise unexpected(response.status, response.media_type, response.content)
            raise fail(Code.INTERNAL, "malformed JSON-RPC response: no result and no error")
        return self._output(rpc, answer.result)

    @staticmethod
    def _error(error: dict[str, Any]) -> Error:
        data = error.get("data")
        data = data if isinstance(data, dict) else {}
        if "code" in data:
            code = code_from(data["code"])
        else:
            rpc_code = error.get("code")
            code = Code.UNKNOWN
            if isinstance(rpc_code, int):
                code = _BY_RPC_CODE.get(rpc_code, Code.UNKNOWN)
        details = [*violations(data.get("violations")), *json_details(data.get("details"))]
        return Error(code, message_from(error.get("message"), code), details)


def _enveloped(
    rpc: Rpc[Any, Any], headers: dict[str, str], messages: Messages, codec: MessageCodec
) -> HttpRequest:
    """A stream's request: each message enveloped. A list (a server stream's
    one message) is sent as it is; any other iterable as it is produced, in
    its own colour (httpx sends a sync or an async body)."""
    if isinstance(messages, list):
        content = b"".join(envelope.frame(codec.encode(m)) for m in messages)
        return HttpRequest("POST", rpc.path, headers, content)
    body: Iterable[bytes] | AsyncIterable[bytes]
    if isinstance(messages, AsyncIterable):
        body = _aframed(messages, codec)
    else:
        body = (envelope.frame(codec.encode(m)) for m in messages)
    return HttpRequest("POST", rpc.path, headers, stream=body)


async def _aframed(messages: AsyncIterable[Any], codec: MessageCodec) -> AsyncIterator[bytes]:
    async for message in messages:
        yield envelope.frame(codec.encode(message))


def _milliseconds(timeout: float) -> int:
    # At least 1: a deadline rounded down to 0 would mean "none" to some servers.
    return max(1, math.ceil(timeout * 1000))


class Connect(Protocol):
    """Connect with the JSON codec: proto3 JSON both ways; streams enveloped."""

    name = "connect"
    kinds = _ENVELOPED
    media_type = JSON
    stream_type = "application/connect+json"

    def codec(self, rpc: Rpc[Any, Any]) -> MessageCodec:
        return self.codecs.json(rpc)

    def _headers(self, content_type: str, timeout: float | None) -> dict[str, str]:
        headers = {"content-type": content_type, "connect-protocol-version": "1"}
        if timeout is not None:
            # The server cancels the handler at the deadline (its context
            # carries it too); 10 digits is the most the header may have.
            headers["connect-timeout-ms"] = str(min(_milliseconds(timeout), 9_999_999_999))
        return headers

    def request(self, rpc: Rpc[Any, Any], message: Any, timeout: float | None) -> HttpRequest:
        headers = self._headers(self.media_type, timeout)
        headers["accept"] = self.media_type
        content = self.codec(rpc).encode(message)
        return HttpRequest("POST", rpc.path, headers, content)

    def response(self, rpc: Rpc[Any, Any], response: HttpResponse) -> Any:
        if response.status == 200:
            if response.media_type != self.media_type:
                raise unexpected(response.status, response.media_type, response.content)
            try:
                return self.codec(rpc).decode(response.content)
            except Error as exc:
                raise _malformed(rpc, exc.message) from None
        # Raised, never kept in a local: this frame, which its traceback holds,
        # would hold it in turn, a reference cycle per failed call.
        raise connect_error(response) or unexpected(
            response.status, response.media_type, response.content
        )

    def stream_request(
        self, rpc: Rpc[Any, Any], messages: Messages, timeout: float | None
    ) -> HttpRequest:
        return _enveloped(rpc, self._headers(self.stream_type, timeout), messages, self.codec(rpc))

    def reader(self, rpc: Rpc[Any, Any], head: HttpResponse, limit: int) -> Reader:
        return ConnectReader(self.codec(rpc).decode, limit, head)


class ConnectProto(Connect):
    """Connect with the protobuf codec (``application/proto``): twofold's own
    binary codec, from the same types; errors are Connect's JSON all the same."""

    name = "connect-proto"
    media_type = "application/proto"
    stream_type = "application/connect+proto"

    def codec(self, rpc: Rpc[Any, Any]) -> MessageCodec:
        return self.codecs.proto(rpc)


# grpc-timeout's units, finest first: the value may have at most 8 digits.
_GRPC_UNITS = (("m", 1e3), ("S", 1.0), ("M", 1 / 60), ("H", 1 / 3600))


def grpc_timeout(timeout: float) -> str:
    """A deadline as ``grpc-timeout``: 1 to 8 digits and a unit, rounded up."""
    for unit, per_second in _GRPC_UNITS:
        value = max(1, math.ceil(timeout * per_second))
        if value < 10**8:
            return f"{value}{unit}"
    return "99999999H"


class GrpcWeb(Protocol):
    """gRPC-Web (``application/grpc-web+proto``) over HTTP/1.1 or HTTP/2.

    Every call is a stream on this wire: a unary call is one request
    envelope and a response of one message and the trailers.
    """

    name = "grpc-web"
    kinds = _ENVELOPED
    content_type = "application/grpc-web+proto"

    def codec(self, rpc: Rpc[Any, Any]) -> MessageCodec:
        return self.codecs.proto(rpc)

    def _headers(self, timeout: float | None) -> dict[str, str]:
        # x-grpc-web marks the call for gRPC-Web proxies (Envoy's filter, grpcwebproxy).
        headers = {"content-type": self.content_type, "x-grpc-web": "1"}
        if timeout is not None:
            headers["grpc-timeout"] = grpc_timeout(timeout)
        return headers

    def request(self, rpc: Rpc[Any, Any], message: Any, timeout: float | None) -> HttpRequest:
        content = envelope.frame(self.codec(rpc).encode(message))
        return HttpRequest("POST", rpc.path, self._headers(timeout), content)

    def response(self, rpc: Rpc[Any, Any], response: HttpResponse) -> Any:
        # The transport already refused a body over the limit: no second one here.
        reader = self.reader(rpc, response, 1 << 32)
        messages = reader.feed(response.content)
        reader.end()
        if len(messages) != 1:
            raise fail(Code.INTERNAL, f"{rpc.name} answered {len(messages)} messages, not one")
        return messages[0]

    def stream_request(
        self, rpc: Rpc[Any, Any], messages: Messages, timeout: float | None
    ) -> HttpRequest:
        return _enveloped(rpc, self._headers(timeout), messages, self.codec(rpc))

    def reader(self, rpc: Rpc[Any, Any], head: HttpResponse, limit: int) -> Reader:
        return GrpcWebReader(self.codec(rpc).decode, limit, head)


ProtocolName = Literal["rest", "jsonrpc", "connect", "connect-proto", "grpc-web", "grpc"]
HTTP_PROTOCOLS: dict[str, type[Protocol]] = {
    p.name: p for p in (Rest, JsonRpc, Connect, ConnectProto, GrpcWeb)
}
GRPC = "grpc"
H2 = "h2"  # transport= of a gRPC client that needs no grpcio
REST = "rest"
NAMES = (*HTTP_PROTOCOLS, GRPC)


def protocol(name: str, codecs: Codecs) -> Protocol:
    """A fresh HTTP encoder/decoder for ``name``; a clear ValueError for an unknown name."""
    found = HTTP_PROTOCOLS.get(name)
    if found is not None:
        return found(codecs)
    raise ValueError(f"unknown protocol {name!r}; use {', '.join(NAMES)}")


def check(name: str) -> str:
    if name not in NAMES:
        raise ValueError(f"unknown protocol {name!r}; use {', '.join(NAMES)}")
    return name
