"""Interceptors: code that wraps every call identically, whatever the protocol.

An interceptor is an async callable ``(ctx, request, call_next) -> response``,
the "around" shape of connect-go's and Starlette's middleware: it can act
before the call, after it, or instead of it, and sees the typed request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from twofold.context import Context
from twofold.method import Handler

CallNext = Callable[[Any, Context], Awaitable[Any]]


class Interceptor(Protocol):
    async def __call__(self, ctx: Context, request: Any, call_next: CallNext) -> Any: ...


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
