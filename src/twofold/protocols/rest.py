"""REST: resources on URLs, HTTP verbs, JSON bodies, RFC 9457 problem documents.

Routes come from each method's :class:`~twofold.method.HttpBinding`, in the
manner of google.api.http: path variables and query parameters fill request
fields, and the body is either the whole rest of the message (``"*"``) or one
field of it (``"product"``). Query and path values are text, so they are
converted leniently ("42" -> 42); a JSON body is decoded strictly, its
numbers as JSON Schema reads them (:mod:`twofold.numbers`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlencode

import msgspec

from twofold import caching, compression, decimals, idempotency, messages, negotiation, numbers
from twofold.asgi import Receive, Scope, Send
from twofold.code import HTTP_STATUS, Code
from twofold.context import Context
from twofold.details import BadRequest
from twofold.errors import Error, validation_error
from twofold.headers import Headers
from twofold.http import (
    BodyTooLarge,
    ClientDisconnected,
    encode_headers,
    header,
    media_type,
    read_body,
    respond,
)
from twofold.invoke import invoke
from twofold.method import UNKNOWN, Method, StreamKind
from twofold.options import Options
from twofold.protocols import sse
from twofold.routing import Router, Template, quote_segment
from twofold.table import MethodTable

PROTOCOL = "rest"
JSON = b"application/json"
PROBLEM_JSON = b"application/problem+json"
# The list response field whose value the Link: rel="next" header carries (AIP-158).
NEXT_PAGE_TOKEN = "next_page_token"
_encode = msgspec.json.Encoder().encode
_decode_any = msgspec.json.Decoder().decode

# Builds the request message from (path and query values, raw body).
Decode = Callable[[dict[str, Any], bytes], Any]


def _is_json(content_type: bytes | None) -> bool:
    if content_type == JSON:  # what nearly every client sends: skip the parse
        return True
    mt = media_type(content_type)
    return mt == JSON or (mt.startswith(b"application/") and mt.endswith(b"+json"))


@dataclass(slots=True)
class Operation:
    """One verb on one route: the method it calls and how to build its request."""

    method: Method
    template: Template
    status: int
    query_fields: dict[str, bool]  # name -> repeated
    body: str | None
    decode: Decode
    location: Template | None
    # "/products/" when the new item's id is the location's only variable, so
    # that building it is one concatenation; else None.
    location_prefix: str | None
    location_field: str
    # Caching (twofold.caching), worked out once: a read answers with an ETag
    # and honours If-None-Match; a write whose request has an ``etag`` field
    # takes If-Match into it.
    read: bool
    cache_control: tuple[bytes, bytes]
    vary: tuple[bytes, bytes]
    if_match: bool
    # A write whose request has an unmodified_since field takes If-Unmodified-Since.
    unmodified: bool
    # A POST whose request has an idempotency_key field takes Idempotency-Key into it.
    keyed: bool
    # The output has next_page_token: a list, answered with a Link header.
    pages: bool

    @classmethod
    def build(cls, method: Method) -> Operation:
        binding = method.http
        assert binding is not None
        template = Template.parse(binding.path)
        all_fields = {f.name: f for f in messages.fields(method.input_type)}
        path_fields = set(template.variables)
        body = binding.body
        if body == "*":
            query = set()
        else:
            query = set(all_fields) - path_fields - ({body} if body else set())
        read = binding.verb == "GET"
        if_match = not read and caching.ETAG_FIELD in all_fields
        unmodified = not read and caching.UNMODIFIED_SINCE_FIELD in all_fields
        keyed = binding.verb == "POST" and idempotency.KEY_FIELD in all_fields
        # The conditions and key of a write come from headers, not from the URL.
        headers = {caching.ETAG_FIELD, caching.UNMODIFIED_SINCE_FIELD, idempotency.KEY_FIELD}
        url_query = query - headers if not read else query
        output_fields = {f.name for f in messages.fields(method.output_type)}
        location = Template.parse(binding.location) if binding.location else None
        prefix = None
        if (
            location is not None
            and location.verb is None
            and len(location.variables) == 1
            and location.segments[-1].startswith("{")
        ):
            prefix = "/" + "".join(s + "/" for s in location.segments[:-1])
        return cls(
            method=method,
            template=template,
            status=204 if method.returns_empty else binding.status,
            query_fields={n: messages.is_repeated(all_fields[n].type) for n in sorted(url_query)},
            body=body,
            decode=_decoder(method, path_fields, query, body),
            location=location,
            location_prefix=prefix,
            location_field=binding.location_field,
            read=read,
            cache_control=(b"cache-control", caching.cache_control(method)),
            vary=(b"vary", caching.vary(method)),
            if_match=if_match,
            unmodified=unmodified,
            keyed=keyed,
            pages=read and NEXT_PAGE_TOKEN in output_fields,
        )


def _decoder(method: Method, path: set[str], query: set[str], body: str | None) -> Decode:
    """Pick the cheapest way to build this operation's request message."""
    tp = method.input_type
    module = tp.__module__
    if body is None:
        # Everything is text from the URL: one lenient conversion.
        def from_params(params: dict[str, Any], _: bytes) -> Any:
            return msgspec.convert(params, tp, strict=False)

        return from_params if decimals.checker(tp) is None else _checked(from_params, tp)

    params_tp = messages.subset(f"{method.name}Params", tp, path | query, module)
    if decimals.checker(params_tp) is not None:
        return _checked(_decoder_with_body(method, path, body, params_tp), params_tp)
    return _decoder_with_body(method, path, body, params_tp)


