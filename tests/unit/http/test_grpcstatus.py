"""gRPC metadata's binary values: base64 on the wire, bytes (as latin-1 text) to a handler."""

from __future__ import annotations

import pytest

from twofold.core.code import Code
from twofold.core.errors import Error
from twofold.http.grpcstatus import decode_metadata, encode_metadata


def test_headers_without_binary_values_are_the_same_list() -> None:
    raw = [(b"content-type", b"application/grpc"), (b"x-id", b"7")]
    assert decode_metadata(raw) is raw


@pytest.mark.parametrize("value", [b"q6ur", b"AAE", b"AAE=", b" AAE="])
def test_binary_values_padded_or_not_are_decoded(value: bytes) -> None:
    decoded = decode_metadata([(b"x-id", b"7"), (b"x-trace-bin", value)])
    assert decoded[0] == (b"x-id", b"7")
    assert decoded[1][1] in (b"\xab\xab\xab", b"\x00\x01")


def test_values_a_proxy_joined_with_commas_are_each_decoded() -> None:
    assert decode_metadata([(b"x-bin", b"AA,AQ")]) == [(b"x-bin", b"\x00"), (b"x-bin", b"\x01")]


@pytest.mark.parametrize("value", [b"!!!", b"q6=u", b"a", b"q6u\xff"])
def test_a_value_that_is_not_base64_is_invalid_argument(value: bytes) -> None:
    with pytest.raises(Error) as info:
        decode_metadata([(b"x-trace-bin", value)])
    assert info.value.code is Code.INVALID_ARGUMENT
    assert "x-trace-bin" in info.value.message


def test_handler_metadata_goes_out_with_binary_values_in_unpadded_base64() -> None:
    sent = encode_metadata({"X-Echo": "plain", "x-trace-bin": "\x00\x01"})
    assert sent == [(b"x-echo", b"plain"), (b"x-trace-bin", b"AAE")]
    with pytest.raises(ValueError):
        encode_metadata({"x-evil": "a\r\nb"})
