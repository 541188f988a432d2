"""What the sync and async clients share: everything but the waiting.

:class:`BaseClient` looks methods up, turns arguments into the request
message, and decides about deadlines and retries; the subclasses in
:mod:`twofold.client.stubs` only add the I/O (a call, a sleep) in their own
colour, through the calls of their protocol (:mod:`twofold.client.calls`
over HTTP, :mod:`twofold.client.channels` over native gRPC). A deadline is a
point on ``time.monotonic()``'s clock, fixed when a call starts, so that
every attempt and every wait between attempts come out of the same budget.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, Literal, TypedDict

import httpx
import msgspec

from twofold.client.auth import Auth
from twofold.client.codecs import Codecs
from twofold.client.errors import Failure
from twofold.client.protocols import check
from twofold.client.retry import RETRYABLE_CODES, Retry
from twofold.client.rpc import Rpc, RpcTable, Services
from twofold.core.code import Code
from twofold.core.errors import Error, validation_error
from twofold.core.method import StreamKind

logger = logging.getLogger("twofold.client")
_PRIMITIVE = {
    StreamKind.UNARY: "invoke",
    StreamKind.SERVER: "server_stream",
    StreamKind.CLIENT: "client_stream",
    StreamKind.BIDI: "bidi_stream",
}
_KIND_NAME = {
    StreamKind.UNARY: "unary",
    StreamKind.SERVER: "server streaming",
    StreamKind.CLIENT: "client streaming",
    StreamKind.BIDI: "bidi streaming",
}

MiB = 1 << 20
DEFAULT_MAX_RESPONSE_SIZE = 4 * MiB  # gRPC's default largest received message
DEFAULT_RETRY = Retry()


class _CommonOptions(TypedDict, total=False):
    protocol: str
    timeout: float | None
    retry: Retry | None
    auth: Auth | None
    headers: Mapping[str, str] | None
    max_response_size: int


class ClientOptions(_CommonOptions, total=False):
    """The keyword options of :class:`~twofold.Client` (for generated subclasses)."""

    transport: httpx.BaseTransport | Literal["h2"] | None


class AsyncClientOptions(_CommonOptions, total=False):
    """The keyword options of :class:`~twofold.AsyncClient`."""

    transport: httpx.AsyncBaseTransport | Literal["h2"] | None


class BaseClient:
    """Method lookup, messages, deadlines and retry decisions; no I/O."""

    def __init__(
        self,
        services: Services,
        *,
        protocol: str,
        timeout: float | None,
        retry: Retry | None,
        auth: Auth | None,
        headers: Mapping[str, str] | None,
    ) -> None:
        self._rpcs = RpcTable(services)
        self._protocol = check(protocol)
        self._codecs = Codecs(self._rpcs.rpcs, self._rpcs.services)
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive (or None for no deadline)")
        self.timeout = timeout
        self.retry = retry or Retry(attempts=1)
        self._headers = {k.lower(): v for k, v in (headers or {}).items()}
        if auth is not None:
            self._headers.update(auth.headers())

    @property
    def protocol(self) -> str:
        return self._protocol

    @property
    def rpcs(self) -> list[Rpc[Any, Any]]:
        """Every method this client can call."""
        return list(self._rpcs)

    def _lookup(self, name: str) -> Rpc[Any, Any]:
        try:
            return self._rpcs.get(name)
        except LookupError as exc:
            raise Error(Code.UNIMPLEMENTED, str(exc)) from None

    @staticmethod
    def _message(rpc: Rpc[Any, Any], message: Any, fields: Mapping[str, Any]) -> Any:
        """The request message from a message, a mapping, or keyword fields.

        A mapping is validated against the request type before anything is
        sent; a mistake is the INVALID_ARGUMENT, with the same field
        violations, that the server would have answered.
        """
        if message is not None and fields:
            raise TypeError(f"{rpc.name}: pass the message or its fields, not both")
        if isinstance(message, rpc.input_type):
            return message
        data = fields if message is None else message
        try:
            return msgspec.convert(data, rpc.input_type)
        except msgspec.ValidationError as exc:
            raise validation_error(exc) from None

    def _deadline(self, timeout: float | None) -> float | None:
        seconds = self.timeout if timeout is None else timeout
        return None if seconds is None else time.monotonic() + seconds

    def _start(
        self, rpc: Rpc[Any, Any], kind: StreamKind, headers: Mapping[str, str] | None
    ) -> dict[str, str]:
        """Check that ``rpc`` is called the way it streams; the call's headers."""
        if rpc.kind is not kind:
            use = _PRIMITIVE[rpc.kind]
            raise TypeError(f"{rpc.name} is {_KIND_NAME[rpc.kind]}: call it with {use}()")
        merged = dict(self._headers)
        if headers:
            merged.update({k.lower(): v for k, v in headers.items()})
        return merged

    @staticmethod
    def _check_deadline(rpc: Rpc[Any, Any], deadline: float | None) -> None:
        if deadline is not None and deadline <= time.monotonic():
            raise Error(Code.DEADLINE_EXCEEDED, f"deadline exceeded before calling {rpc.name}")

    def _delay(
        self, rpc: Rpc[Any, Any], failure: Failure, attempt: int, deadline: float | None
    ) -> float | None:
        """How long to wait before trying again, or None to raise ``failure``."""
        policy = self.retry
        error = failure.error
        if (
            attempt >= policy.attempts
            or not rpc.retry_safe
            or not failure.retryable
            or error.code not in RETRYABLE_CODES
        ):
            return None
        if failure.retry_after is not None:
            if failure.retry_after > policy.max_retry_after:
                return None
            delay = failure.retry_after
        else:
            delay = policy.backoff_delay(attempt - 1)
        if deadline is not None and time.monotonic() + delay >= deadline:
            return None  # the wait would use up the deadline: the error says more
        logger.info(
            "%s failed with %s (attempt %d of %d); retrying in %.3fs",
            rpc.full_name,
            error.code.name,
            attempt,
            policy.attempts,
            delay,
        )
        return delay
