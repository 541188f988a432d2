"""Fixtures every test folder shares."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.asgi import ASGI
from twofold.core.asgi import ASGIApp


@pytest.fixture
def asgi() -> Callable[[ASGIApp], ASGI]:
    """``asgi(app).request("GET", "/x")``: an app called in process (tests/asgi.py)."""
    return ASGI
