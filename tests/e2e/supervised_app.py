"""tests/e2e/grpc_app.py's service, for ``twofold serve --workers N``: metered, with a
stream that says which worker serves it, and a lifespan that fails while the file
named by ``$TWOFOLD_TEST_BREAK`` exists (a worker started then cannot start) and
never ends if ``$TWOFOLD_TEST_HANG`` is set."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from tests.e2e.grpc_app import Number, service
from twofold import App, Service
from twofold.interceptors.metrics import Metrics

workers = Service("workers.v1", "Workers")


@workers.procedure
async def where(interval: float) -> AsyncIterator[Number]:
    """The serving worker's pid, every ``interval`` seconds, until cancelled."""
    while True:
        yield Number(os.getpid())
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[None]:
    marker = os.environ.get("TWOFOLD_TEST_BREAK")
    if marker and Path(marker).exists():  # noqa: ASYNC240 (one stat, at start-up)
        raise RuntimeError("the test broke this worker's start-up")
    yield
    if os.environ.get("TWOFOLD_TEST_HANG"):
        await asyncio.Event().wait()  # a lifespan that never ends: SIGKILL's business


app = App([service, workers], lifespan=lifespan, interceptors=[Metrics()])
