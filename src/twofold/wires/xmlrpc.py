"""XML-RPC over HTTP: every unary method of the table behind one POST endpoint.

Methods have the names JSON-RPC gives them (:mod:`twofold.core.rpcnames`),
beside ``system.listMethods``, ``system.methodHelp`` and ``system.multicall``.
One ``<struct>`` param is the request message by name; otherwise params are
its fields by position. A fault's ``faultCode`` is the canonical code's number
(``5`` is NOT_FOUND) and its ``faultString`` starts with the code's name.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

import msgspec

from twofold.core import decimals, violations
from twofold.core.asgi import Receive, Scope, Send
from twofold.core.code import Code
from twofold.core.context import Context
from twofold.core.errors import Error, as_error, validation_error
from twofold.core.headers import Headers
from twofold.core.invoke import invoke
from twofold.core.method import UNKNOWN, Method
from twofold.core.options import Options
from twofold.core.rpcnames import RpcNames
from twofold.core.table import MethodTable
from twofold.http import compression, xmlparse, xmlrpcvalue
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

PROTOCOL = "xmlrpc"
XML = b"text/xml"
# The spec says text/xml; several clients send application/xml.
_MEDIA_TYPES = frozenset({XML, b"application/xml"})
_SYSTEM = ("system.listMethods", "system.methodHelp", "system.multicall")
_PROLOG = b"<?xml version='1.0' encoding='UTF-8'?>"


@dataclass(slots=True)
class _Target:
    """A method as XML-RPC calls it: its fields' wire names and its Decimal rule."""

    method: Method
    names: tuple[str, ...]
    check_decimals: Any

    @classmethod
    def build(cls, method: Method) -> _Target:
        info = msgspec.inspect.type_info(method.input_type)
        names = tuple(f.encode_name for f in getattr(info, "fields", ()))
        return cls(method, names, decimals.checker(method.input_type))

    def decode(self, params: list[Any]) -> Any:
        """The request message: one struct is it by name, else fields by position."""
        if len(params) == 1 and isinstance(params[0], dict):
            tree: dict[str, Any] = params[0]
        else:
            if len(params) > len(self.names):
                message = f"expected at most {len(self.names)} params, got {len(params)}"
                raise Error(Code.INVALID_ARGUMENT, message)
            tree = dict(zip(self.names, params, strict=False))
        try:
            if self.check_decimals is not None:
                self.check_decimals(tree)
            return msgspec.convert(tree, self.method.input_type)
        except msgspec.ValidationError as exc:
            # Both stop at the first bad field: the walk lists every one, as
            # the other wires do.
            raise validation_error(violations.every(self.method.input_type, tree, exc)) from None


class _Admitted(Exception):
    """Carries a refusal the admission step already reported, past the observers."""

    def __init__(self, refusal: Error) -> None:
        self.refusal = refusal


