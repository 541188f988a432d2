"""The one way protocols call a handler: deadline, then translate errors."""

from __future__ import annotations

import asyncio
from typing import Any

from twofold.code import Code
from twofold.context import Context
from twofold.errors import Error, as_error
from twofold.method import Method


async def invoke(method: Method, ctx: Context, request: Any) -> Any:
    """Run the method's interceptor chain and handler; raise only :class:`Error`."""
    try:
        if ctx.deadline is None:
            return await method.call(request, ctx)
        async with asyncio.timeout_at(ctx.deadline):
            return await method.call(request, ctx)
    except TimeoutError as exc:
        if ctx.deadline is not None and asyncio.get_running_loop().time() >= ctx.deadline:
            raise Error(Code.DEADLINE_EXCEEDED, "deadline exceeded") from None
        raise as_error(exc) from None
    except Error:
        raise
    except Exception as exc:
        raise as_error(exc) from None
