"""Deadlines and limits, as interceptors that act the same on every protocol.

- :class:`Deadlines`: a server-side timeout per method (``@timeout(2.0)`` in
  the definition, else a default) and, on REST, the client's
  ``Request-Timeout`` header in seconds (Connect has ``connect-timeout-ms``,
  gRPC and gRPC-Web ``grpc-timeout``). The earliest deadline wins; when it
  passes the handler is cancelled and the call is DEADLINE_EXCEEDED (504 on
  REST), streams included; ``@lifetime`` streams end cleanly instead.
- :class:`ConcurrencyLimit`: calls in flight in this process, per :class:`Budget`.
- :class:`RateLimit`: a token bucket per identity (or address), in :class:`Buckets`.
- :class:`StreamLimit`: at most N messages in a client or server stream.

Every limit refuses with RESOURCE_EXHAUSTED and a ``Retry-After`` (429 on REST).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import math
import random
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from twofold.core.chain import CallNext
from twofold.core.code import Code
from twofold.core.context import Context
from twofold.core.errors import Error, as_error
from twofold.core.invoke import before
from twofold.core.method import StreamKind
from twofold.core.policy import MAX_TIMEOUT

if TYPE_CHECKING:
    from twofold.interceptors.auth import Verifier

# The part of a lifetime taken off at random (gRPC's MAX_CONNECTION_AGE
# jitters by 10% too), so that a crowd of streams opened together (after a
# restart, say) ends, and reconnects, spread out.
LIFETIME_JITTER = 0.1
# REST's deadline header: decimal seconds, as in "Request-Timeout: 2.5".
REQUEST_TIMEOUT = "request-timeout"


def _requested(ctx: Context) -> float | None:
    raw = ctx.headers.get(REQUEST_TIMEOUT) if ctx.protocol == "rest" else None
    if raw is None:
        return None
    try:
        seconds = float(raw.strip()) if len(raw) <= 32 else math.nan
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= MAX_TIMEOUT:  # also refuses nan and inf
        raise Error.invalid(
            "Request-Timeout", f"must be a number of seconds in (0, {MAX_TIMEOUT:g}]"
        )
    return seconds


class Deadlines:
    """Cancel a call at the earliest of its deadlines; ``default`` for undeclared methods.

    A stream declared with :func:`lifetime` has no server-side deadline: it
    ends cleanly when its lifetime is over.
    """

    def __init__(self, default: float | None = None) -> None:
        self.default = default

    async def __call__(self, ctx: Context, request: Any, call_next: CallNext) -> Any:
        span = ctx.method.lifetime
        if span is not None:
            span *= 1 - LIFETIME_JITTER * random.random()
            ends = asyncio.get_running_loop().time() + span
            return _until(await self._within(None, ctx, request, call_next), ends)
        return await self._within(ctx.method.timeout or self.default, ctx, request, call_next)

    def _within(
        self, server: float | None, ctx: Context, request: Any, call_next: CallNext
    ) -> Awaitable[Any]:
        """The call, cancelled at the earlier of ``server`` seconds and the client's deadline.

        Not a coroutine itself: the caller awaits the chain's own, one frame less per call.
        """
        limits = [s for s in (server, _requested(ctx)) if s]
        if not limits:
            return call_next(request, ctx)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(limits)
        if ctx.method.kind is not StreamKind.UNARY and ctx.shorten_deadline(deadline):
            # A stream outlives this call (the handler returns its generator at
            # once): the protocol's timeout around the whole exchange, now
            # brought forward, cancels it and sends the stream's own error.
            return call_next(request, ctx)
        if ctx.deadline is not None and ctx.deadline <= deadline:
            return call_next(request, ctx)
        ctx.deadline = deadline
        return before(deadline, call_next(request, ctx))


async def _until(stream: AsyncIterator[Any], ends: float) -> AsyncIterator[Any]:
    """``stream`` until its end or ``ends`` (on the loop's clock), whichever comes first.

    At ``ends`` the handler is cancelled where it waits for its next message
    and the stream ends as if the handler had returned: no error, the client
    reconnects. The timeout is around each wait, never across a yield, so it
    cannot fire in whoever reads this stream.
    """
    loop = asyncio.get_running_loop()
    iterator = aiter(stream)
    try:
        while loop.time() < ends:
            timer = asyncio.timeout_at(ends)
            try:
                async with timer:
                    item = await anext(iterator)
            except StopAsyncIteration:
                return
            except Exception as exc:
                # The handler's own exception, or (once ours fired) the one
                # its clean-up raised in place of the cancellation: logged as
                # any unexpected one, while the stream still ends on time.
                if not timer.expired():
                    raise
                if not isinstance(exc, TimeoutError):
                    as_error(exc)
                return
            yield item
    finally:
        await _close(stream)


def exhausted(message: str, retry_after: float) -> Error:
    seconds = str(max(1, math.ceil(retry_after)))
    return Error(Code.RESOURCE_EXHAUSTED, message, headers={"Retry-After": seconds})


async def _close(stream: AsyncIterator[Any]) -> None:
    # Closing the wrapper must close the handler's generator now, so that its
    # finally runs when the call ends, not when the garbage collector comes.
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


# The header (HTTP) and metadata key (gRPC) bearer tokens come in.
AUTHORIZATION = "authorization"

# Whether a call is an identified caller's (see carries_credentials).
Classifier = Callable[[Context], bool]


def carries_credentials(ctx: Context) -> bool:
    """Whether a call counts as an identified caller's for :class:`ConcurrencyLimit`.

    True once :class:`~twofold.interceptors.auth.Authentication` has identified the caller
    (``ctx.identity``, when it runs first), else when the call carries an
    ``Authorization`` header (``authorization`` metadata on gRPC). Presence is
    enough, because ``Authentication`` refuses invalid credentials even on a
    public method: a forged token holds a slot of the identified budget only
    for as long as it takes to refuse it.
    """
    return ctx.identity is not None or AUTHORIZATION in ctx.headers


def credentials_of(*verifiers: Verifier) -> Classifier:
    """:func:`carries_credentials` for other credentials: those any of ``verifiers`` reads.

    ``ConcurrencyLimit(identified=credentials_of(*authentication.verifiers))``
    counts an ``X-API-Key`` call (:class:`~twofold.interceptors.auth.ApiKeys`) as identified.
    """

    def classify(ctx: Context) -> bool:
        headers = ctx.headers
        return ctx.identity is not None or any(v.present(headers) for v in verifiers)

    return classify


def remote_address(ctx: Context) -> str:
    """The caller's address, the same whatever the wire; its /64 for IPv6.

    HTTP servers give ``host:port`` (``[host]:port`` for IPv6), grpcio
    ``ipv4:host:port`` or ``ipv6:%5Bhost%5D:port`` (a URI, its brackets
    percent-encoded). An IPv6 host is reduced to its
    /64, the block one subscriber is usually given, or every address of it
    would be a caller of its own; an IPv4-mapped one is its IPv4 address. It
    is the address of the TCP peer: behind a proxy, the proxy's, unless the
    HTTP server rewrites it from a proxy it trusts (uvicorn's
    ``--forwarded-allow-ips``). "" when the transport does not say.
    """
    peer = ctx.peer or ""
    if peer.startswith(("ipv4:", "ipv6:")):
        peer = urllib.parse.unquote(peer[5:])
    if peer.startswith("["):
        host = peer[1 : peer.find("]")]
    else:
        host, colon, port = peer.rpartition(":")
        if not colon or not port.isdigit() or ":" in host:
            host = peer
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return host


@dataclass(frozen=True, slots=True)
class Budget:
    """How many calls of one kind (unary calls, or streams) may be in flight at once.

    ``limit`` counts every caller in this process. Anonymous calls may hold
    at most ``anonymous_share`` of it (at least one call), so that the rest
    is kept for identified callers (1.0: no reserve); and, when
    ``per_address`` is set, at most that many from one remote address.
    """

    limit: int
    anonymous_share: float = 0.75
    per_address: int | None = None

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("a budget's limit must be at least 1")
        if not 0 < self.anonymous_share <= 1:
            raise ValueError("anonymous_share must be in (0, 1]")
        if self.per_address is not None and self.per_address < 1:
            raise ValueError("per_address must be at least 1, or None")

    @property
    def anonymous_limit(self) -> int:
        return max(1, math.floor(self.limit * self.anonymous_share))


# The defaults of ConcurrencyLimit. Unary calls are short: a process-wide
# budget with a quarter kept for identified callers. A stream may stay open
# for as long as its method allows, so one caller could otherwise take the
# budget and keep it: anonymous streams get half of it, at most 64 from one
# address (nginx's limit_conn per $binary_remote_addr, for streams).
UNARY = Budget(512, anonymous_share=0.75)
STREAMS = Budget(1024, anonymous_share=0.5, per_address=64)


class _Pool:
    """The calls in flight against one budget."""

    __slots__ = ("anonymous", "anonymous_limit", "by_address", "in_flight", "limit", "per_address")

    def __init__(self, budget: Budget) -> None:
        self.limit = budget.limit
        self.anonymous_limit = budget.anonymous_limit
        self.per_address = budget.per_address
        self.in_flight = 0
        self.anonymous = 0
        # Only addresses with calls in flight: at most anonymous_limit keys.
        self.by_address: dict[str, int] = {}

    def refusal(self, identified: bool, address: str | None) -> str | None:
        """Why one more call may not start now, or None when it may."""
        if self.in_flight >= self.limit:
            return ""
        if identified:
            return None
        if self.anonymous >= self.anonymous_limit:
            return " from anonymous callers"
        if address is not None and self.by_address.get(address, 0) >= (self.per_address or 0):
            return " from one address"
        return None

    def take(self, identified: bool, address: str | None) -> None:
        self.in_flight += 1
        if not identified:
            self.anonymous += 1
            if address is not None:
                self.by_address[address] = self.by_address.get(address, 0) + 1

    def give_back(self, identified: bool, address: str | None) -> None:
        self.in_flight -= 1
        if not identified:
            self.anonymous -= 1
            if address is not None:
                held = self.by_address.pop(address) - 1
                if held:
                    self.by_address[address] = held


class _Held:
    """A server stream holding its place in a budget until it ends or is closed.

    A class, not an async generator: a generator closed before its first
    message never runs its ``finally``, and the place would be lost for good.
    """

    __slots__ = ("_iterator", "_release", "_stream")

    def __init__(self, stream: AsyncIterator[Any], release: Callable[[], None]) -> None:
        self._stream = stream
        self._iterator = aiter(stream)
        self._release: Callable[[], None] | None = release

    def __aiter__(self) -> _Held:
        return self

    async def __anext__(self) -> Any:
        try:
            return await anext(self._iterator)
        except BaseException:  # its end, an error, a cancellation: the place is free
            await self.aclose()
            raise

    async def aclose(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()
            await _close(self._stream)


class ConcurrencyLimit:
    """Calls in flight in this process, in two budgets: unary calls and streams.

    Each is a :class:`Budget` (an int ``n`` is ``Budget(n)``). A stream (client,
    server or bidi) holds its place until it ends, so streams never take the
    places of unary calls, nor the other way round. Within each budget a
    share is kept for identified callers, and anonymous streams are capped
    per remote address. ``identified(ctx)`` says whether a call is an
    identified caller's (:func:`carries_credentials`: by ``ctx.identity``
    or the presence of credentials, so it works before and after
    :class:`~twofold.interceptors.auth.Authentication`); ``address(ctx)`` keys the
    per-address cap (:func:`remote_address`). A refusal is RESOURCE_EXHAUSTED
    with ``Retry-After: retry_after``.
    """

    def __init__(
        self,
        unary: Budget | int = UNARY,
        streams: Budget | int = STREAMS,
        *,
        identified: Classifier = carries_credentials,
        address: Callable[[Context], str] = remote_address,
        retry_after: float = 1.0,
    ) -> None:
        self.unary = unary if isinstance(unary, Budget) else Budget(unary)
        self.streams = streams if isinstance(streams, Budget) else Budget(streams)
        self.identified = identified
        self.address = address
        self.retry_after = retry_after
        self._unary = _Pool(self.unary)
        self._streams = _Pool(self.streams)

    def in_flight(self, kind: StreamKind = StreamKind.UNARY) -> int:
        """The calls of ``kind``'s budget in flight now."""
        return (self._unary if kind is StreamKind.UNARY else self._streams).in_flight

    async def __call__(self, ctx: Context, request: Any, call_next: CallNext) -> Any:
        kind = ctx.method.kind
        unary = kind is StreamKind.UNARY
        pool = self._unary if unary else self._streams
        identified = self.identified(ctx)
        address = None if identified or pool.per_address is None else self.address(ctx)
        refusal = pool.refusal(identified, address)
        if refusal is not None:
            what = "calls" if unary else "streams"
            raise exhausted(f"too many {what} in flight{refusal}", self.retry_after)
        pool.take(identified, address)
        try:
            result = await call_next(request, ctx)
        except BaseException:
            pool.give_back(identified, address)
            raise
        if kind is StreamKind.SERVER or kind is StreamKind.BIDI:
            return _Held(result, functools.partial(pool.give_back, identified, address))
        pool.give_back(identified, address)
        return result


