"""REST: resources on URLs, HTTP verbs, JSON (or XML) bodies, RFC 9457 problem documents.

Routes come from each method's :class:`~twofold.core.method.HttpBinding`, in the
manner of google.api.http: path variables and query parameters fill request
fields, and the body is either the whole rest of the message (``"*"``) or one
field of it (``"product"``). Query and path values are text, so they are
converted leniently ("42" -> 42); a JSON body is decoded strictly, its
numbers as JSON Schema reads them (:mod:`twofold.core.numbers`). A client
that prefers XML (``Accept``, :func:`~twofold.http.negotiation.representation`)
is answered XML, problems included, and any client may send an XML body
(:mod:`twofold.http.xmlmessage`, parsed by :mod:`twofold.http.xmlparse`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import msgspec

from twofold.core.asgi import Receive, Scope, Send
from twofold.core.chain import Refused
from twofold.core.code import Code
from twofold.core.context import Context
from twofold.core.errors import Error, as_error, validation_error
from twofold.core.files import File, Upload
from twofold.core.headers import Headers
from twofold.core.invoke import invoke
from twofold.core.method import UNKNOWN, StreamKind
from twofold.core.options import Options
from twofold.core.policy import KEY_FIELD
from twofold.core.table import MethodTable
from twofold.http import (
    caching,
    compression,
    files,
    negotiation,
    resumption,
    xmlmessage,
    xmlparse,
)
from twofold.http.body import (
    ClientDisconnected,
    encode_headers,
    header,
    media_type,
    read_body,
    respond,
)
from twofold.http.operation import NEXT_PAGE_TOKEN, Operation, add_query, shape
from twofold.http.problem import UnsupportedMediaType, send_problem
from twofold.http.routing import Router, Template, quote_segment
from twofold.interceptors import idempotency

PROTOCOL = "rest"
# What serves a server-streaming method on its route (the App gives sse.serve):
# (operation, the admitted call context, path values, receive, send, max body size,
# refusal observer).
ServeStream = Callable[
    [Operation, Context, dict[str, Any], Receive, Send, int, Refused], Awaitable[None]
]
# What serves a long poll of one (``?wait=``; the App gives longpoll.serve): the
# same, with the App's options for the longest wait.
ServePoll = Callable[
    [Operation, Context, dict[str, Any], Receive, Send, Options, Refused], Awaitable[None]
]
JSON = b"application/json"
_encode = msgspec.json.Encoder().encode
_decode_any = msgspec.json.Decoder().decode


def _is_json(content_type: bytes | None) -> bool:
    if content_type == JSON:  # what nearly every client sends: skip the parse
        return True
    mt = media_type(content_type)
    return mt == JSON or (mt.startswith(b"application/") and mt.endswith(b"+json"))


def _is_xml(content_type: bytes | None) -> bool:
    mt = media_type(content_type)
    return mt in (xmlmessage.XML, b"text/xml") or (
        mt.startswith(b"application/") and mt.endswith(b"+xml")
    )


def _xml_problems(scope: Scope) -> bool:
    """True when the client prefers XML: its problem documents are problem+xml."""
    accept = header(scope, b"accept")
    return accept is not None and negotiation.representation(accept) == negotiation.XML


# What an XML body is refused for, named in the problem (400).
_BAD_XML = "malformed XML body"


@dataclass(slots=True)
class Route:
    template: Template
    operations: dict[str, Operation]
    allow: bytes = b""

    def finish(self) -> None:
        verbs = set(self.operations)
        if "GET" in verbs:
            verbs.add("HEAD")
        verbs.add("OPTIONS")
        order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        self.allow = ", ".join(v for v in order if v in verbs).encode()


class RestProtocol:
    """The ASGI endpoint for every REST route of a method table."""

    name = PROTOCOL

    def __init__(
        self, table: MethodTable, options: Options, stream: ServeStream, poll: ServePoll
    ) -> None:
        self.options = options
        self.stream = stream
        self.poll = poll
        self.table = table
        self.router: Router[Route] = Router()
        routes: dict[str, Route] = {}
        for method in table:
            if method.http is None:
                continue
            op = Operation.build(method)
            key = shape(op.template)
            route = routes.get(key)
            if route is None:
                route = routes[key] = Route(op.template, {})
                self.router.add(op.template, route)
            if method.http.verb in route.operations:
                other = route.operations[method.http.verb].method.full_name
                raise ValueError(
                    f"{method.http.verb} {method.http.path} is bound to both {other} and "
                    f"{method.full_name}"
                )
            route.operations[method.http.verb] = op
        for route in routes.values():
            route.finish()
        self.routes = list(routes.values())

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine: routing needs no await, and the coroutine it returns
        # is what the App awaits, one coroutine less on every request.
        path: str = scope["path"]
        route, params = self.router.match(path)
        if route is None:
            return self._not_found(scope, send, path)
        verb: str = scope["method"]
        op = route.operations.get("GET" if verb == "HEAD" else verb)
        if op is None:
            return self._not_allowed(route, scope, send, verb, path)
        return self._serve(op, params, scope, receive, send, verb)

    async def _not_found(self, scope: Scope, send: Send, path: str) -> None:
        error = Error(Code.NOT_FOUND, f"no route for {path}")
        await self.table.refuse(PROTOCOL, UNKNOWN, scope, error)
        await send_problem(send, error, path, xml=_xml_problems(scope))

    async def _not_allowed(
        self, route: Route, scope: Scope, send: Send, verb: str, path: str
    ) -> None:
        if verb == "OPTIONS":
            await respond(send, 204, headers=[(b"allow", route.allow)])
            return
        error = Error(Code.UNIMPLEMENTED, f"{verb} is not allowed on {path}")
        error.http_status = 405
        await self.table.refuse(PROTOCOL, UNKNOWN, scope, error)
        await send_problem(send, error, path, [(b"allow", route.allow)], xml=_xml_problems(scope))

    async def _serve(
        self,
        op: Operation,
        params: dict[str, Any],
        scope: Scope,
        receive: Receive,
        send: Send,
        verb: str,
    ) -> None:
        ctx = Context(
            PROTOCOL, op.method, Headers(scope["headers"]), scope.get("client"), None, scope
        )
        if self.table.admit is not None:
            # Credentials before the body: a refused caller's body is never read.
            refusal = await self.table.admit(ctx)
            if refusal is not None:
                await send_problem(send, refusal, scope["path"], xml=_xml_problems(scope))
                return
        try:
            if op.method.kind is not StreamKind.UNARY:
                # Server streaming on a REST route: a long poll when it asks for
                # one, else Server-Sent Events (both given by the App).
                if resumption.wait_of(scope["query_string"]) is not None:
                    await self.poll(
                        op, ctx, params, receive, send, self.options, self.table.refused
                    )
                    return
                await self.stream(
                    op, ctx, params, receive, send, self.options.max_body_size, self.table.refused
                )
                return
            # The unary call, in this frame rather than another coroutine's:
            # this is every REST request's path.
            head = verb == "HEAD"
            try:
                # One pass for the headers every request may carry.
                accept = if_none_match = if_modified_since = None
                for name, value in scope["headers"]:
                    if name == b"accept":
                        accept = value
                    elif name == b"if-none-match":
                        if_none_match = value
                    elif name == b"if-modified-since":
                        if_modified_since = value
                # A download answers in its file's own media type, whatever Accept says.
                xml = False
                # */* and application/json, what nearly every client sends: JSON, no call.
                if accept is not None and not op.download and accept not in negotiation.COMMON:
                    chosen = negotiation.representation(accept)
                    if chosen is None:
                        # Refused before anything runs: a write must not happen unanswered.
                        raise negotiation.NotAcceptable
                    xml = chosen == negotiation.XML
                qs: bytes = scope["query_string"]
                if qs and op.query_fields:
                    add_query(params, qs, op.query_fields)
                raw = b""
                root = None
                stream: files.UploadBody | None = None
                # An upload route takes any body but JSON as the file itself; one
                # with no Content-Type is application/octet-stream (RFC 9110 §8.3).
                upload = op.upload is not None and not _is_json(header(scope, b"content-type"))
                if upload:
                    # An upload: raw bytes or a form, under its own limit (twofold.http.files).
                    limit = op.method.upload_limit or self.options.max_upload_size
                    request, stream = await _upload(op, params, scope, receive, limit)
                elif op.body is not None:
                    raw = await read_body(scope, receive, self.options.max_body_size)
                    coding = header(scope, b"content-encoding")
                    if coding is not None:
                        raw = compression.decode_body(coding, raw, self.options.max_body_size)
                    content_type = header(scope, b"content-type")
                    if raw and not _is_json(content_type):
                        if not _is_xml(content_type):
                            accept = (
                                b"accept-patch"
                                if op.method.http and op.method.http.verb == "PATCH"
                                else (b"accept-post")
                            )
                            raise UnsupportedMediaType(accept, JSON + b", " + xmlmessage.XML)
                        try:
                            root = xmlparse.parse(raw)
                        except xmlparse.XmlRefused as exc:
                            raise Error(Code.INVALID_ARGUMENT, f"{_BAD_XML}: {exc}") from None
                if root is not None:
                    assert op.decode_xml is not None
                    try:
                        request = op.decode_xml(params, root)
                    except msgspec.ValidationError as exc:
                        raise validation_error(exc) from None
                elif not upload:
                    try:
                        request = op.decode(params, raw)
                    except msgspec.ValidationError as exc:
                        raise validation_error(exc) from None
                    except msgspec.DecodeError as exc:
                        raise Error(Code.INVALID_ARGUMENT, f"malformed JSON body: {exc}") from None
                if not op.read:
                    if xml and not xmlmessage.representable(request):
                        # Refused before it runs: the answer could not be written,
                        # and a write must not happen unanswered. (A read's answer
                        # is refused when it is written: nothing has changed.)
                        raise negotiation.Unrepresentable
                    if_match = header(scope, b"if-match")
                    if if_match is not None:
                        request = _with_etag(op, request, if_match)
                    since = header(scope, b"if-unmodified-since")
                    # With If-Match, which is the more exact, If-Unmodified-Since is
                    # ignored (RFC 9110 §13.1.4).
                    if since is not None and if_match is None:
                        request = _with_unmodified_since(op, request, since)
                    key = header(scope, b"idempotency-key") if op.keyed else None
                    if key is not None:
                        value = idempotency.check_key(key.decode("latin-1"))
                        request = _replace(request, KEY_FIELD, value)
            except Error as exc:
                # Refused before the chain: the observers still count and log it.
                await self.table.refused(ctx, exc)
                raise
            ctx.status = op.status
            try:
                if ctx.deadline is None:
                    # invoke(), inlined: one coroutine less on every request.
                    output = await op.method.call(request, ctx)
                else:
                    output = await invoke(op.method, ctx, request)
            except Error:
                if stream is not None and isinstance(stream.failure, ClientDisconnected):
                    raise ClientDisconnected from None  # no one to answer
                raise
            except Exception as exc:
                # Logged, as invoke() does; and raised unnamed: a local holding
                # it would keep this frame, its traceback's, in a cycle.
                if stream is not None and isinstance(stream.failure, ClientDisconnected):
                    as_error(exc)
                    raise ClientDisconnected from None
                raise as_error(exc) from None
            if stream is not None and stream.failure is not None:
                # The handler caught the upload's error and returned anyway: what it
                # kept is not the whole file, so the caller hears the error, not a success.
                raise stream.failure
            headers: list[tuple[bytes, bytes]] = []
            if op.location is not None:
                headers.append((b"location", _location(op, params, output)))
            if ctx.has_response_headers():
                headers.extend(encode_headers(ctx.response_headers))
                # A Cache-Control the handler set wins over the declared one.
                if "cache-control" not in {k.lower() for k in ctx.response_headers}:
                    headers.append(op.cache_control)
            else:
                headers.append(op.cache_control)
            if op.status == 204:
                await respond(send, 204, headers=headers)
                return
            if op.download:
                await files.send_file(scope, send, output, headers, head, op.read)
                return
            if xml:
                try:
                    body = xmlmessage.encode(output, op.method.output_type)
                except xmlmessage.Unrepresentable:
                    raise negotiation.Unrepresentable from None
            else:
                body = _encode(output)
            gzip = len(body) >= negotiation.GZIP_MIN_SIZE and negotiation.accepts_gzip(
                header(scope, b"accept-encoding")
            )
            # Looked for only on an output that declares it: most never do.
            when = caching.modified(output) if op.modified else None
            if when is not None:
                headers.append((b"last-modified", caching.last_modified(when)))
            if op.read:
                tag = caching.etag(output, body, gzip, xml)
                headers.append((b"etag", tag))
                headers.append(op.vary)
                if (if_none_match is not None or if_modified_since is not None) and (
                    caching.not_modified(if_none_match, tag, if_modified_since, when)
                ):
                    await respond(send, 304, headers=headers)
                    return
                if op.pages:
                    token = getattr(output, NEXT_PAGE_TOKEN)
                    if token:
                        headers.append((b"link", _next_link(scope, token)))
            elif op.if_match:
                version = getattr(output, caching.ETAG_FIELD, None)
                if isinstance(version, str) and version:
                    headers.append((b"etag", caching.etag(output, body, gzip, xml)))
            if gzip:
                body = negotiation.compress(body)
                headers.append((b"content-encoding", negotiation.GZIP))
                if not op.read:
                    headers.append((b"vary", b"Accept-Encoding"))
            # Sent here rather than through respond(): one coroutine and one list
            # copy less on every success.
            headers.append((b"content-type", xmlmessage.XML if xml else JSON))
            headers.append((b"content-length", b"%d" % len(body)))
            await send({"type": "http.response.start", "status": op.status, "headers": headers})
            await send({"type": "http.response.body", "body": b"" if head else body})

        except ClientDisconnected:
            return
        except Error as exc:
            await send_problem(send, exc, scope["path"], xml=_xml_problems(scope))


class _CompressedUpload(Error):
    """An upload that names a Content-Encoding: 415, naming the one taken
    (RFC 7694), as :class:`~twofold.http.compression.UnsupportedEncoding`
    does for a coding no body may have."""

    http_status = 415

    def __init__(self) -> None:
        super().__init__(
            Code.INVALID_ARGUMENT,
            "an upload is taken uncompressed: send no Content-Encoding",
            headers={"Accept-Encoding": "identity"},
        )


async def _upload(
    op: Operation, params: dict[str, Any], scope: Scope, receive: Receive, limit: int
) -> tuple[Any, files.UploadBody | None]:
    """The request of an upload: its path and query values, and the file the body
    carries (read whole for a File; for an Upload, opened for the handler to read)."""
    assert op.upload is not None and op.decode_upload is not None
    coding = header(scope, b"content-encoding")
    if coding is not None and coding.strip().lower() != b"identity":
        # Stored as sent would keep the compressed bytes as the file: refused
        # instead, with the coding that is taken (RFC 7694).
        raise _CompressedUpload()
    body: files.UploadBody | None = None
    file: File | Upload
    if op.streamed:
        file, body = await files.open_upload(scope, receive, op.upload, limit)
    else:
        file = await files.read_upload(scope, receive, op.upload, limit)
    try:
        return op.decode_upload(params, file), body
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from None


def _with_etag(op: Operation, request: Any, if_match: bytes) -> Any:
    """The request with If-Match in its ``etag`` field, for the handler to check
    inside its transaction (twofold.http.caching)."""
    if not op.if_match:
        raise Error.invalid(
            "If-Match", f"{op.method.name} cannot be made conditional: it takes no etag"
        )
    return _replace(request, caching.ETAG_FIELD, caching.if_match(if_match.decode("latin-1")))


def _with_unmodified_since(op: Operation, request: Any, since: bytes) -> Any:
    """The request with If-Unmodified-Since in its ``unmodified_since`` field,
    checked by the handler inside its transaction, as the etag is."""
    if not op.unmodified:
        raise Error.invalid(
            "If-Unmodified-Since",
            f"{op.method.name} cannot be made conditional: it takes no unmodified_since",
        )
    when = caching.http_date(since)
    # Not an HTTP-date: ignored, as RFC 9110 §13.1.4 has it.
    return request if when is None else _replace(request, caching.UNMODIFIED_SINCE_FIELD, when)


def _replace(request: Any, name: str, value: Any) -> Any:
    if isinstance(request, msgspec.Struct):
        return msgspec.structs.replace(request, **{name: value})
    return dataclasses.replace(request, **{name: value})


def _next_link(scope: Scope, token: str) -> bytes:
    """``Link: </products?page_size=2&page_token=...>; rel="next"`` (RFC 8288)."""
    pairs = [
        (k, v)
        for k, v in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        if k != "page_token"
    ]
    pairs.append(("page_token", token))
    root: str = scope.get("root_path", "")
    return f'<{root}{scope["path"]}?{urlencode(pairs)}>; rel="next"'.encode("latin-1")


def _location(op: Operation, params: dict[str, Any], output: Any) -> bytes:
    """The created item's path: the request's path variables plus the new id."""
    assert op.location is not None
    new_id = str(getattr(output, op.location_field))
    if op.location_prefix is not None:
        return (op.location_prefix + quote_segment(new_id)).encode()
    values = dict(params)
    values[op.location.variables[-1]] = new_id
    return op.location.expand(values).encode()
