"""pytest fixtures for testing a Twofold app, loaded through the ``pytest11`` entry point.

The plugin only offers fixtures, each used by name: nothing is autouse and
no hook is registered, so a suite that does not ask for them is untouched.
A test module (or conftest.py) defines ``twofold_app``, returning its App;
``twofold_protocol`` (``"connect"`` unless overridden or parametrized) picks
the wire, ``twofold_overrides`` the dependencies to stand in. Twofold
itself is imported when a fixture is first used, not when pytest starts.

``twofold_async_client`` is an async fixture: an async test runner runs it
(anyio's pytest plugin, which httpx brings: ``@pytest.mark.anyio``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from twofold.core.dependencies import Provide
    from twofold.server.app import App
    from twofold.testing.client import AsyncTestClient, TestClient


@pytest.fixture
def twofold_app() -> App:
    """The App under test: define a fixture of this name in your tests."""
    pytest.fail(
        "define a `twofold_app` fixture (in the test module or conftest.py) "
        "that returns the twofold.App to test",
        pytrace=False,
    )


@pytest.fixture
def twofold_protocol() -> str:
    """The wire the test clients speak; override or parametrize it."""
    return "connect"


@pytest.fixture
def twofold_overrides() -> Sequence[Provide]:
    """Dependencies the test clients stand in for the app's (``Provide(...)``); none."""
    return ()


@pytest.fixture
def twofold_client(
    twofold_app: App, twofold_protocol: str, twofold_overrides: Sequence[Provide]
) -> Iterator[TestClient]:
    """A started :class:`~twofold.testing.TestClient` of ``twofold_app``."""
    from twofold.testing.client import TestClient

    with TestClient(twofold_app, protocol=twofold_protocol, overrides=twofold_overrides) as client:
        yield client


@pytest.fixture
async def twofold_async_client(
    twofold_app: App, twofold_protocol: str, twofold_overrides: Sequence[Provide]
) -> AsyncIterator[AsyncTestClient]:
    """A started :class:`~twofold.testing.AsyncTestClient` of ``twofold_app``."""
    from twofold.testing.client import AsyncTestClient

    async with AsyncTestClient(
        twofold_app, protocol=twofold_protocol, overrides=twofold_overrides
    ) as client:
        yield client