class Buckets(Protocol):
    """Where :class:`RateLimit` keeps its token buckets: one process's memory
    (:class:`MemoryBuckets`) or a store every process serving the API shares."""

    async def take(self, key: str, rate: float, burst: float) -> float:
        """Take one token from ``key``'s bucket (full, ``burst`` tokens, when new;
        refilled at ``rate`` tokens a second). 0 if it had one, else how many
        seconds until it will, and nothing is taken. Atomic: of concurrent
        takes, at most as many succeed as there were tokens."""
        ...


class MemoryBuckets:
    """Buckets in this process's memory, at most ``max_callers``, the least
    recently used dropped first. N workers or replicas each have their own,
    so together they grant up to N times the rate."""

    def __init__(self, max_callers: int = 10_000) -> None:
        self.max_callers = max_callers
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def take(self, key: str, rate: float, burst: float) -> float:
        # Nothing here awaits: atomic on the event loop.
        now = time.monotonic()
        tokens, last = self.buckets.pop(key, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens < 1:
            self.buckets[key] = (tokens, now)
            return (1 - tokens) / rate
        self.buckets[key] = (tokens - 1, now)
        while len(self.buckets) > self.max_callers:
            self.buckets.popitem(last=False)
        return 0.0


class RateLimit:
    """A token bucket per caller: ``rate`` calls a second, bursts of up to ``burst``.

    The caller is ``ctx.identity.subject`` (put this after Authentication),
    or the caller's :func:`remote_address` for an anonymous call. The buckets
    are in ``buckets``: by default this process's memory
    (:class:`MemoryBuckets`, at most ``max_callers``), where N workers or
    replicas grant up to N times the rate; a store they all share (the
    catalog's is in ``examples/catalog/ratelimits.py``) makes them one.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_callers: int = 10_000,
        buckets: Buckets | None = None,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = float(burst)
        self.buckets: Buckets = buckets if buckets is not None else MemoryBuckets(max_callers)

    def key(self, ctx: Context) -> str:
        if ctx.identity is not None:
            return f"id:{ctx.identity.subject}"
        return f"peer:{remote_address(ctx)}"

    async def __call__(self, ctx: Context, request: Any, call_next: CallNext) -> Any:
        wait = await self.buckets.take(self.key(ctx), self.rate, self.burst)
        if wait > 0:
            raise exhausted("rate limit exceeded", wait)
        return await call_next(request, ctx)


async def _at_most(stream: AsyncIterator[Any], limit: int, what: str) -> Any:
    count = 0
    try:
        async for item in stream:
            count += 1
            if count > limit:
                raise Error(Code.RESOURCE_EXHAUSTED, f"more than {limit} {what} messages")
            yield item
    finally:
        await _close(stream)


class StreamLimit:
    """At most ``max_messages`` messages in each direction of a stream."""

    def __init__(self, max_messages: int) -> None:
        self.max_messages = max_messages

    async def __call__(self, ctx: Context, request: Any, call_next: CallNext) -> Any:
        kind = ctx.method.kind
        if kind in (StreamKind.CLIENT, StreamKind.BIDI):
            request = _at_most(request, self.max_messages, "request")
        result = await call_next(request, ctx)
        if kind in (StreamKind.SERVER, StreamKind.BIDI):
            return _at_most(result, self.max_messages, "response")
        return result
