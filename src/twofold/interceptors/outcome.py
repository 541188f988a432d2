"""How a call ended, named alike by everything that watches calls (metrics, logs, traces).

An interceptor sees a call end in one of three ways: it returns, it raises an
:class:`~twofold.Error`, or it raises something else. The last is
either a cancellation (the deadline passed, or the client went away) or a
bug, which the protocol turns into INTERNAL. :func:`code` tells them apart
the way the wire will, so that a counter, a log line and a span agree with
what the caller got.

A server stream outlives the interceptor call that produced it, so
:func:`watched` follows it to its last message and reports the end then.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from twofold.core.chain import CallNext
from twofold.core.code import Code
from twofold.core.context import Context
from twofold.core.errors import Error
from twofold.core.method import StreamKind

# The name of success where a code name is wanted (metric labels, log lines).
OK = "ok"


def code(ctx: Context, exc: BaseException) -> Code:
    """The canonical code a call that raised ``exc`` ends with on the wire."""
    if isinstance(exc, Error):
        return exc.code
    if isinstance(exc, asyncio.CancelledError | TimeoutError | GeneratorExit):
        if ctx.deadline is not None and asyncio.get_running_loop().time() >= ctx.deadline:
            return Code.DEADLINE_EXCEEDED
        return Code.CANCELED
    return Code.INTERNAL


def ended(ctx: Context, exc: BaseException) -> BaseException | None:
    """``exc``, or None when it is only how the protocol closed a stream it
    was done with (``ctx.closed``: a long poll answered): that end is success."""
    closing = isinstance(exc, asyncio.CancelledError | GeneratorExit)
    return None if closing and ctx.closed else exc


def name(ctx: Context, exc: BaseException | None) -> str:
    """``ok`` or the canonical code's wire name (``not_found``)."""
    return OK if exc is None else code(ctx, exc).wire_name


def streams(ctx: Context) -> bool:
    """Whether the call's result is a stream of messages rather than one."""
    return ctx.method.kind in (StreamKind.SERVER, StreamKind.BIDI)


async def observe(
    ctx: Context,
    request: Any,
    call_next: CallNext,
    end: Callable[[BaseException | None], None],
) -> Any:
    """Run the rest of the chain, calling ``end`` once with how the call ended:
    when it returns or raises, or, for a server stream, after its last message."""
    try:
        result = await call_next(request, ctx)
    except BaseException as exc:
        end(exc)
        raise
    if streams(ctx):
        return watched(result, ctx, end)
    end(None)
    return result


async def watched(
    stream: AsyncIterator[Any], ctx: Context, end: Callable[[BaseException | None], None]
) -> AsyncIterator[Any]:
    """``stream``, calling ``end(None)`` after its last message or ``end(exc)`` when it fails.

    A stream closed early by its reader (the client went away, the deadline
    passed while a message was being sent) ends with GeneratorExit, which
    :func:`code` names like the cancellation behind it.
    """
    try:
        async for item in stream:
            yield item
    except BaseException as exc:
        end(ended(ctx, exc))
        raise
    else:
        end(None)
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
