"""Testing a Twofold app: test clients that run its lifespan, and pytest fixtures.

``TestClient`` (sync) and ``AsyncTestClient`` start an App (its lifespan
startup), call it in process over any of its wires, and stop it (its
lifespan shutdown). The pytest plugin (:mod:`twofold.testing.plugin`,
loaded by pytest through the ``pytest11`` entry point) offers them as the
``twofold_client`` and ``twofold_async_client`` fixtures. See docs/testing.md.
"""

from twofold.testing.client import AsyncTestClient, TestClient
from twofold.testing.lifespan import Lifespan, LifespanError

__all__ = ["AsyncTestClient", "Lifespan", "LifespanError", "TestClient"]
