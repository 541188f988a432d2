"""The one gzip inflater: bounded by what comes out, one member and nothing after."""

from __future__ import annotations

import gzip
import zlib

import pytest

from twofold import Code, Error
from twofold.client.errors import Failure
from twofold.client.frames import Frames
from twofold.http.body import BodyTooLarge
from twofold.http.compression import UnsupportedEncoding, decode_body, gunzip
from twofold.http.envelope import COMPRESSED, frame

BODY = b'{"name": "x"}'


def test_gzip_within_the_limit_is_inflated() -> None:
    assert gunzip(gzip.compress(BODY), len(BODY)) == BODY
    assert gunzip(gzip.compress(b""), 0) == b""


def test_the_limit_is_the_inflated_size() -> None:
    # 64 MiB of zeros in about 64 KiB: refused having inflated limit + 1 bytes.
    bomb = gzip.compress(b"\0" * (64 << 20), compresslevel=9)
    with pytest.raises(BodyTooLarge) as info:
        gunzip(bomb, 1 << 20)
    assert info.value.code is Code.RESOURCE_EXHAUSTED and "decompressed" in info.value.message
    with pytest.raises(BodyTooLarge):
        gunzip(gzip.compress(BODY), len(BODY) - 1)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(gzip.compress(BODY) + b"x", id="a byte after the member"),
        pytest.param(gzip.compress(BODY) + gzip.compress(BODY), id="a second member"),
        pytest.param(gzip.compress(BODY) + b"\0" * 8, id="zero padding"),
        pytest.param(gzip.compress(BODY)[:-1], id="truncated"),
        pytest.param(zlib.compress(BODY), id="zlib, not gzip"),
        pytest.param(BODY, id="not compressed"),
        pytest.param(b"", id="empty"),
    ],
)
def test_anything_but_one_gzip_member_is_malformed(data: bytes) -> None:
    with pytest.raises(Error) as info:
        gunzip(data, 1 << 20)
    assert info.value.code is Code.INVALID_ARGUMENT


@pytest.mark.parametrize("coding", [b"gzip", b"GZip", b" gzip ", b"identity, gzip", b"gzip,"])
def test_content_encoding_gzip_is_undone(coding: bytes) -> None:
    assert decode_body(coding, gzip.compress(BODY), 100) == BODY


def test_codings_apply_in_order_and_identity_is_none() -> None:
    assert decode_body(None, BODY, 100) == BODY
    assert decode_body(b"identity", BODY, 100) == BODY
    assert decode_body(b"gzip, gzip", gzip.compress(gzip.compress(BODY)), 100) == BODY


@pytest.mark.parametrize("coding", [b"br", b"deflate", b"x-gzip", b"gzip, br", b"zstd"])
def test_other_codings_are_refused_naming_gzip(coding: bytes) -> None:
    with pytest.raises(UnsupportedEncoding) as info:
        decode_body(coding, BODY, 100)
    assert info.value.http_status == 415
    assert info.value.headers == {"Accept-Encoding": "gzip"}


def test_the_client_refuses_a_response_message_with_bytes_after_its_gzip() -> None:
    frames = Frames(1000, gzip=True)
    assert frames.feed(frame(gzip.compress(b"ok"), COMPRESSED))[0].data == b"ok"
    with pytest.raises(Failure) as info:
        frames.feed(frame(gzip.compress(b"ok") + b"junk", COMPRESSED))
    assert info.value.error.code is Code.INTERNAL
