"""pytest fixtures for testing a Twofold app, loaded through the ``pytest11`` entry point.

Fixtures are used by name, nothing is autouse, and the one hook collects
only :class:`~twofold.testing.parity.Cases`: a suite that asks for neither
is untouched. A test module (or conftest.py) defines ``twofold_app``,
returning its App; ``twofold_protocol`` (``"connect"`` unless overridden or
parametrized) picks the wire, ``twofold_overrides`` the dependencies to stand
in; ``twofold_parity`` serves every wire for the parity kit. Twofold is
imported when first used, not when pytest starts.

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
    from twofold.testing.parity import Wires


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


@pytest.fixture
def twofold_parity(twofold_app: App) -> Iterator[Wires]:
    """Every wire of ``twofold_app``, started for one parity test
    (:meth:`twofold.testing.parity.Wires.serve`); override it to call a
    server that is already running (:meth:`~twofold.testing.parity.Wires.connect`)."""
    from twofold.testing.parity import Wires

    with Wires.serve(twofold_app) as wires:
        yield wires


class _Cases(pytest.Class):
    """The tests of a :class:`~twofold.testing.parity.Cases`: one method per case."""

    def funcnamefilter(self, name: str) -> bool:
        # A case's name need not look like a test's: every case is collected.
        cases: frozenset[str] = self.obj.__cases__
        return name in cases


def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> pytest.Class | None:
    """Collect ``test_x = Cases(...)`` as ``test_x::case[wire]`` tests."""
    kind = type(obj)
    if (kind.__module__, kind.__name__) != ("twofold.testing.parity.cases", "Cases"):
        return None  # not ours: told by name, so twofold is not imported for it
    if not collector.funcnamefilter(name):
        return None
    from twofold.testing.parity import Cases

    assert isinstance(obj, Cases)
    tests = obj.as_class(name)
    tests.__module__ = getattr(collector.obj, "__name__", tests.__module__)
    node: _Cases = _Cases.from_parent(collector, name=name)
    node.obj = tests  # not the module's attribute (the Cases), as pytest would take
    return node
