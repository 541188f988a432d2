"""The 5-byte framing: frames, an incremental reader, and every framing fault's code."""

from __future__ import annotations

import asyncio
import base64
import gzip
from typing import Any

import pytest

from twofold import Code, Error
from twofold.http.body import ClientDisconnected
from twofold.http.compression import gunzip
from twofold.http.envelope import COMPRESSED, Envelope, Reader, frame


def chunks(*parts: bytes) -> Any:
    """An ASGI receive that hands out ``parts`` one message each."""
    queue = list(parts)

    async def receive() -> dict[str, Any]:
        if not queue:
            return {"type": "http.disconnect"}
        body = queue.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(queue)}

    return receive


def read_all(reader: Reader) -> list[Envelope]:
    async def run() -> list[Envelope]:
        out = []
        while (item := await reader.next()) is not None:
            out.append(item)
        return out

    return asyncio.run(run())


def test_frame_is_flags_length_payload() -> None:
    assert frame(b"abc", 0x80) == b"\x80\x00\x00\x00\x03abc"
    assert frame(b"") == b"\x00\x00\x00\x00\x00"


def test_reader_splits_envelopes_across_any_chunking() -> None:
    body = frame(b"one") + frame(b"", 2) + frame(b"three" * 100)
    for size in (1, 2, 5, 7, 1000):
        parts = [body[i : i + size] for i in range(0, len(body), size)]
        got = read_all(Reader(chunks(*parts), 1000))
        assert got == [Envelope(0, b"one"), Envelope(2, b""), Envelope(0, b"three" * 100)]


def test_empty_body_has_no_envelopes() -> None:
    assert read_all(Reader(chunks(b""), 10)) == []


@pytest.mark.parametrize(
    "body",
    [b"\x00\x00", frame(b"abcdef")[:-2], b"\x00\x00\x00\x00\x09short"],
    ids=["header", "payload", "lying-length"],
)
def test_truncation_is_invalid_argument(body: bytes) -> None:
    with pytest.raises(Error) as info:
        read_all(Reader(chunks(body), 100))
    assert info.value.code is Code.INVALID_ARGUMENT and "truncated" in info.value.message


def test_a_length_over_the_limit_is_resource_exhausted_unread() -> None:
    with pytest.raises(Error) as info:
        # Only the header is sent: the payload is never waited for.
        read_all(Reader(chunks(b"\x00\x7f\xff\xff\xff"), 1024))
    assert info.value.code is Code.RESOURCE_EXHAUSTED


def test_compressed_flag_without_an_encoding_is_internal() -> None:
    with pytest.raises(Error) as info:
        read_all(Reader(chunks(frame(gzip.compress(b"x"), COMPRESSED)), 100))
    assert info.value.code is Code.INTERNAL


def test_compressed_messages_are_inflated_within_the_limit() -> None:
    ok = frame(gzip.compress(b"x" * 50), COMPRESSED)
    assert read_all(Reader(chunks(ok), 100, gunzip)) == [Envelope(COMPRESSED, b"x" * 50)]
    bomb = frame(gzip.compress(b"\0" * 1_000_000), COMPRESSED)
    with pytest.raises(Error) as info:
        read_all(Reader(chunks(bomb), 10_000, gunzip))
    assert info.value.code is Code.RESOURCE_EXHAUSTED
    with pytest.raises(Error) as info:
        read_all(Reader(chunks(frame(b"not gzip", COMPRESSED)), 100, gunzip))
    assert info.value.code is Code.INVALID_ARGUMENT


def test_text_mode_reads_base64_runs_in_any_chunking() -> None:
    text = base64.b64encode(frame(b"a")) + base64.b64encode(frame(b"bc"))
    for size in (1, 3, 4, 100):
        parts = [text[i : i + size] for i in range(0, len(text), size)]
        got = read_all(Reader(chunks(*parts), 100, text=True))
        assert got == [Envelope(0, b"a"), Envelope(0, b"bc")]
    with pytest.raises(Error) as info:
        read_all(Reader(chunks(b"not base64!"), 100, text=True))
    assert info.value.code is Code.INVALID_ARGUMENT


def test_a_disconnect_mid_body_is_client_disconnected() -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    with pytest.raises(ClientDisconnected):
        read_all(Reader(receive, 100))