def _checked(decode: Decode, params_tp: Any) -> Decode:
    """``decode``, with the Decimals among path and query values held to their
    rule (:mod:`twofold.decimals`): lenient conversion reads "1e2" too."""
    check = decimals.checker(params_tp)
    assert check is not None

    def checked(params: dict[str, Any], raw: bytes) -> Any:
        request = decode(params, raw)
        check(params)
        return request

    return checked


def _decoder_with_body(method: Method, path: set[str], body: str, params_tp: Any) -> Decode:
    tp = method.input_type
    module = tp.__module__
    param_names = tuple(f.name for f in messages.fields(params_tp))

    if body == "*":
        if not path:
            body_decoder = numbers.Decoder(tp)

            def whole_body(params: dict[str, Any], raw: bytes) -> Any:
                return body_decoder.decode(raw or b"{}")

            return whole_body
        body_tp = messages.subset(
            f"{method.name}Body", tp, {f.name for f in messages.fields(tp)} - path, module
        )
        decoder = numbers.Decoder(body_tp)
        body_names = tuple(f.name for f in messages.fields(body_tp))

        def merged(params: dict[str, Any], raw: bytes) -> Any:
            p = msgspec.convert(params, params_tp, strict=False)
            b = decoder.decode(raw or b"{}")
            kwargs = {n: getattr(p, n) for n in param_names}
            kwargs.update({n: getattr(b, n) for n in body_names})
            return tp(**kwargs)

        return merged

    field = next(f for f in messages.fields(tp) if f.name == body)
    field_decoder = numbers.Decoder(field.type)

    def one_field(params: dict[str, Any], raw: bytes) -> Any:
        # No path or query fields (a top-level create): nothing to convert.
        p = msgspec.convert(params, params_tp, strict=False) if param_names else None
        if not raw:
            if field.required:
                raise Error.invalid(body, "a request body is required")
            value = (
                field.default
                if field.default_factory is msgspec.NODEFAULT
                else (field.default_factory())
            )
        else:
            try:
                value = field_decoder.decode(raw)
            except msgspec.ValidationError as exc:
                raise validation_error(exc, prefix=body) from None
        if p is None:
            return tp(**{body: value})
        kwargs = {n: getattr(p, n) for n in param_names}
        kwargs[body] = value
        return tp(**kwargs)

    return one_field


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

    def __init__(self, table: MethodTable, options: Options) -> None:
        self.options = options
        self.table = table
        self.router: Router[Route] = Router()
        routes: dict[str, Route] = {}
        for method in table:
            if method.http is None:
                continue
            op = Operation.build(method)
            key = _shape(op.template)
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        route, params = self.router.match(path)
        if route is None:
            error = Error(Code.NOT_FOUND, f"no route for {path}")
            await self.table.refuse(PROTOCOL, UNKNOWN, scope, error)
            await send_problem(send, error, path, 404)
            return
        verb: str = scope["method"]
        op = route.operations.get("GET" if verb == "HEAD" else verb)
        if op is None:
            if verb == "OPTIONS":
                await respond(send, 204, headers=[(b"allow", route.allow)])
                return
            error = Error(Code.UNIMPLEMENTED, f"{verb} is not allowed on {path}")
            error.http_status = 405
            await self.table.refuse(PROTOCOL, UNKNOWN, scope, error)
            await send_problem(send, error, path, 405, [(b"allow", route.allow)])
            return
        ctx = Context(
            PROTOCOL, op.method, Headers(scope["headers"]), scope.get("client"), None, scope
        )
        if self.table.admit is not None:
            # Credentials before the body: a refused caller's body is never read.
            refusal = await self.table.admit(ctx)
            if refusal is not None:
                await send_problem(send, refusal, path)
                return
        try:
            if op.method.kind is not StreamKind.UNARY:
                # Server streaming over REST is Server-Sent Events.
                await sse.serve(
                    op, ctx, params, receive, send, self.options.max_body_size, self.table.refused
                )
                return
            await self._serve(op, ctx, params, scope, receive, send, verb == "HEAD")
        except ClientDisconnected:
            return
        except BodyTooLarge as exc:
            await send_problem(send, exc, path, 413)
        except caching.PreconditionFailed as exc:
            await send_problem(send, exc, path, 412)
        except negotiation.NotAcceptable as exc:
            await send_problem(send, exc, path, 406)
        except idempotency.KeyReused as exc:
            # The request is well formed but contradicts the first use of its key.
            await send_problem(send, exc, path, 422)
        except Error as exc:
            await send_problem(send, exc, path)

    async def _serve(
        self,
        op: Operation,
        ctx: Context,
        params: dict[str, Any],
        scope: Scope,
        receive: Receive,
        send: Send,
        head: bool,
    ) -> None:
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
            if accept is not None and not negotiation.accepts_json(accept):
                # Refused before anything runs: a write must not happen unanswered.
                raise negotiation.NotAcceptable
            qs: bytes = scope["query_string"]
            if qs and op.query_fields:
                _add_query(params, qs, op.query_fields)
            raw = b""
            if op.body is not None:
                raw = await read_body(scope, receive, self.options.max_body_size)
                coding = header(scope, b"content-encoding")
                if coding is not None:
                    raw = compression.decode_body(coding, raw, self.options.max_body_size)
                if raw and not _is_json(header(scope, b"content-type")):
                    accept = (
                        b"accept-patch"
                        if op.method.http and op.method.http.verb == "PATCH"
                        else (b"accept-post")
                    )
                    raise UnsupportedMediaType(accept)
            try:
                request = op.decode(params, raw)
            except msgspec.ValidationError as exc:
                raise validation_error(exc) from None
            except msgspec.DecodeError as exc:
                raise Error(Code.INVALID_ARGUMENT, f"malformed JSON body: {exc}") from None
            if not op.read:
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
                    request = _replace(request, idempotency.KEY_FIELD, value)
        except Error as exc:
            # Refused before the chain: the observers still count and log it.
            await self.table.refused(ctx, exc)
            raise
        output = await invoke(op.method, ctx, request)
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
        body = _encode(output)
        gzip = len(body) >= negotiation.GZIP_MIN_SIZE and negotiation.accepts_gzip(
            header(scope, b"accept-encoding")
        )
        when = caching.modified(output)
        if when is not None:
            headers.append((b"last-modified", caching.last_modified(when)))
        if op.read:
            tag = caching.etag(output, body, gzip)
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
                headers.append((b"etag", caching.etag(output, body, gzip)))
        if gzip:
            body = negotiation.compress(body)
            headers.append((b"content-encoding", negotiation.GZIP))
            if not op.read:
                headers.append((b"vary", b"Accept-Encoding"))
        # Sent here rather than through respond(): one coroutine and one list
        # copy less on every success.
        headers.append((b"content-type", JSON))
        headers.append((b"content-length", b"%d" % len(body)))
        await send({"type": "http.response.start", "status": op.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else body})


