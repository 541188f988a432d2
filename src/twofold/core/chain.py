"""Interceptors: code that wraps every call identically, whatever the protocol.

An interceptor is an async callable ``(ctx, request, call_next) -> response``,
the "around" shape of connect-go's and Starlette's middleware: it can act
before the call, after it, or instead of it, and sees the typed request.

An interceptor may also have a header-only step, ``admit(ctx)``
(:class:`Gate`), which every protocol runs right after routing, before it
reads or decodes the request body: credentials are checked there
(:class:`twofold.interceptors.auth.Authentication`), so an anonymous caller cannot make
the server read, decode or validate a body it will refuse anyway.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from twofold.core.context import Context
from twofold.core.errors import Error, as_error
from twofold.core.method import Handler

CallNext = Callable[[Any, Context], Awaitable[Any]]
# Told of a request a protocol refused before the chain could run.
Refused = Callable[[Context, Error], Awaitable[None]]
# Runs the header-only steps of a call: the refusal (already told), or None.
Admit = Callable[[Context], Awaitable[Error | None]]


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
    Refusals by interceptors in the chain (limits, ``check=``) pass through
    it as errors, so the interceptors before them see those as usual; a
    refusal by a header-only step (credentials, :class:`Gate`) is told to
    the observers before that interceptor, the same ones.
    """

    async def refused(self, ctx: Context, error: Error) -> None: ...


class Gate(Protocol):
    """An interceptor with a header-only step, run before the request body is read.

    ``admit`` sees ``ctx`` (method, headers, peer) but no request, and may
    refuse the call by raising :class:`~twofold.core.errors.Error`. The gates run
    in the App's order, before the chain; a refusal is told to the
    observers placed *before* the gate that refused, the ones that would
    have seen it pass through the chain. A gate's ``__call__`` still runs
    in the chain, where it sees the typed request; ``ctx.admitted`` tells it
    whether ``admit`` already ran for this call.
    """

    async def admit(self, ctx: Context) -> None: ...


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


def admission(interceptors: Sequence[object]) -> Admit | None:
    """One callable running the gates among ``interceptors`` in order; None if none.

    It answers the refusal, already told to the observers before the gate
    that refused, or None once every gate admitted the call (and then sets
    ``ctx.admitted``). Anything but an :class:`Error` from a gate is a bug:
    logged, and INTERNAL, as it would be from the chain.
    """
    steps: list[tuple[Callable[[Context], Awaitable[None]], Refused]] = []
    for i, interceptor in enumerate(interceptors):
        step = getattr(interceptor, "admit", None)
        if callable(step):
            steps.append((step, refusals(interceptors[:i])))
    if not steps:
        return None

    async def admit(ctx: Context) -> Error | None:
        for step, refused in steps:
            try:
                await step(ctx)
            except Exception as exc:
                error = as_error(exc)
                await refused(ctx, error)
                # A refusal is an answer for the wire to send, not an exception
                # to trace: returned with what raising gave it (its traceback,
                # its context's), it would keep these frames, and through them
                # the wire's, which holds the refusal: a reference cycle per
                # refused call, which a flood without credentials multiplies.
                error.__traceback__ = error.__context__ = error.__cause__ = None
                return error
        ctx.admitted = True
        return None

    return admit


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
