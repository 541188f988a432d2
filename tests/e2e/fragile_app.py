"""tests/e2e/grpc_app.py's service, with a lifespan that fails while the file named by
``$TWOFOLD_TEST_BREAK`` exists: a worker started then cannot start."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from tests.e2e.grpc_app import service
from twofold import App


@contextlib.asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[None]:
    marker = os.environ.get("TWOFOLD_TEST_BREAK")
    if marker and Path(marker).exists():  # noqa: ASYNC240 (one stat, at start-up)
        raise RuntimeError("the test broke this worker's start-up")
    yield


app = App(service, lifespan=lifespan)
