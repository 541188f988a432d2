"""The unit-level ``protocol`` fixture: one behaviour test, once per wire."""

from __future__ import annotations

import pytest

from tests.conftest import PROTOCOLS


@pytest.fixture(params=PROTOCOLS)
def protocol(request: pytest.FixtureRequest) -> str:
    """rest, jsonrpc, connect, connect-proto, grpc-web, grpc: call through
    ``twofold.testing.parity.serve(app)`` with it, and assert the same outcome."""
    name: str = request.param
    return name
