"""Interceptors: code that wraps every call identically, whatever the protocol.

An interceptor is an async callable ``(ctx, request, call_next) -> response``,
the "around" shape of connect-go's and Starlette's middleware: it can act
before the call, after it, or instead of it, and sees the typed request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from twofold.core.context import Context
from twofold.core.errors import Error
from twofold.core.method import Handler

CallNext = Callable[[Any, Context], Awaitable[Any]]
# Told of a request a protocol refused before the chain could run.
Refused = Callable[[Context, Error], Awaitable[None]]


class Interceptor(Protocol):
    async def __call__(self, ctx: Context, request: Any, call_next: CallNext) -> Any: ...


class Observer(Protocol):
    """An interceptor that also hears of calls refused before the chain runs.

    A protocol refuses some requests before any interceptor could see them:
    a malformed or over-large body, an unsupported media type, an unknown
    method (its ``ctx.method`` is :data:`twofold.core.method.UNKNOWN`). An
    interceptor with a ``refused`` method is told of each, in the App's
    order, before the error goes out, so that metrics, access logs and traces
    count every answer exactly once. It may add headers to ``error``.
    Refusals by interceptors (credentials, limits) pass through the chain as
    errors, so the interceptors before them see those as usual.
    """

    async def refused(self, ctx: Context, error: Error) -> None: ...


async def nobody(ctx: Context, error: Error) -> None:
    """What hears of refusals in an App with no observer."""


def refusals(interceptors: Sequence[object]) -> Refused:
    """One callable telling every observer among ``interceptors`` of a refusal, in order."""
    observers: list[Refused] = []
    for interceptor in interceptors:
        hook = getattr(interceptor, "refused", None)
        if callable(hook):
            observers.append(hook)
    if not observers:
        return nobody

    async def refused(ctx: Context, error: Error) -> None:
        for observer in observers:
            await observer(ctx, error)

    return refused


def chain(interceptors: Sequence[Interceptor], handler: Handler) -> Handler:
    """Wrap ``handler`` so that the first interceptor is the outermost.

    With no interceptors the handler itself is returned: an empty chain costs
    nothing on the hot path.
    """
    call = handler
    for interceptor in reversed(interceptors):
        call = _bind(interceptor, call)
    return call


def _bind(interceptor: Interceptor, call_next: Handler) -> Handler:
    async def call(request: Any, ctx: Context) -> Any:
        return await interceptor(ctx, request, call_next)

    return call
