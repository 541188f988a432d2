"""CORS (the Fetch standard's cross-origin protocol), for every wire of an App at once.

It runs before routing, so that a preflight is answered here and never
reaches a wire, an interceptor (credentials, limits) or a handler: a
browser sends preflights without credentials, so a guarded method's
preflight must succeed without them. Every other answer goes on to the App
and gets the ``Access-Control-*`` headers its origin is owed on the way
out, whatever produced it (a handler, an error, a stream).

CORS is the server telling a browser what it may *show* a page; it is not
access control. A request from an origin not listed is still served, and
its answer simply carries no ``Access-Control-Allow-Origin``, so the
browser hides it from the page. Only a refused preflight stops the actual
request from being sent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from twofold.core.asgi import ASGIApp, Message, Receive, Scope, Send
from twofold.core.declarations import DefinitionError

# What browser clients of each wire send beyond the CORS-safelisted headers.
DEFAULT_HEADERS = (
    "content-type",
    "authorization",
    "x-api-key",
    "x-request-id",
    "idempotency-key",
    "if-match",
    "if-none-match",
    "request-timeout",
    "traceparent",
    "tracestate",
    # Connect
    "connect-protocol-version",
    "connect-timeout-ms",
    "connect-accept-encoding",
    "connect-content-encoding",
    # gRPC-Web
    "grpc-timeout",
    "grpc-accept-encoding",
    "x-grpc-web",
    "x-user-agent",
)

# What each wire's clients read beyond the CORS-safelisted response headers
# (Cache-Control, Content-Language, Content-Length, Content-Type, Expires,
# Last-Modified, Pragma), which a page may always read.
DEFAULT_EXPOSE = (
    # REST: conditional requests, the created resource, pages, back-off
    "etag",
    "location",
    "link",
    "retry-after",
    "www-authenticate",
    "x-request-id",
    # gRPC-Web: a trailers-only error answer carries its status as headers
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "grpc-encoding",
    "grpc-accept-encoding",
    # Connect: streaming compression
    "connect-content-encoding",
    "connect-accept-encoding",
    "content-encoding",
)

DEFAULT_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token: a header or method name
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_ORIGIN = re.compile(r"(https?)://(\*\.)?([a-z0-9.-]+|\[[0-9a-f:.]+\])(:[0-9]{1,5})?")


@dataclass(frozen=True, slots=True)
class Cors:
    """Which browser origins may call the App, and what they may send and read.

    ``origins`` are serialized origins, ``scheme://host[:port]`` with no
    path: exact (``https://app.example.com``), ``*`` for any origin, or a
    pattern whose host starts with ``*.`` (``https://*.example.com``), which
    matches one or more labels in front of the rest (``a.example.com``,
    ``a.b.example.com``, never ``example.com`` itself or ``evilexample.com``).
    ``headers`` may be ``("*",)``: any header a preflight asks for. With
    ``credentials`` (cookies, HTTP authentication) the origin ``*`` is
    refused: browsers ignore it then, per the Fetch standard. Whatever is
    wrong is a :class:`~twofold.DefinitionError` when the policy is built.
    """

    origins: Sequence[str]
    methods: Sequence[str] = DEFAULT_METHODS
    headers: Sequence[str] = DEFAULT_HEADERS
    expose: Sequence[str] = DEFAULT_EXPOSE
    credentials: bool = False
    max_age: int = 600
    """Seconds a browser may cache a preflight's answer (browsers cap it: Chromium at 2 h)."""
    _any: bool = field(init=False, repr=False, compare=False)
    _exact: frozenset[str] = field(init=False, repr=False, compare=False)
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.origins, str):
            raise DefinitionError("CORS origins: a list of origins, not one string")
        if not self.origins:
            raise DefinitionError("CORS needs at least one origin")
        exact, patterns, wildcard = set(), [], False
        for origin in self.origins:
            if origin == "*":
                wildcard = True
                continue
            form = _ORIGIN.fullmatch(origin) if origin.isascii() else None
            if form is None or origin != origin.lower():
                raise DefinitionError(
                    f"CORS origin {origin!r}: write scheme://host[:port] in lowercase ASCII, "
                    "no path or trailing slash (https://app.example.com, https://*.example.com)"
                )
            if form.group(4) == {"http": ":80", "https": ":443"}[form.group(1)]:
                # A browser's Origin never names the scheme's own port.
                raise DefinitionError(
                    f"CORS origin {origin!r}: leave out the default port {form.group(4)}"
                )
            if form.group(2):
                rest = re.escape(origin[len(form.group(1)) + 5 :])
                patterns.append(rf"{form.group(1)}://{_LABEL}(?:\.{_LABEL})*\.{rest}")
            else:
                exact.add(origin)
        if wildcard and self.credentials:
            raise DefinitionError(
                "CORS origins '*' with credentials=True: the Fetch standard forbids "
                "'Access-Control-Allow-Origin: *' on credentialed requests and browsers "
                "refuse the answer; list the origins instead"
            )
        for kind, names in (("method", self.methods), ("header", self.headers)):
            if isinstance(names, str):
                raise DefinitionError(f"CORS {kind}s: a list, not one string")
            for name in names:
                if name != "*" and not _TOKEN.fullmatch(name):
                    raise DefinitionError(f"CORS {kind} {name!r} is not a valid {kind} name")
        for name in self.expose:
            if not _TOKEN.fullmatch(name):
                raise DefinitionError(f"CORS expose header {name!r} is not a valid header name")
        if self.max_age < 0:
            raise DefinitionError("CORS max_age must be 0 or more seconds")
        setattr_ = object.__setattr__  # frozen: derived fields are set once, here
        setattr_(self, "_any", wildcard)
        setattr_(self, "_exact", frozenset(exact))
        setattr_(self, "_pattern", re.compile("|".join(patterns)) if patterns else None)

    def allows(self, origin: str) -> bool:
        if origin in self._exact or self._any:
            return True
        return self._pattern is not None and self._pattern.fullmatch(origin) is not None


class CrossOrigin:
    """The ASGI app answering preflights and adding CORS headers around ``app``."""

    def __init__(self, policy: Cors, app: ASGIApp) -> None:
        self.policy = policy
        self.app = app
        self.credentials = policy.credentials
        # Without credentials, "any origin" is answered "*", which is the same
        # for every origin; otherwise the origin is echoed, so answers vary.
        self.star = "*" in policy.origins and not policy.credentials
        methods = [m for m in policy.methods if m != "*"]
        self.any_method = "*" in policy.methods
        self.methods = frozenset(methods)
        self.allow_methods = ", ".join(methods).encode()
        self.any_header = "*" in policy.headers
        self.headers = frozenset(h.lower() for h in policy.headers if h != "*")
        self.expose = ", ".join(policy.expose).encode()
        self.max_age = str(policy.max_age).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = None
        method = None
        for k, v in scope["headers"]:
            if k == b"origin":
                origin = v
            elif k == b"access-control-request-method":
                method = v
        if origin is None:
            await self.app(scope, receive, _varying(send))
            return
        text = origin.decode("latin-1")
        allowed = self.policy.allows(text)
        if scope["method"] == "OPTIONS" and method is not None:
            await self._preflight(scope, send, text if allowed else None, method)
            return
        if not allowed:
            await self.app(scope, receive, _varying(send))
            return
        added = self._allow(text)
        if self.expose:
            added.append((b"access-control-expose-headers", self.expose))

        async def sharing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = _vary(list(message.get("headers", ())), b"Origin")
                headers.extend(added)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sharing)

    def _allow(self, origin: str) -> list[tuple[bytes, bytes]]:
        allow = [(b"access-control-allow-origin", b"*" if self.star else origin.encode())]
        if self.credentials:
            allow.append((b"access-control-allow-credentials", b"true"))
        return allow

    async def _preflight(self, scope: Scope, send: Send, origin: str | None, method: bytes) -> None:
        requested = b""
        for k, v in scope["headers"]:
            if k == b"access-control-request-headers":
                requested = v if not requested else requested + b"," + v
        names = [n.strip().lower() for n in requested.decode("latin-1").split(",") if n.strip()]
        verb = method.decode("latin-1")
        if origin is None:
            refusal = "origin not allowed"
        elif not (self.any_method or verb in self.methods):
            refusal = f"method {verb} not allowed"
        elif not self.any_header and (unlisted := [n for n in names if n not in self.headers]):
            refusal = f"header {unlisted[0]} not allowed"
        else:
            refusal = None
        headers = [
            (b"vary", b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
        ]
        if refusal is not None:
            # No Access-Control-Allow-Origin: the browser refuses the actual
            # request. 403 says why to a person reading the network tab.
            body = f"CORS preflight refused: {refusal}\n".encode()
            headers += [
                (b"cache-control", b"no-store"),
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ]
            await send({"type": "http.response.start", "status": 403, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        assert origin is not None
        headers += self._allow(origin)
        # Echo what was asked for: a listed method or header is all a
        # browser checks, and "*" would not cover Authorization anyway.
        headers.append((b"access-control-allow-methods", verb.encode() or self.allow_methods))
        if names:
            headers.append((b"access-control-allow-headers", ", ".join(names).encode()))
        headers.append((b"access-control-max-age", self.max_age))
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _varying(send: Send) -> Send:
    """``send``, adding ``Vary: Origin``: the answer would differ for another
    origin, and a shared cache must not hand this one to it."""

    async def varied(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = _vary(list(message.get("headers", ())), b"Origin")
            message = {**message, "headers": headers}
        await send(message)

    return varied


def _vary(headers: list[tuple[bytes, bytes]], name: bytes) -> list[tuple[bytes, bytes]]:
    for i, (k, v) in enumerate(headers):
        if k.lower() == b"vary":
            listed = [x.strip().lower() for x in v.split(b",")]
            if name.lower() not in listed and b"*" not in listed:
                headers[i] = (k, v + b", " + name)
            return headers
    headers.append((b"vary", name))
    return headers
