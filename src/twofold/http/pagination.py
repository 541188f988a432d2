"""Opaque, tamper-evident page tokens for list methods (AIP-158).

A token carries the position where the next page starts (for keyset
pagination, the sort key of the last item served) and is bound to the filters
the list was called with, so a client can neither forge a position, edit one,
nor replay a token under different filters: a list over ``category=Books``
must not continue from a token issued for ``category=Clothes``. Page size is
deliberately left out of the binding, as AIP-158 lets it change between pages.

The token is ``base64url(json(position) + tag)`` without padding, where
``tag`` is HMAC-SHA256 truncated to 128 bits over a domain label, a digest of
the filters and the JSON. The position is readable by anyone holding the
token (it is not encrypted): put keys in it, never secrets.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence

import msgspec

from twofold.core.errors import Error

Position = dict[str, str | int]
"""Where the next page starts: e.g. ``{"id": 42}`` after the item with id 42."""

FilterValue = str | int | bool | None | Sequence[str | int]
Filters = Mapping[str, FilterValue]
"""The request fields that select which items a list returns (not page size)."""

MAX_TOKEN_LENGTH = 1024
TAG_SIZE = 16  # 128 bits of HMAC-SHA256: forging one takes ~2**128 guesses.

# Changing the token format means changing this label: old tokens then fail
# verification cleanly instead of being misread.
_DOMAIN = b"twofold.page_token.v1\x00"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_encode_json = msgspec.json.Encoder(order="sorted").encode
_decode_position = msgspec.json.Decoder(Position).decode


class PageTokens:
    """Encode and verify page tokens with one secret.

    Every token a server hands out must be accepted by every process serving the
    same API, so the secret has to be shared and stable (an environment variable),
    never generated per process.

    >>> tokens = PageTokens(b"a secret of at least sixteen bytes")
    >>> token = tokens.encode({"id": 42}, {"category": "Books"})
    >>> tokens.decode(token, {"category": "Books"})
    {'id': 42}

    ``decode`` raises INVALID_ARGUMENT (a ``page_token`` field violation) for
    anything this object did not issue for these filters; an empty token is
    the first page and decodes to ``{}``.
    """

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("a page token secret needs at least 16 bytes")
        self._secret = secret

    def encode(self, position: Position, filters: Filters) -> str:
        """The token for the page that starts at ``position`` under ``filters``."""
        payload = _encode_json(position)
        raw = payload + self._tag(payload, filters)
        token = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
        if len(token) > MAX_TOKEN_LENGTH:
            # A programming error, not a client's: the position is too big to
            # come back, so fail where it is made rather than on the next call.
            raise ValueError(f"page token position is too large ({len(token)} characters)")
        return token

    def decode(self, token: str, filters: Filters) -> Position:
        """The position a token carries, after checking it was issued for ``filters``."""
        if not token:
            return {}
        if len(token) > MAX_TOKEN_LENGTH:
            raise Error.invalid("page_token", "page token is too long")
        raw = _b64decode(token)
        if raw is None or len(raw) <= TAG_SIZE:
            raise Error.invalid("page_token", "not a page token")
        payload, tag = raw[:-TAG_SIZE], raw[-TAG_SIZE:]
        if not hmac.compare_digest(tag, self._tag(payload, filters)):
            raise Error.invalid("page_token", "page token was altered or issued for other filters")
        try:
            return _decode_position(payload)
        except msgspec.DecodeError:
            # Signed by us but unreadable: only a change of format does this.
            raise Error.invalid("page_token", "page token is no longer valid") from None

    def _tag(self, payload: bytes, filters: Filters) -> bytes:
        filters_digest = hashlib.sha256(_encode_json(dict(filters))).digest()
        mac = hmac.new(self._secret, _DOMAIN + filters_digest + payload, hashlib.sha256)
        return mac.digest()[:TAG_SIZE]


def _b64decode(token: str) -> bytes | None:
    """Strict unpadded base64url: only the canonical spelling of some bytes.

    The standard decoder skips characters outside the alphabet and ignores
    the unused low bits of the last character, so several strings would map
    to one token; rejecting all but the canonical one makes any edited
    character an invalid token.
    """
    if not _BASE64URL.fullmatch(token) or len(token) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        return None
    return raw
