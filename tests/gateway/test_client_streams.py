"""Client and bidi streams through the gateway on Connect and gRPC-Web (httpx, HTTP/1.1:
half-duplex, the request stream sent whole before the answers are read)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx

from tests.gateway.upstream import SERVICE, Upstream, message
from twofold.http import envelope

CreateBookRequest = message("CreateBookRequest")
ListBooksResponse = message("ListBooksResponse")
EchoRequest = message("EchoRequest")


def frames(body: bytes) -> list[tuple[int, bytes]]:
    out = []
    while body:
        size = int.from_bytes(body[1:5], "big")
        out.append((body[0], body[5 : 5 + size]))
        body = body[5 + size :]
    return out


def test_connect_client_stream_json(http: httpx.Client, upstream: Upstream) -> None:
    body = b"".join(
        envelope.frame(
            json.dumps(
                {"parent": "shelves/c", "bookId": f"c{i}", "book": {"title": f"C{i}"}}
            ).encode()
        )
        for i in range(3)
    )
    answer = http.post(
        f"/{SERVICE}/ImportBooks",
        content=body,
        headers={"content-type": "application/connect+json", "authorization": "Bearer z"},
    )
    assert answer.status_code == 200
    (flags, first), (end_flags, end) = frames(answer.content)
    assert flags == 0 and end_flags == envelope.END_STREAM
    assert [b["name"] for b in json.loads(first)["books"]] == [
        f"shelves/c/books/c{i}" for i in range(3)
    ]
    assert json.loads(end) == {}
    assert upstream.library.metadata["ImportBooks"]["authorization"] == "Bearer z"


def test_connect_bidi_proto(http: httpx.Client) -> None:
    body = b"".join(envelope.frame(EchoRequest(text=t).SerializeToString()) for t in "abc")
    answer = http.post(
        f"/{SERVICE}/Chat", content=body, headers={"content-type": "application/connect+proto"}
    )
    got = frames(answer.content)
    assert [EchoRequest.FromString(d).text for _, d in got[:-1]] == ["a", "b", "c"]
    assert got[-1] == (envelope.END_STREAM, b"{}")


def test_connect_bidi_error_mid_stream(http: httpx.Client) -> None:
    body = b"".join(envelope.frame(json.dumps({"text": t}).encode()) for t in ("ok", "fail"))
    answer = http.post(
        f"/{SERVICE}/Chat", content=body, headers={"content-type": "application/connect+json"}
    )
    got = frames(answer.content)
    assert json.loads(got[0][1])["text"] == "ok"
    assert json.loads(got[-1][1])["error"]["code"] == "not_found"


def test_connect_bad_message_mid_stream(http: httpx.Client, upstream: Upstream) -> None:
    """A message that does not parse, after one the upstream already has, is the
    client's INVALID_ARGUMENT in the end-of-stream message."""
    good = json.dumps({"parent": "shelves/x", "bookId": "x1", "book": {"title": "X"}}).encode()

    def body() -> Iterator[bytes]:
        yield envelope.frame(good)
        # The upstream has the first message (the call is under way) before the bad one.
        deadline = time.monotonic() + 10
        while "shelves/x/books/x1" not in upstream.library.books:
            assert time.monotonic() < deadline, "the first message never went upstream"
            time.sleep(0.01)
        yield envelope.frame(b'{"parent": 5')

    answer = http.post(
        f"/{SERVICE}/ImportBooks",
        content=body(),
        headers={"content-type": "application/connect+json"},
    )
    ((flags, end),) = frames(answer.content)
    assert flags == envelope.END_STREAM
    assert json.loads(end)["error"]["code"] == "invalid_argument"


def test_grpc_web_client_stream(http: httpx.Client) -> None:
    body = b"".join(
        envelope.frame(
            CreateBookRequest(
                parent="shelves/w", book_id=f"w{i}", book={"title": "W"}
            ).SerializeToString()
        )
        for i in range(2)
    )
    answer = http.post(
        f"/{SERVICE}/ImportBooks",
        content=body,
        headers={"content-type": "application/grpc-web+proto"},
    )
    (flags, data), (tflags, trailers) = frames(answer.content)
    assert flags == 0
    assert [b.name for b in ListBooksResponse.FromString(data).books] == [
        "shelves/w/books/w0",
        "shelves/w/books/w1",
    ]
    assert tflags == envelope.TRAILERS and b"grpc-status: 0" in trailers
