"""The client's stream readers, fed in every possible chunking, and the small wire helpers."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from twofold import BadRequest, Code, Error, ErrorInfo, FieldViolation
from twofold.client.errors import Failure, status_details
from twofold.client.frames import Frames
from twofold.client.protocols import grpc_timeout
from twofold.client.streams import ConnectReader, EventReader, GrpcWebReader
from twofold.client.transports import HttpResponse
from twofold.core.details import rpc_status
from twofold.http.envelope import END_STREAM, TRAILERS, frame


def head(content_type: str) -> HttpResponse:
    return HttpResponse(200, httpx.Headers({"content-type": content_type}), b"")


def chunkings(body: bytes) -> list[list[bytes]]:
    """The body whole, byte by byte, and split at every position."""
    out = [[body], [body[i : i + 1] for i in range(len(body))]]
    out += [[body[:i], body[i:]] for i in range(1, len(body))]
    return out


def read(reader: Any, chunks: list[bytes]) -> list[Any]:
    outputs = []
    for chunk in chunks:
        outputs += reader.feed(chunk)
    reader.end()
    return outputs


def test_connect_stream_in_any_chunking() -> None:
    body = frame(b"a") + frame(b"bc") + frame(b"{}", END_STREAM)
    for chunks in chunkings(body):
        reader = ConnectReader(bytes, 100, head("application/connect+proto"))
        assert read(reader, chunks) == [b"a", b"bc"]


def test_grpc_web_in_any_chunking() -> None:
    body = frame(b"a") + frame(b"grpc-status: 0\r\n", TRAILERS)
    for chunks in chunkings(body):
        assert read(GrpcWebReader(bytes, 100, head("application/grpc-web+proto")), chunks) == [b"a"]


def test_events_in_any_chunking() -> None:
    body = b': keepalive\r\n\r\ndata: {"n": 1}\n\nevent: message\ndata: 2\ndata: 3\n\n'
    problem = Failure(Error(Code.UNKNOWN, "unused"))
    for chunks in chunkings(body):
        reader = EventReader(bytes, lambda data: problem, 100)
        assert read(reader, chunks) == [b'{"n": 1}', b"2\n3"]


def test_a_length_prefix_over_the_limit_is_refused_before_its_payload() -> None:
    with pytest.raises(Failure) as info:
        Frames(10).feed(b"\x00\x00\x00\x00\x0b")
    assert info.value.error.code is Code.RESOURCE_EXHAUSTED
    assert not info.value.retryable


@pytest.mark.parametrize(
    ("seconds", "header"),
    [
        (0.0001, "1m"),
        (0.25, "250m"),
        (5.0, "5000m"),
        (200_000.0, "200000S"),
        (10.0**9, "16666667M"),
        (10.0**12, "99999999H"),
    ],
)
def test_grpc_timeout_has_at_most_eight_digits(seconds: float, header: str) -> None:
    assert grpc_timeout(seconds) == header


def test_status_details_from_bytes_and_from_base64_padded_or_not() -> None:
    error = Error(
        Code.INVALID_ARGUMENT,
        "bad",
        [BadRequest((FieldViolation("a.b", "too long"),)), ErrorInfo("R", "d", {"k": "v"})],
    )
    raw = rpc_status(error.code.value, error.message, error.details)
    padded = base64.b64encode(raw).decode()
    for value in (raw, padded, padded.rstrip("=")):
        assert status_details(value) == list(error.details)
    assert status_details("%%%") == [] and status_details(b"\xff") == []
