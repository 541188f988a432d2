"""One encoder/decoder per wire: REST, JSON-RPC 2.0 and Connect (JSON codec).

A protocol turns ``(rpc, message)`` into an :class:`HttpRequest` and an
:class:`HttpResponse` into the output message, or raises
:class:`~twofold.client.errors.Failure` with the error the server meant.
Each reads the error document its server side writes (problem+json,
JSON-RPC's ``error.data``, Connect's error body); anything else is coded by
HTTP status (:data:`~twofold.client.errors.HTTP_FALLBACK`).

Outputs are decoded into the method's output type and any mismatch is
INTERNAL: the server broke its contract, retrying will not mend it.

Adding a protocol is one class here and one entry in :data:`PROTOCOLS`.
The binary ones (``connect-proto``, ``grpc``, ``grpc-web``) will also need
their transport: gRPC's status lives in trailers, which a grpcio (or HTTP/2)
transport can hand over as response headers without the client changing.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, ClassVar, Literal

import msgspec
from msgspec import UNSET, UnsetType

from twofold import protojson
from twofold.client.errors import (
    Failure,
    code_from,
    connect_details,
    fail,
    json_details,
    message_from,
    unexpected,
    violations,
)
from twofold.client.rpc import Rpc
from twofold.client.transports import HttpRequest, HttpResponse
from twofold.code import Code
from twofold.errors import Error
from twofold.protocols.jsonrpc import ERROR_CODES
from twofold.routing import Template

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
_encode = msgspec.json.Encoder().encode
_decode_any = msgspec.json.Decoder().decode
# Protocols that are specified but not yet spoken by this client.
PLANNED = ("connect-proto", "grpc", "grpc-web")


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
    """The encoder/decoder of one wire."""

    name: ClassVar[str]

    def __init__(self) -> None:
        self._decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}

    def request(self, rpc: Rpc[Any, Any], message: Any, timeout: float | None) -> HttpRequest:
        raise NotImplementedError

    def response(self, rpc: Rpc[Any, Any], response: HttpResponse) -> Any:
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
    """REST as :mod:`twofold.protocols.rest` serves it: the method's HTTP binding."""

    name = "rest"

    def __init__(self) -> None:
        super().__init__()
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
        values = msgspec.to_builtins(message)
        if not isinstance(values, dict):
            raise Error(Code.INVALID_ARGUMENT, f"{rpc.name}: a REST request must be an object")
        path_values = {}
        for variable in template.variables:
            value = values.pop(variable, None)
            if value is None:
                raise Error.invalid(variable, "a value is required: it is part of the URL")
            path_values[variable] = _text(value)
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

    def response(self, rpc: Rpc[Any, Any], response: HttpResponse) -> Any:
        if 200 <= response.status < 300:
            if response.status == 204:
                return self._output(rpc, b"{}")
            if not _is_json(response.media_type):
                raise unexpected(response.status, response.media_type, response.content)
            return self._output(rpc, response.content)
        doc = _document(response)
        if doc is None or not isinstance(doc.get("code"), str):
            raise unexpected(response.status, response.media_type, response.content)
        # An RFC 9457 problem document with Twofold's ``code`` and ``violations``.
        code = code_from(doc["code"])
        details = [*violations(doc.get("violations")), *json_details(doc.get("details"))]
        error = Error(code, message_from(doc.get("detail"), code), details)
        raise _failure(error, response)


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
_BY_RPC_CODE: dict[int, Code] = {rpc: code for code, rpc in ERROR_CODES.items()}
_BY_RPC_CODE |= {-32700: Code.INVALID_ARGUMENT, -32600: Code.INVALID_ARGUMENT}


class JsonRpc(Protocol):
    """JSON-RPC 2.0 at ``/jsonrpc``; methods are called by their qualified names."""

    name = "jsonrpc"

    def __init__(self, path: str = "/jsonrpc") -> None:
        super().__init__()
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


class Connect(Protocol):
    """Connect unary calls with the JSON codec: proto3 JSON both ways."""

    name = "connect"

    def request(self, rpc: Rpc[Any, Any], message: Any, timeout: float | None) -> HttpRequest:
        headers = {"content-type": JSON, "accept": JSON, "connect-protocol-version": "1"}
        if timeout is not None:
            # The server cancels the handler at the deadline (its context
            # carries it too); 10 digits is the most the header may have.
            milliseconds = min(max(1, math.ceil(timeout * 1000)), 9_999_999_999)
            headers["connect-timeout-ms"] = str(milliseconds)
        content = protojson.codec(rpc.input_type).encode(message)
        return HttpRequest("POST", rpc.path, headers, content)

    def response(self, rpc: Rpc[Any, Any], response: HttpResponse) -> Any:
        if response.status == 200:
            if response.media_type != JSON:
                raise unexpected(response.status, response.media_type, response.content)
            try:
                return protojson.codec(rpc.output_type).decode(response.content)
            except Error as exc:
                raise _malformed(rpc, exc.message) from None
        doc = _document(response)
        if doc is None or not isinstance(doc.get("code"), str):
            raise unexpected(response.status, response.media_type, response.content)
        code = code_from(doc["code"])
        details = connect_details(doc.get("details"))
        error = Error(code, message_from(doc.get("message"), code), details)
        raise _failure(error, response)


ProtocolName = Literal["rest", "jsonrpc", "connect"]
PROTOCOLS: dict[str, type[Protocol]] = {p.name: p for p in (Rest, JsonRpc, Connect)}


def protocol(name: str) -> Protocol:
    """A fresh encoder/decoder for ``name``; a clear ValueError for any other name."""
    found = PROTOCOLS.get(name)
    if found is not None:
        return found()
    choices = ", ".join(PROTOCOLS)
    if name in PLANNED:
        raise ValueError(f"protocol {name!r} is not supported by the client yet; use {choices}")
    raise ValueError(f"unknown protocol {name!r}; use {choices}")
