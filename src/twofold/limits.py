"""Deadlines and limits, as interceptors that act the same on every protocol.

- :class:`Deadlines`: a server-side timeout per method (``@timeout(2.0)`` in
  the definition, else a default) and, on REST, the client's
  ``Request-Timeout`` header in seconds (Connect has ``connect-timeout-ms``,
  gRPC and gRPC-Web ``grpc-timeout``). The earliest deadline wins; when it
  passes the handler is cancelled and the call is DEADLINE_EXCEEDED (504 on
  REST). It covers streams too, to their last message.
- :class:`ConcurrencyLimit`: at most N calls in flight in this process.
- :class:`RateLimit`: a token bucket per identity (or per peer when anonymous).
- :class:`StreamLimit`: at most N messages in a client or server stream.

Every limit refuses with RESOURCE_EXHAUSTED and a ``Retry-After`` (429 on REST).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from twofold.code import Code
from twofold.context import Context
from twofold.declarations import declare
from twofold.errors import Error
from twofold.interceptors import CallNext
from twofold.invoke import before
from twofold.method import StreamKind

F = TypeVar("F", bound=Callable[..., Any])

# REST's deadline header: decimal seconds, as in "Request-Timeout: 2.5".
REQUEST_TIMEOUT = "request-timeout"
# The longest timeout a client may ask for; longer is a mistake, not a wish.
MAX_TIMEOUT = 24 * 3600.0


def timeout(seconds: float) -> Callable[[F], F]:
    """Declare a handler's server-side timeout (above or under the method decorator)."""
    if not 0 < seconds <= MAX_TIMEOUT:
        raise ValueError(f"a timeout must be in (0, {MAX_TIMEOUT:g}] seconds")

    def decorate(fn: F) -> F:
        declare(fn, "timeout", float(seconds), f"@timeout({seconds!r})")
        return fn

    return decorate


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
    """Cancel a call at the earliest of its deadlines; ``default`` for undeclared methods."""

    def __init__(self, default: float | None = None) -> None:
        self.default = default

    async def __call__(self, ctx: Context, request: Any, call_next: CallNext) -> Any:
        limits = [s for s in (ctx.method.timeout or self.default, _requested(ctx)) if s]
        if not limits:
            return await call_next(request, ctx)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(limits)
        if ctx.method.kind is not StreamKind.UNARY and ctx.shorten_deadline(deadline):
            # A stream outlives this call (the handler returns its generator at
            # once): the protocol's timeout around the whole exchange, now
            # brought forward, cancels it and sends the stream's own error.
            return await call_next(request, ctx)
        if ctx.deadline is not None and ctx.deadline <= deadline:
            return await call_next(request, ctx)
        ctx.deadline = deadline
        return await before(deadline, call_next(request, ctx))


def exhausted(message: str, retry_after: float) -> Error:
    seconds = str(max(1, math.ceil(retry_after)))
    return Error(Code.RESOURCE_EXHAUSTED, message, headers={"Retry-After": seconds})


async def _close(stream: AsyncIterator[Any]) -> None:
    # Closing the wrapper must close the handler's generator now, so that its
    # finally runs when the call ends, not when the garbage collector comes.
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


async def _release_after(stream: AsyncIterator[Any], release: Callable[[], None]) -> Any:
    try:
        async for item in stream:
            yield item
    finally:
        release()
        await _close(stream)


class ConcurrencyLimit:
    """At most ``max_calls`` calls in flight in this process (a stream counts until it ends)."""

    def __init__(self, max_calls: int, *, retry_after: float = 1.0) -> None:
        if max_calls < 1:
            raise ValueError("max_calls must be at least 1")
        self.max_calls = max_calls
        self.retry_after = retry_after
        self.in_flight = 0

    def _release(self) -> None:
        self.in_flight -= 1

    async def __call__(self, ctx: Context, request: Any, call_next: CallNext) -> Any:
        if self.in_flight >= self.max_calls:
            raise exhausted("too many concurrent calls", self.retry_after)
        self.in_flight += 1
        streams = ctx.method.kind in (StreamKind.SERVER, StreamKind.BIDI)
        try:
            result = await call_next(request, ctx)
        except BaseException:
            self._release()
            raise
        if streams:
            return _release_after(result, self._release)
        self._release()
        return result


class RateLimit:
    """A token bucket per caller: ``rate`` calls a second, bursts of up to ``burst``.

    The caller is ``ctx.identity.subject`` (put this after Authentication),
    or the peer's address for an anonymous call. At most ``max_callers``
    buckets are kept, the least recently used dropped first. The buckets are
    this process's: N workers or replicas grant up to N times the rate, so a
    limit that must hold across processes belongs at the proxy in front.
    """

    def __init__(self, rate: float, burst: int, *, max_callers: int = 10_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = float(burst)
        self.max_callers = max_callers
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def key(self, ctx: Context) -> str:
        if ctx.identity is not None:
            return f"id:{ctx.identity.subject}"
        host = (ctx.peer or "").rsplit(":", 1)[0]
        return f"peer:{host}"

    async def __call__(self, ctx: Context, request: Any, call_next: CallNext) -> Any:
        key = self.key(ctx)
        now = time.monotonic()
        tokens, last = self.buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self.buckets[key] = (tokens, now)
            raise exhausted("rate limit exceeded", (1 - tokens) / self.rate)
        self.buckets[key] = (tokens - 1, now)
        while len(self.buckets) > self.max_callers:
            self.buckets.popitem(last=False)
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
