"""JSON-RPC 2.0 over HTTP: every method of the table behind one POST endpoint.

The messages (names, params, the error table) are :mod:`twofold.http.jsonrpc`'s,
shared with JSON-RPC over WebSocket; this module is the HTTP exchange, and
:class:`JsonRpcProtocol` says which HTTP status each answer has.
"""

from __future__ import annotations

import asyncio

import msgspec
from msgspec import UNSET

from twofold.core.asgi import Receive, Scope, Send
from twofold.core.code import INVALID_REQUEST, Code
from twofold.core.context import Context
from twofold.core.errors import Error, as_error
from twofold.core.headers import Headers
from twofold.core.invoke import invoke
from twofold.core.method import UNKNOWN, Method
from twofold.core.options import Options
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
from twofold.http.jsonrpc import (
    UNPARSABLE,
    Fault,
    Target,
    Targets,
    decode_list,
    encode,
    error_response,
    fault_response,
    is_batch,
    parse,
    parse_fault,
    result_response,
)

PROTOCOL = "jsonrpc"
JSON = b"application/json"
# The JSON-RPC over HTTP draft also names these two; a few old clients send them.
_MEDIA_TYPES = frozenset({JSON, b"application/json-rpc", b"application/jsonrequest"})


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
        self.targets = Targets(table)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        verb = scope["method"]
        if verb != "POST":
            # The 2.0 spec defines no HTTP binding; GET with params in the query
            # (an old draft) would make every call a cacheable, loggable URL.
            error = Error(Code.UNIMPLEMENTED, f"{verb} is not allowed: POST JSON-RPC requests")
            headers = await self._refused(scope, error, 405)
            body = b"" if verb == "HEAD" else error_response(None, error, INVALID_REQUEST)
            await respond(send, 405, body, [(b"allow", b"POST"), *headers], JSON)
            return
        if media_type(header(scope, b"content-type")) not in _MEDIA_TYPES:
            error = Error(
                Code.INVALID_ARGUMENT, "unsupported media type: send Content-Type: application/json"
            )
            headers = await self._refused(scope, error, 415)
            body = error_response(None, error, INVALID_REQUEST)
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
            await respond(send, 413, error_response(None, exc), headers, JSON)
            return
        except Error as exc:  # a bad Content-Length, a coding or gzip we cannot read
            status = 415 if isinstance(exc, compression.UnsupportedEncoding) else 400
            headers = await self._refused(scope, exc, status)
            await respond(send, status, error_response(None, exc, INVALID_REQUEST), headers, JSON)
            return
        batch = is_batch(raw)
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
            items = decode_list(raw)
        except UNPARSABLE as exc:
            fault = parse_fault(exc)
        else:
            limit = self.options.max_batch_size
            if not items:
                # The spec answers an empty batch with one error object, not an array.
                fault = Fault(INVALID_REQUEST, Code.INVALID_ARGUMENT, "empty batch")
            elif len(items) > limit:
                message = f"batch of {len(items)} calls is over the limit of {limit}"
                fault = Fault(INVALID_REQUEST, Code.INVALID_ARGUMENT, message)
        if fault is not None:
            # One answer for the whole batch: its headers are the response's.
            exchange.batch = False
            return await self._refuse(exchange, UNKNOWN, fault.error, fault_response(fault))
        answers = await asyncio.gather(*(self._answer(item, exchange) for item in items))
        parts = [answer for answer in answers if answer is not None]
        return b"[" + b",".join(parts) + b"]" if parts else None

    async def _answer(self, raw: bytes | msgspec.Raw, exchange: _Exchange) -> bytes | None:
        """The response object of one request, or None for a notification."""
        try:
            request = parse(raw)
        except Fault as fault:
            return await self._refuse(exchange, UNKNOWN, fault.error, fault_response(fault))
        # Inline, not Request.request_id and check_params: this is every call's
        # path, and the two calls cost 4% of a request's instructions.
        request_id = None if request.id is UNSET else request.id
        params = request.params
        if params and memoryview(params)[0] not in b"{[":
            # Covers null too: the spec allows a structured value or no member.
            message = "params must be an object or an array"
            bad = Fault(INVALID_REQUEST, Code.INVALID_ARGUMENT, message, request_id)
            return await self._refuse(exchange, UNKNOWN, bad.error, fault_response(bad))
        # From here on a notification gets no answer, even an error (spec §4.1).
        notification = request.id is UNSET
        target: Target | None = None
        ctx: Context | None = None
        try:
            target = self.targets.resolve(request.method)
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
                    return None if notification else error_response(request_id, refusal)
            message = target.decode(params, request_id)
        except (Fault, Error) as exc:
            # Refused before the chain: the observers still count and log it.
            # The raised error is passed on, never bound to a local that would
            # outlive this block: kept in the frame its traceback holds, it
            # would make a cycle per refusal, which only the collector frees.
            method = UNKNOWN if target is None else target.method
            if isinstance(exc, Fault):
                answer = None if notification else fault_response(exc)
                return await self._refuse(exchange, method, exc.error, answer, ctx)
            answer = None if notification else error_response(request_id, exc)
            return await self._refuse(exchange, method, exc, answer, ctx)
        try:
            output = await invoke(target.method, ctx, message)
            result = encode(output)
            if not exchange.batch and ctx.has_response_headers():
                exchange.response_headers = encode_headers(ctx.response_headers)
        except Error as exc:
            if not exchange.batch and exc.headers:
                exchange.response_headers = encode_headers(exc.headers)
            return None if notification else error_response(request_id, exc)
        except Exception as exc:
            # An output msgspec cannot encode, a header with a line break: the
            # handler ran, but what it gave cannot go on the wire.
            error = as_error(exc)
            return None if notification else error_response(request_id, error)
        if notification:
            return None
        return result_response(request_id, result)