def _with_etag(op: Operation, request: Any, if_match: bytes) -> Any:
    """The request with If-Match in its ``etag`` field, for the handler to check
    inside its transaction (twofold.caching)."""
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


class UnsupportedMediaType(Error):
    http_status = 415

    def __init__(self, accept_header: bytes) -> None:
        super().__init__(
            Code.INVALID_ARGUMENT, "unsupported media type: send Content-Type: application/json"
        )
        self.accept_header = accept_header


def _shape(template: Template) -> str:
    segs = ["{}" if s.startswith("{") else s for s in template.segments]
    return "/" + "/".join(segs) + (f":{template.verb}" if template.verb else "")


def _add_query(params: dict[str, Any], qs: bytes, known: dict[str, bool]) -> None:
    """Known query parameters into ``params``; unknown ones are ignored, as caches
    and browsers add their own (cache-busters, tracking)."""
    try:
        pairs = parse_qsl(qs.decode("latin-1"), keep_blank_values=True, max_num_fields=1000)
    except ValueError:
        raise Error(Code.INVALID_ARGUMENT, "too many query parameters") from None
    for name, value in pairs:
        repeated = known.get(name)
        if repeated is None:
            continue
        if repeated:
            params.setdefault(name, []).append(value)
        elif name in params:
            raise Error.invalid(name, "given more than once")
        else:
            params[name] = value