class XmlRpcProtocol:
    """The ASGI endpoint for XML-RPC, mounted at ``options.xmlrpc_path`` (``/RPC2``).

    Whatever the XML-RPC layer answers goes with 200, faults included, as the
    spec asks. Faults found before an XML-RPC request exists use HTTP's own
    statuses with a fault as the body: 405 (not POST), 415 (not text/xml, or
    an unknown Content-Encoding), 413 (over ``max_body_size``), 400 (a bad
    Content-Length or gzip).
    """

    name = PROTOCOL

    def __init__(self, table: MethodTable, options: Options) -> None:
        self.table = table
        self.options = options
        self.names = RpcNames(table, _Target.build)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        verb = scope["method"]
        if verb != "POST":
            error = Error(Code.UNIMPLEMENTED, f"{verb} is not allowed: POST XML-RPC calls")
            await self._refused_whole(scope, send, error, 405, [(b"allow", b"POST")])
            return
        if media_type(header(scope, b"content-type")) not in _MEDIA_TYPES:
            message = "unsupported media type: send Content-Type: text/xml"
            error = Error(Code.INVALID_ARGUMENT, message)
            await self._refused_whole(scope, send, error, 415, [(b"accept-post", XML)])
            return
        try:
            raw = await read_body(scope, receive, self.options.max_body_size)
            coding = header(scope, b"content-encoding")
            if coding is not None:
                raw = compression.decode_body(coding, raw, self.options.max_body_size)
        except ClientDisconnected:
            return
        except BodyTooLarge as exc:
            await self._refused_whole(scope, send, exc, 413)
            return
        except Error as exc:
            status = 415 if isinstance(exc, compression.UnsupportedEncoding) else 400
            await self._refused_whole(scope, send, exc, status)
            return
        headers = Headers(scope["headers"])
        try:
            name, params = _parse_call(raw)
        except Error as exc:
            await self.table.refuse(PROTOCOL, UNKNOWN, scope, exc)
            await respond(send, 200, fault(exc), [], XML)
            return
        response_headers: list[tuple[bytes, bytes]] = []
        try:
            if name == "system.multicall":
                result = await self._multicall(params, scope, headers)
            else:
                result, response_headers = await self._call(name, params, scope, headers)
            body = _response(result)
        except Error as exc:
            response_headers = encode_headers(exc.headers) if exc.headers else []
            body = fault(exc)
        await respond(send, 200, body, response_headers, XML)

    async def _refused_whole(
        self,
        scope: Scope,
        send: Send,
        error: Error,
        status: int,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        error.http_status = status
        await self.table.refuse(PROTOCOL, UNKNOWN, scope, error)
        headers = [*(extra or []), *encode_headers(error.headers)]
        body = b"" if scope["method"] == "HEAD" else fault(error)
        await respond(send, status, body, headers, XML)

    async def _call(
        self, name: str, params: list[Any], scope: Scope, headers: Headers
    ) -> tuple[Any, list[tuple[bytes, bytes]]]:
        """One call's result (builtins) and response headers; raises only Error."""
        if name in _SYSTEM:
            return self._system(name, params), []
        target: _Target | None = None
        ctx: Context | None = None
        try:
            target = self.names.resolve(name, "XML-RPC")
            ctx = Context(PROTOCOL, target.method, headers, peer(scope), scope=scope)
            if self.table.admit is not None:
                # Credentials before params: a refused caller's params are
                # never converted or validated. Admission told the observers.
                refusal = await self.table.admit(ctx)
                if refusal is not None:
                    raise _Admitted(refusal)
            message = target.decode(params)
        except _Admitted as exc:
            raise exc.refusal from None
        except Error as exc:
            method = UNKNOWN if target is None else target.method
            if ctx is None:
                ctx = Context(PROTOCOL, method, headers, peer(scope), scope=scope)
            await self.table.refused(ctx, exc)
            raise
        output = await invoke(target.method, ctx, message)
        try:
            result = msgspec.to_builtins(output, builtin_types=(bytes, bytearray, memoryview))
            has_headers = ctx.has_response_headers()
            reply_headers = encode_headers(ctx.response_headers) if has_headers else []
        except Exception as exc:
            # The handler ran, but what it gave cannot go on the wire.
            raise as_error(exc) from None
        return result, reply_headers

    async def _multicall(self, params: list[Any], scope: Scope, headers: Headers) -> list[Any]:
        """``system.multicall``: ``[result]`` or a fault struct per call, in order."""
        calls = params[0] if len(params) == 1 else None
        if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
            raise Error(Code.INVALID_ARGUMENT, "system.multicall takes one array of structs")
        limit = self.options.max_batch_size
        if len(calls) > limit:
            raise Error(Code.INVALID_ARGUMENT, f"{len(calls)} calls is over the limit of {limit}")

        async def one(call: dict[str, Any]) -> Any:
            name, args = call.get("methodName"), call.get("params", [])
            try:
                if not isinstance(name, str) or not isinstance(args, list):
                    raise Error(Code.INVALID_ARGUMENT, "each call has methodName and params")
                if name == "system.multicall":
                    raise Error(Code.INVALID_ARGUMENT, "system.multicall does not nest")
                result, _ = await self._call(name, args, scope, headers)
                return [result]
            except Error as exc:
                return _fault_struct(exc)

        return list(await asyncio.gather(*(one(call) for call in calls)))

    def _system(self, name: str, params: list[Any]) -> Any:
        if name == "system.listMethods":
            return [*self.names.names(), *_SYSTEM]
        # system.methodHelp
        if len(params) != 1 or not isinstance(params[0], str):
            raise Error(Code.INVALID_ARGUMENT, "system.methodHelp takes one method name")
        if params[0] in _SYSTEM:
            return ""
        method = self.names.methods.get(params[0])
        if method is None:
            raise Error(Code.NOT_FOUND, f"no method {params[0]}")
        return method.description or method.summary


def _parse_call(raw: bytes) -> tuple[str, list[Any]]:
    """The method name and param values of a ``<methodCall>``; raises only Error."""
    try:
        root: Element = xmlparse.parse(raw)
    except xmlparse.XmlRefused as exc:
        raise Error(Code.INVALID_ARGUMENT, str(exc)) from None
    if root.tag != "methodCall":
        raise Error(Code.INVALID_ARGUMENT, "not an XML-RPC call: the root is not <methodCall>")
    name = (root.findtext("methodName") or "").strip()
    if not name:
        raise Error(Code.INVALID_ARGUMENT, "the <methodCall> has no <methodName>")
    values = [] if root.find("params") is None else root.findall("params/param/value")
    try:
        return name, [xmlrpcvalue.read(value) for value in values]
    except xmlrpcvalue.BadValue as exc:
        raise Error(Code.INVALID_ARGUMENT, str(exc)) from None


def _response(result: Any) -> bytes:
    try:
        value = xmlrpcvalue.write(result)
    except xmlrpcvalue.NotXml as exc:
        # The handler ran; its answer has no XML form (JSON would carry it).
        raise Error(Code.INTERNAL, f"the answer cannot be sent as XML: {exc}") from None
    except TypeError as exc:
        raise as_error(exc) from None
    return (
        _PROLOG + b"<methodResponse><params><param>" + value.encode() + b"</param></params>"
        b"</methodResponse>"
    )


def _fault_struct(error: Error) -> dict[str, Any]:
    message = error.message or error.code.wire_name
    # faultCode and faultString are what every client reads; code and
    # violations are extra members, as JSON-RPC's error.data carries them
    # (xmlrpc.client keeps extra members; others ignore them).
    struct: dict[str, Any] = {
        "faultCode": error.code.value,
        "faultString": f"{error.code.name}: {message}",
        "code": error.code.wire_name,
    }
    if error.violations:
        struct["violations"] = [
            {"field": v.field, "description": v.description} for v in error.violations
        ]
    return struct


def fault(error: Error) -> bytes:
    """A ``<methodResponse>`` with a ``<fault>``: the canonical code's number and name."""
    value = xmlrpcvalue.write(_fault_struct(error))
    return _PROLOG + b"<methodResponse><fault>" + value.encode() + b"</fault></methodResponse>"
