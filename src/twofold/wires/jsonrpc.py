"""JSON-RPC 2.0 over HTTP: every method of the table behind one POST endpoint.

A method is called by its RPC name (``GetProduct``) when no other service has
a method of that name, and always by its qualified name
(``catalog.v1.CatalogService/GetProduct``). ``params`` is the request message
by name (an object) or by position (an array, in field declaration order).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from twofold.core import numbers
from twofold.core.asgi import Receive, Scope, Send
from twofold.core.code import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    JSONRPC_CODE,
    PARSE_ERROR,
    Code,
)
from twofold.core.context import Context
from twofold.core.details import BadRequest
from twofold.core.errors import Error, as_error, validation_error
from twofold.core.headers import Headers
from twofold.core.invoke import invoke
from twofold.core.method import UNKNOWN, Method
from twofold.core.options import Options
from twofold.core.rpcnames import RpcNames
from twofold.core.table import MethodTable
from twofold.http import compression
from twofold.http.body import (
    BodyTooLarge,
    ClientDisconnected,
    encode_headers,
    header,
    media_type,
    peer,
    read_body,
    respond,
)

logger = logging.getLogger("twofold")

PROTOCOL = "jsonrpc"
JSON = b"application/json"
# The JSON-RPC over HTTP draft also names these two; a few old clients send them.
_MEDIA_TYPES = frozenset({JSON, b"application/json-rpc", b"application/jsonrequest"})

Id = str | int | float | None


class _Request(msgspec.Struct, forbid_unknown_fields=True):
    """The envelope; ``params`` stays raw until the method (and its type) is known.

    Unknown members are refused: a misspelt ``param`` would otherwise call the
    method with no arguments and look like it worked.
    """

    jsonrpc: Literal["2.0"]
    method: str
    params: msgspec.Raw = msgspec.Raw()
    # Absent (UNSET) makes a notification; null is a real id and gets an answer.
    id: Id | UnsetType = UNSET


class _Probe(msgspec.Struct):
    """Reads only the id of a request the envelope refused, to echo it back."""

    id: Id = None


_decode_request = msgspec.json.Decoder(_Request).decode
_decode_probe = msgspec.json.Decoder(_Probe).decode
_decode_list = msgspec.json.Decoder(list[msgspec.Raw]).decode
_encode = msgspec.json.Encoder().encode
_INTERNAL_ERROR = _encode(
    {"code": INTERNAL_ERROR, "message": "internal error", "data": {"code": "internal"}}
)
# A batch is a JSON array; looking at the first byte spares a copy of the body.
_BATCH = re.compile(rb"[ \t\r\n]*\[")
# msgspec reports bad UTF-8 in strings and nesting deeper than Python's
# recursion limit with these; hostile input must still get a -32700.
_UNPARSABLE = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


class _Fault(Exception):
    """A protocol error: its JSON-RPC code, the canonical error, the id to echo."""

    def __init__(self, rpc_code: int, code: Code, message: str, id: Id = None) -> None:
        super().__init__(message)
        self.rpc_code = rpc_code
        self.error = Error(code, message)
        self.id = id


@dataclass(slots=True)
class _Target:
    """A method as JSON-RPC calls it, with its params decoder built once."""

    method: Method
    decoder: numbers.Decoder[Any]
    # JSON-encoded wire names in declaration order: positional params are
    # spliced into an object under these keys, so both forms share one decoder
    # and its validation messages.
    names: tuple[bytes, ...]

    @classmethod
    def build(cls, method: Method) -> _Target:
        info = msgspec.inspect.type_info(method.input_type)
        fields = getattr(info, "fields", ())
        names = tuple(_encode(f.encode_name) for f in fields)
        return cls(method, numbers.Decoder(method.input_type), names)

    def decode(self, params: msgspec.Raw, request_id: Id) -> Any:
        """The request message from ``params``: raises only Error or _Fault."""
        try:
            if not params:
                return self.decoder.decode(b"{}")
            if memoryview(params)[0] == ord("{"):
                return self.decoder.decode(params)
            values = _decode_list(params)
            if len(values) > len(self.names):
                message = f"expected at most {len(self.names)} positional params, got {len(values)}"
                raise Error(Code.INVALID_ARGUMENT, message)
            pairs = [name + b":" + value for name, value in zip(self.names, values, strict=False)]
            return self.decoder.decode(b"{" + b",".join(pairs) + b"}")
        except msgspec.ValidationError as exc:
            raise validation_error(exc) from None
        except _UNPARSABLE as exc:
            # params was skipped over, not decoded, when the envelope was read:
            # bad UTF-8 in a string or deep nesting inside it shows up only now.
            raise _parse_fault(exc, request_id) from None


class _Exchange:
    """What the calls of one HTTP request share (a plain class: built per request)."""

    __slots__ = ("batch", "headers", "peer", "response_headers", "scope")

    def __init__(self, scope: Scope, peer: str | None, batch: bool) -> None:
        self.scope = scope
        self.headers = Headers(scope["headers"])
        self.peer = peer
        # Only a single call sets HTTP response headers: a batch has no one owner.
        self.batch = batch
        self.response_headers: list[tuple[bytes, bytes]] = []


class JsonRpcProtocol:
    """The ASGI endpoint for JSON-RPC 2.0, mounted at ``options.jsonrpc_path``.

    HTTP statuses. JSON-RPC clients read the body, not the status, so whenever
    the JSON-RPC layer produced an answer it is sent with 200, errors included
    (-32700 and -32600 too). 204 with no body answers a request made only of
    notifications. HTTP-level faults, found before a JSON-RPC request exists,
    use HTTP's own statuses, with a JSON-RPC error object (id null) as the body
    so that a JSON-RPC client still gets something it can parse: 405 (not POST,
    with ``Allow``), 415 (not JSON, or a ``Content-Encoding`` other than gzip,
    with ``Accept-Encoding``), 413 (body over ``max_body_size``, as sent or once
    decompressed) and 400 (a Content-Length that is not a number, a body that is
    not the gzip it claims to be).
    """

    name = PROTOCOL

    def __init__(self, table: MethodTable, options: Options) -> None:
        self.table = table
        self.options = options
        self.names = RpcNames(table, _Target.build)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        verb = scope["method"]
        if verb != "POST":
            # The 2.0 spec defines no HTTP binding; GET with params in the query
            # (an old draft) would make every call a cacheable, loggable URL.
            error = Error(Code.UNIMPLEMENTED, f"{verb} is not allowed: POST JSON-RPC requests")
            headers = await self._refused(scope, error, 405)
            body = b"" if verb == "HEAD" else _error(None, error, INVALID_REQUEST)
            await respond(send, 405, body, [(b"allow", b"POST"), *headers], JSON)
            return
        if media_type(header(scope, b"content-type")) not in _MEDIA_TYPES:
            error = Error(
                Code.INVALID_ARGUMENT, "unsupported media type: send Content-Type: application/json"
            )
            headers = await self._refused(scope, error, 415)
            body = _error(None, error, INVALID_REQUEST)
            await respond(send, 415, body, [(b"accept-post", JSON), *headers], JSON)
            return
        try:
            raw = await read_body(scope, receive, self.options.max_body_size)
            coding = header(scope, b"content-encoding")
            if coding is not None:
                raw = compression.decode_body(coding, raw, self.options.max_body_size)
        except ClientDisconnected:
            return
        except BodyTooLarge as exc:  # as sent, or once decompressed
            headers = await self._refused(scope, exc, 413)
            await respond(send, 413, _error(None, exc), headers, JSON)
            return
        except Error as exc:  # a bad Content-Length, a coding or gzip we cannot read
            status = 415 if isinstance(exc, compression.UnsupportedEncoding) else 400
            headers = await self._refused(scope, exc, status)
            await respond(send, status, _error(None, exc, INVALID_REQUEST), headers, JSON)
            return
        batch = _BATCH.match(raw) is not None
        exchange = _Exchange(scope, peer(scope), batch)
        answer = await (self._batch(raw, exchange) if batch else self._answer(raw, exchange))
        if answer is None:
            await respond(send, 204, headers=exchange.response_headers)
        else:
            await respond(send, 200, answer, exchange.response_headers, JSON)

    async def _refused(self, scope: Scope, error: Error, status: int) -> list[tuple[bytes, bytes]]:
        """Tell the observers of a request refused whole; the error's headers to send."""
        error.http_status = status
        await self.table.refuse(PROTOCOL, UNKNOWN, scope, error)
        return encode_headers(error.headers)

    async def _refuse(
        self,
        exchange: _Exchange,
        method: Method,
        error: Error,
        answer: bytes | None,
        ctx: Context | None = None,
    ) -> bytes | None:
        """Tell the observers of one call refused before the chain; then ``answer``."""
        if ctx is None:
            ctx = Context(PROTOCOL, method, exchange.headers, exchange.peer, scope=exchange.scope)
        await self.table.refused(ctx, error)
        if not exchange.batch and error.headers:
            exchange.response_headers = encode_headers(error.headers)
        return answer

    async def _batch(self, raw: bytes, exchange: _Exchange) -> bytes | None:
        fault = None
        try:
            items = _decode_list(raw)
        except _UNPARSABLE as exc:
            fault = _parse_fault(exc)
        else:
            limit = self.options.max_batch_size
            if not items:
                # The spec answers an empty batch with one error object, not an array.
                fault = _Fault(INVALID_REQUEST, Code.INVALID_ARGUMENT, "empty batch")
            elif len(items) > limit:
                message = f"batch of {len(items)} calls is over the limit of {limit}"
                fault = _Fault(INVALID_REQUEST, Code.INVALID_ARGUMENT, message)
        if fault is not None:
            # One answer for the whole batch: its headers are the response's.
            exchange.batch = False
            return await self._refuse(exchange, UNKNOWN, fault.error, _fault(fault))
        answers = await asyncio.gather(*(self._answer(item, exchange) for item in items))
        parts = [answer for answer in answers if answer is not None]
        return b"[" + b",".join(parts) + b"]" if parts else None

    async def _answer(self, raw: bytes | msgspec.Raw, exchange: _Exchange) -> bytes | None:
        """The response object of one request, or None for a notification."""
        try:
            request = _parse(raw)
        except _Fault as fault:
            return await self._refuse(exchange, UNKNOWN, fault.error, _fault(fault))
        request_id = None if isinstance(request.id, UnsetType) else request.id
        params = request.params
        if params and memoryview(params)[0] not in b"{[":
            # Covers null too: the spec allows a structured value or no member.
            message = "params must be an object or an array"
            bad = _Fault(INVALID_REQUEST, Code.INVALID_ARGUMENT, message, request_id)
            return await self._refuse(exchange, UNKNOWN, bad.error, _fault(bad))
        # From here on a notification gets no answer, even an error (spec §4.1).
        notification = request.id is UNSET
        target: _Target | None = None
        ctx: Context | None = None
        try:
            target = self.names.resolve(request.method, "JSON-RPC")
            ctx = Context(
                PROTOCOL, target.method, exchange.headers, exchange.peer, scope=exchange.scope
            )
            if self.table.admit is not None:
                # Credentials before params: the envelope named the method, and
                # a refused caller's params are never decoded or validated.
                refusal = await self.table.admit(ctx)
                if refusal is not None:
                    if not exchange.batch and refusal.headers:
                        exchange.response_headers = encode_headers(refusal.headers)
                    return None if notification else _error(request_id, refusal)
            message = target.decode(params, request_id)
        except (_Fault, Error) as exc:
            # Refused before the chain: the observers still count and log it.
            method = UNKNOWN if target is None else target.method
            if isinstance(exc, _Fault):
                error, answer = exc.error, _fault(exc)
            else:
                error, answer = exc, _error(request_id, exc)
            return await self._refuse(
                exchange, method, error, None if notification else answer, ctx
            )
        try:
            output = await invoke(target.method, ctx, message)
            result = _encode(output)
            if not exchange.batch and ctx.has_response_headers():
                exchange.response_headers = encode_headers(ctx.response_headers)
        except Error as exc:
            if not exchange.batch and exc.headers:
                exchange.response_headers = encode_headers(exc.headers)
            return None if notification else _error(request_id, exc)
        except Exception as exc:
            # An output msgspec cannot encode, a header with a line break: the
            # handler ran, but what it gave cannot go on the wire.
            error = as_error(exc)
            return None if notification else _error(request_id, error)
        if notification:
            return None
        return b'{"jsonrpc":"2.0","result":' + result + b',"id":' + _encode(request_id) + b"}"