def _location(op: Operation, params: dict[str, Any], output: Any) -> bytes:
    """The created item's path: the request's path variables plus the new id."""
    assert op.location is not None
    new_id = str(getattr(output, op.location_field))
    if op.location_prefix is not None:
        return (op.location_prefix + quote_segment(new_id)).encode()
    values = dict(params)
    values[op.location.variables[-1]] = new_id
    return op.location.expand(values).encode()


def problem(error: Error, instance: str, status: int) -> dict[str, Any]:
    """The RFC 9457 document for an error: standard members plus ``code`` and
    ``violations``. ``type`` is about:blank, so ``title`` is the status phrase
    as the RFC asks; ``code`` tells apart errors sharing a status."""
    doc: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase
        if status in HTTPStatus._value2member_map_
        else ("Client Closed Request"),
        "status": status,
        "detail": error.message or error.code.wire_name,
        "instance": instance,
        "code": error.code.wire_name,
    }
    violations = error.violations
    if violations:
        doc["violations"] = [{"field": v.field, "description": v.description} for v in violations]
    others = [d for d in error.details if not isinstance(d, BadRequest)]
    if others:
        doc["details"] = [{"type": d.TYPE_NAME, **d.to_json()} for d in others]
    return doc


async def send_problem(
    send: Send,
    error: Error,
    instance: str,
    status: int | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    if isinstance(error, UnsupportedMediaType):
        status = 415
        headers = [*(headers or []), (error.accept_header, JSON)]
    status = status or error.http_status or HTTP_STATUS[error.code]
    # An error is never to be reused: the next request may well succeed.
    raw = [*(headers or []), *encode_headers(error.headers), (b"cache-control", caching.NO_STORE)]
    await respond(send, status, _encode(problem(error, instance, status)), raw, PROBLEM_JSON)
