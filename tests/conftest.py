"""Fixtures every test folder shares: ``asgi``, and ``database`` for every test
that starts a catalog: SQLite, and PostgreSQL too for tests marked
``postgresql`` (tests/e2e/databases.py). Calls over every wire go through
the parity kit, twofold.testing.parity: ``run(app, scenario)`` and
``PROTOCOLS`` are its shorthands here."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator

import pytest

from tests.asgi import ASGI
from tests.e2e import postgres
from tests.e2e.databases import KINDS, Database
from twofold import App
from twofold.core.asgi import ASGIApp
from twofold.testing.parity import WIRES, AsyncWires, serve

# The wires a behaviour test runs on: every one but Connect GET, which only
# carries side-effect-free methods (the kit's own cases run on it too).
PROTOCOLS = [w for w in WIRES if w != "connect-get"]


def run(app: App, scenario: Callable[[AsyncWires], Awaitable[None]]) -> None:
    """Run ``scenario`` with every wire of ``app`` at hand, in one event loop."""

    async def main() -> None:
        async with serve(app) as w:
            await scenario(w)

    asyncio.run(main())


# The catalog's write rate limit (examples/catalog/ratelimits.py) guards a
# production catalog; the tests that write in bulk measure other things
# (durability, concurrency, parity) and must not be throttled. A test of the
# limit sets its own, in the environment of the catalog it starts.
os.environ.setdefault("CATALOG_WRITE_RATE", "1000000")
os.environ.setdefault("CATALOG_WRITE_BURST", "1000000")


@pytest.fixture
def asgi() -> Callable[[ASGIApp], ASGI]:
    """``asgi(app).request("GET", "/x")``: an app called in process (tests/asgi.py)."""
    return ASGI


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that starts a catalog runs on SQLite; one marked ``postgresql``
    runs on PostgreSQL as well. Always parametrized, also with one kind, so
    that a session-scoped catalog is started once per kind, not per module."""
    if "database" in metafunc.fixturenames:
        both = metafunc.definition.get_closest_marker("postgresql") is not None
        kinds = KINDS if both else KINDS[:1]
        metafunc.parametrize("database", kinds, indirect=True, scope="session")


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[postgres.Cluster]:
    """One PostgreSQL cluster for the session, started on first use; stopped even on failure."""
    directory = postgres.bindir()
    if directory is None:
        if os.geteuid() == 0:
            pytest.fail("PostgreSQL is not installed: run scripts/ensure-postgres (make test does)")
        pytest.skip("PostgreSQL is not installed and this is not root: run scripts/ensure-postgres")
    cluster = postgres.start(directory)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def database(request: pytest.FixtureRequest) -> Database:
    """Where a catalog under test keeps its data (``new_url``, ``env``)."""
    if request.param == "postgresql":
        return Database("postgresql", request.getfixturevalue("postgres_cluster"))
    return Database(request.param)
