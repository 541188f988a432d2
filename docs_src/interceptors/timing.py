"""An interceptor that times every call, whatever protocol carried it."""

from __future__ import annotations

import time
from typing import Any

from docs_src.quickstart.app import service
from twofold import App, CallNext, Context

TIMINGS: list[tuple[str, str, float]] = []


async def timing(ctx: Context, request: Any, call_next: CallNext) -> Any:
    start = time.perf_counter()
    try:
        return await call_next(request, ctx)
    finally:
        TIMINGS.append((ctx.protocol, ctx.method.name, time.perf_counter() - start))


app = App(service, interceptors=[timing])
