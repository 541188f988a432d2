"""Page tokens: they round-trip, and anything not issued for these filters is refused."""

from __future__ import annotations

import base64
import re

import pytest

from twofold import Code, Error, PageTokens
from twofold.http.pagination import MAX_TOKEN_LENGTH, TAG_SIZE, Filters

SECRET = b"0123456789abcdef-test-secret"
BOOKS: Filters = {"list": "products", "category": "Books"}
tokens = PageTokens(SECRET)


def refused(token: str, filters: Filters = BOOKS, with_tokens: PageTokens = tokens) -> str:
    """Assert ``token`` is refused as an invalid page_token; return the description."""
    with pytest.raises(Error) as info:
        with_tokens.decode(token, filters)
    error = info.value
    assert error.code is Code.INVALID_ARGUMENT
    assert [v.field for v in error.violations] == ["page_token"]
    return error.violations[0].description


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


@pytest.mark.parametrize(
    "position",
    [{"id": 42}, {"id": 0}, {"id": 2**63 - 1}, {"name": "Zoë", "id": -7}, {}, {"k": ""}],
)
def test_round_trip(position: dict[str, str | int]) -> None:
    token = tokens.encode(position, BOOKS)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)  # URL-safe as is: no padding, no escapes
    assert tokens.decode(token, BOOKS) == position


def test_empty_token_is_the_first_page() -> None:
    assert tokens.decode("", BOOKS) == {}


def test_filters_are_compared_by_value_not_by_key_order() -> None:
    token = tokens.encode({"id": 3}, {"a": 1, "b": ["x", 2], "c": None})
    assert tokens.decode(token, {"c": None, "b": ("x", 2), "a": 1}) == {"id": 3}


def test_every_edited_character_is_refused() -> None:
    token = tokens.encode({"id": 12345, "name": "Books"}, BOOKS)
    for i, original in enumerate(token):
        for replacement in "A_-z9Q":
            if replacement != original:
                refused(token[:i] + replacement + token[i + 1 :])


def test_every_flipped_bit_is_refused() -> None:
    raw = unb64(tokens.encode({"id": 99}, BOOKS))
    assert len(raw) > TAG_SIZE
    for i in range(len(raw)):  # the JSON payload and the tag alike
        for bit in range(8):
            edited = bytearray(raw)
            edited[i] ^= 1 << bit
            refused(b64(bytes(edited)))


def test_truncated_extended_or_padded_tokens_are_refused() -> None:
    token = tokens.encode({"id": 7}, BOOKS)
    for edited in (token[:-1], token[1:], token + "A", token + "AAAA", token + "=", " " + token):
        refused(edited)


def test_an_edited_position_with_the_old_tag_is_refused() -> None:
    raw = unb64(tokens.encode({"id": 1}, BOOKS))
    payload, tag = raw[:-TAG_SIZE], raw[-TAG_SIZE:]
    assert payload == b'{"id":1}'
    refused(b64(b'{"id":9}' + tag))


def test_a_token_for_other_filters_is_refused() -> None:
    token = tokens.encode({"id": 5}, BOOKS)
    assert "other filters" in refused(token, {"list": "products", "category": "Clothes"})
    refused(token, {"list": "products", "category": None})
    refused(token, {"list": "users", "category": "Books"})
    refused(token, {"list": "products"})
    refused(token, {"list": "products", "category": "Books", "extra": 1})


def test_a_token_signed_with_another_secret_is_refused() -> None:
    other = PageTokens(b"another secret of enough length")
    token = other.encode({"id": 5}, BOOKS)
    assert other.decode(token, BOOKS) == {"id": 5}
    refused(token)


@pytest.mark.parametrize(
    "garbage",
    [
        "garbage",
        "not-a-token",
        "!!!!",
        "A",
        "AAAA",
        "é",
        "eyJpZCI6MX0",  # base64 of {"id":1}, with no tag
        b64(b"x" * (TAG_SIZE + 4)),
        "YQ==",
        "a b",
        "\x00",
    ],
)
def test_garbage_is_refused(garbage: str) -> None:
    refused(garbage)


def test_oversized_tokens_are_refused_before_decoding() -> None:
    assert refused("A" * (MAX_TOKEN_LENGTH + 1)) == "page token is too long"
    refused("A" * 100_000)


def test_a_position_too_large_to_return_fails_when_encoded() -> None:
    with pytest.raises(ValueError, match="too large"):
        tokens.encode({"key": "x" * MAX_TOKEN_LENGTH}, BOOKS)


def test_a_signed_payload_that_is_not_a_position_is_refused() -> None:
    # Only a change of token format can produce this: signed, but unreadable.
    for payload in (b"[1, 2]", b'{"id": 1.5}', b"not json"):
        forged = b64(payload + tokens._tag(payload, BOOKS))
        assert refused(forged) == "page token is no longer valid"


def test_a_short_secret_is_rejected() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        PageTokens(b"short")
