"""The one way protocols call a handler: deadline, then translate errors.

Unary methods go through :func:`invoke`. Streaming protocols run their whole
exchange inside :func:`deadline` and read a server stream through
:func:`stream`, so that a deadline covers the stream and not just its start,
and only :class:`Error` ever reaches a wire.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from twofold.core.code import Code
from twofold.core.context import Context
from twofold.core.errors import Error, as_error
from twofold.core.method import Method, StreamKind


async def invoke(method: Method, ctx: Context, request: Any) -> Any:
    """Run the method's interceptor chain and handler; raise only :class:`Error`.

    For a streaming method, ``request`` may be an async iterator of messages
    (client streaming) and the result an async iterator (server streaming):
    read that one with :func:`stream`.
    """
    try:
        if ctx.deadline is None:
            return await method.call(request, ctx)
        return await before(ctx.deadline, method.call(request, ctx))
    except Error:
        raise
    except Exception as exc:
        raise as_error(exc) from None


async def before(deadline: float, call: Awaitable[Any]) -> Any:
    """``await call``, cancelled at ``deadline`` (on the loop's clock) with DEADLINE_EXCEEDED.

    Whether our timeout fired decides, not the clock: a TimeoutError the
    handler raised itself is its own (a bug, INTERNAL once it reaches a
    protocol), and code on a cancelled handler's way out may put its own
    exception in place of the cancellation (a database session closed
    mid-operation, say). The caller's answer is then still the deadline;
    that exception is logged, as any unexpected one.
    """
    timeout = asyncio.timeout_at(deadline)
    try:
        async with timeout:
            return await call
    except Error:
        raise
    except Exception as exc:
        if not timeout.expired():
            raise
        if not isinstance(exc, TimeoutError):
            as_error(exc)
        raise Error(Code.DEADLINE_EXCEEDED, "deadline exceeded") from None


def deadline(ctx: Context) -> Deadline:
    """Cancel the body at ``ctx.deadline`` and say DEADLINE_EXCEEDED.

    Streaming protocols wrap the whole exchange (reading, calling, sending) in
    it: a timeout inside the handler's generator could not cancel the sends
    between its yields. The timeout is kept on the context even without a
    deadline, so that a server-side one found later (``@timeout``, applied by
    :class:`~twofold.Deadlines` inside the chain) can bring it forward.
    """
    return Deadline(ctx)


class Deadline:
    """:func:`deadline`'s context manager: a class, not a generator's, since
    every streamed and native gRPC call enters one."""

    __slots__ = ("ctx", "timeout")

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.timeout = asyncio.timeout_at(ctx.deadline)

    async def __aenter__(self) -> None:
        self.ctx._timeout = await self.timeout.__aenter__()

    async def __aexit__(self, kind: type[BaseException] | None, exc: Any, tb: Any) -> None:
        self.ctx._timeout = None
        try:
            await self.timeout.__aexit__(kind, exc, tb)
        except TimeoutError:
            raise Error(Code.DEADLINE_EXCEEDED, "deadline exceeded") from None
        if kind is not None and issubclass(kind, TimeoutError):
            # One the body raised itself, said the same way.
            raise Error(Code.DEADLINE_EXCEEDED, "deadline exceeded") from None


async def stream(method: Method, ctx: Context, request: Any) -> AsyncGenerator[Any, None]:
    """The outputs of a server- or bidi-streaming call; raises only :class:`Error`.

    Read it inside ``contextlib.aclosing``: closing it closes the handler's
    generator (and the interceptors' wrappers) at once, so that their
    ``finally`` blocks, metrics and spans end with the call, not at the next
    garbage collection.
    """
    outputs: Any = None
    try:
        outputs = await method.call(request, ctx)
        async for output in outputs:
            yield output
    except Error:
        raise
    except Exception as exc:
        raise as_error(exc) from None
    finally:
        aclose = getattr(outputs, "aclose", None)
        if aclose is not None:
            await aclose()


async def deliver(
    method: Method, ctx: Context, request: Any, write: Callable[[Any], Awaitable[None]]
) -> None:
    """Call ``method`` with a message (or a stream of them) and ``write`` each output.

    Unary and client-streaming calls write their one answer; server and bidi
    streams write every message as it comes. The enveloped protocols (Connect
    streams, gRPC-Web) serve all four kinds through this one dispatch.
    """
    if method.kind in (StreamKind.UNARY, StreamKind.CLIENT):
        await write(await invoke(method, ctx, request))
    else:
        async with contextlib.aclosing(stream(method, ctx, request)) as outputs:
            async for output in outputs:
                await write(output)
