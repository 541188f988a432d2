"""Testing with the sync test client: plain ``def test_...`` functions."""

from docs_src.testing.app import app, phrasebook
from twofold import Code, Error
from twofold.testing import TestClient


def test_greet() -> None:
    with TestClient(app, protocol="rest") as client:  # the lifespan starts here
        assert client.greet(name="Ada").text == "Hello, Ada!"
        # The same app over raw HTTP, in process too.
        response = client.http.get("/greetings/Ada")
        assert response.status_code == 200
        assert response.json() == {"text": "Hello, Ada!"}
    assert phrasebook.salutation is None  # ...and stops here


def test_a_stream_is_read_as_it_comes() -> None:
    with TestClient(app, protocol="connect") as client:
        greetings = client.greet_many(names=["Ada", "Grace"])
        assert next(greetings).text == "Hello, Ada!"
        greetings.close()  # ends the call; the handler is cancelled


def test_errors_are_the_servers() -> None:
    with TestClient(app, protocol="jsonrpc") as client:
        try:
            client.greet(name="")
        except Error as exc:
            assert exc.code is Code.INVALID_ARGUMENT
        else:
            raise AssertionError("expected INVALID_ARGUMENT")
