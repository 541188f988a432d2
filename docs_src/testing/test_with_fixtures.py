"""Testing with the pytest fixtures: the app is a fixture, the client comes with it."""

import pytest

from docs_src.testing.app import app
from twofold import App
from twofold.testing import AsyncTestClient, TestClient


@pytest.fixture
def twofold_app() -> App:
    return app


def test_greet(twofold_client: TestClient) -> None:
    assert twofold_client.greet(name="Ada").text == "Hello, Ada!"


# Every wire, one test: twofold_protocol is the fixture the clients read.
@pytest.mark.parametrize(
    "twofold_protocol", ["rest", "jsonrpc", "connect", "connect-proto", "grpc-web", "grpc"]
)
def test_greet_on_every_wire(twofold_client: TestClient) -> None:
    assert twofold_client.greet(name="Grace").text == "Hello, Grace!"


@pytest.mark.anyio
async def test_greet_async(twofold_async_client: AsyncTestClient) -> None:
    greeting = await twofold_async_client.greet(name="Ada")
    assert greeting.text == "Hello, Ada!"
