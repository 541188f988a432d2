"""Client and bidi streams through the gateway on Connect and gRPC-Web (httpx, HTTP/1.1:
half-duplex, the request stream sent whole before the answers are read)."""

from __future__ import annotations

import gzip
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


def test_connect_stream_gzip_both_ways(http: httpx.Client) -> None:
    text = "gzip " * 400  # over the 1 KiB below which nothing is compressed
    body = b"".join(
        envelope.frame(gzip.compress(json.dumps({"text": t}).encode()), envelope.COMPRESSED)
        for t in (text, "small")
    )
    answer = http.post(
        f"/{SERVICE}/Chat",
        content=body,
        headers={
            "content-type": "application/connect+json",
            "connect-content-encoding": "gzip",
            "connect-accept-encoding": "gzip",
        },
    )
    assert answer.headers["connect-content-encoding"] == "gzip"
    (big_flags, big), (small_flags, small), (end_flags, end) = frames(answer.content)
    assert big_flags == envelope.COMPRESSED
    assert json.loads(gzip.decompress(big))["text"] == text
    assert small_flags == 0 and json.loads(small)["text"] == "small"
    assert end_flags == envelope.END_STREAM and json.loads(end) == {}


def test_grpc_web_gzip(http: httpx.Client) -> None:
    text = "web " * 400
    message = EchoRequest(text=text).SerializeToString()
    answer = http.post(
        f"/{SERVICE}/Chat",
        content=envelope.frame(gzip.compress(message), envelope.COMPRESSED),
        headers={
            "content-type": "application/grpc-web+proto",
            "grpc-encoding": "gzip",
            "grpc-accept-encoding": "gzip",
        },
    )
    assert answer.headers["grpc-encoding"] == "gzip"
    (flags, data), (_, trailers) = frames(answer.content)
    assert flags == envelope.COMPRESSED
    assert EchoRequest.FromString(gzip.decompress(data)).text == text
    assert b"grpc-status: 0" in trailers


def test_an_unknown_encoding_is_unimplemented(http: httpx.Client) -> None:
    answer = http.post(
        f"/{SERVICE}/Chat",
        content=envelope.frame(b"{}", envelope.COMPRESSED),
        headers={"content-type": "application/connect+json", "connect-content-encoding": "br"},
    )
    ((flags, end),) = frames(answer.content)
    assert flags == envelope.END_STREAM
    assert json.loads(end)["error"]["code"] == "unimplemented"
