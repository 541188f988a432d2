"""Credentials set once on a client and sent with every call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class Auth(Protocol):
    """Anything that supplies the headers that authenticate a call."""

    def headers(self) -> dict[str, str]: ...


def _check(value: str, what: str) -> None:
    # A line break would let a value smuggle in a second header.
    if not value or "\r" in value or "\n" in value:
        raise ValueError(f"{what} must be a non-empty single line")


@dataclass(frozen=True, slots=True)
class BearerToken:
    """``Authorization: Bearer <token>`` (RFC 6750). The token never shows in a repr."""

    token: str = field(repr=False)

    def __post_init__(self) -> None:
        _check(self.token, "a bearer token")

    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key in a header of the server's choosing (``X-API-Key`` by default)."""

    key: str = field(repr=False)
    header: str = "x-api-key"

    def __post_init__(self) -> None:
        _check(self.key, "an API key")
        _check(self.header, "the API key header name")

    def headers(self) -> dict[str, str]:
        return {self.header.lower(): self.key}