def _parse(raw: bytes | msgspec.Raw) -> _Request:
    try:
        return _decode_request(raw)
    except msgspec.ValidationError as exc:
        # Well-formed JSON that is not a request: echo its id if it has a
        # usable one. The probe also tells apart malformed JSON that the
        # envelope decoder gave up on before reaching the bad byte.
        try:
            probe = _decode_probe(raw)
        except msgspec.ValidationError:
            probe = _Probe()
        except _UNPARSABLE as parse_exc:
            raise _parse_fault(parse_exc) from None
        message = f"invalid request: {exc}"
        raise _Fault(INVALID_REQUEST, Code.INVALID_ARGUMENT, message, probe.id) from None
    except _UNPARSABLE as exc:
        raise _parse_fault(exc) from None


def _parse_fault(exc: Exception, request_id: Id = None) -> _Fault:
    if isinstance(exc, UnicodeDecodeError):
        message = "request body is not valid UTF-8"
    elif isinstance(exc, RecursionError):
        message = "JSON is nested too deeply"
    else:
        message = str(exc)
    return _Fault(PARSE_ERROR, Code.INVALID_ARGUMENT, message, request_id)


def _fault(fault: _Fault) -> bytes:
    return _error(fault.id, fault.error, fault.rpc_code)


def _error(request_id: Id, error: Error, rpc_code: int | None = None) -> bytes:
    """A response with an error object; ``rpc_code`` overrides the table for protocol faults."""
    data: dict[str, Any] = {"code": error.code.wire_name}
    violations = error.violations
    if violations:
        data["violations"] = [{"field": v.field, "description": v.description} for v in violations]
    body = {
        "code": JSONRPC_CODE[error.code] if rpc_code is None else rpc_code,
        "message": error.message or error.code.wire_name,
        "data": data,
    }
    try:
        others = [d for d in error.details if not isinstance(d, BadRequest)]
        if others:
            data["details"] = [{"type": d.TYPE_NAME, **d.to_json()} for d in others]
        encoded = _encode(body)
    except Exception:
        # Only a bug gets here (a custom detail whose to_json fails or is not JSON):
        # log it and answer what is sure to encode, rather than no answer.
        logger.exception("cannot encode a JSON-RPC error")
        encoded = _INTERNAL_ERROR
    return b'{"jsonrpc":"2.0","error":' + encoded + b',"id":' + _encode(request_id) + b"}"
