"""A real catalog server for the whole session, and the ``protocol`` fixture."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from examples.catalog import service
from tests.e2e.callers import CALLERS, Caller
from tests.e2e.client_callers import CLIENT_CALLERS
from tests.e2e.proto_callers import PROTO_CALLERS
from tests.e2e.server import Server, start


@pytest.fixture(scope="session")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("catalog")
    env = {"CATALOG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'catalog.db'}"}
    server = start("examples.catalog:app", tmp, env)
    yield server
    server.stop()


@pytest.fixture
def http(catalog: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=catalog.url, timeout=10.0) as client:
        yield client


@pytest.fixture(params=sorted(CALLERS) + sorted(CLIENT_CALLERS) + sorted(PROTO_CALLERS))
def protocol(request: pytest.FixtureRequest, http: httpx.Client) -> Caller:
    """The same behaviour test, once per protocol: rest, jsonrpc, connect; then
    again through twofold.Client over each (client-rest, client-jsonrpc...)."""
    return {**CALLERS, **CLIENT_CALLERS, **PROTO_CALLERS}[request.param](http, service.methods)
