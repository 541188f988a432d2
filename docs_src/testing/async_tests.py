"""Testing with the async test client, on the test's own event loop."""

import contextlib

import pytest

from docs_src.testing.app import app
from twofold.testing import AsyncTestClient


@pytest.mark.anyio
async def test_greet() -> None:
    async with AsyncTestClient(app, protocol="grpc-web") as client:
        greeting = await client.greet(name="Ada")
        assert greeting.text == "Hello, Ada!"
        greetings = client.greet_many(names=["Ada", "Grace", "Linus"])
        async with contextlib.aclosing(greetings):  # ends the call as the block ends
            first = await anext(greetings)
        assert first.text == "Hello, Ada!"
        response = await client.http.get("/greetings/Grace")
        assert response.json() == {"text": "Hello, Grace!"}
