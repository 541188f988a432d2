"""What the sync and async clients share: everything but the waiting.

:class:`BaseClient` looks methods up, turns arguments into the request
message, and decides about deadlines and retries; the subclasses in
:mod:`twofold.client.stubs` only add the I/O (a send, a sleep) in their own
colour. A deadline is a point on ``time.monotonic()``'s clock, fixed when a
call starts, so that every attempt and every wait between attempts come out
of the same budget.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, TypedDict

import httpx
import msgspec

from twofold.client.auth import Auth
from twofold.client.errors import Failure
from twofold.client.protocols import Protocol
from twofold.client.protocols import protocol as make_protocol
from twofold.client.retry import RETRYABLE_CODES, Retry, retry_after
from twofold.client.rpc import Rpc, RpcTable, Services
from twofold.client.transports import HttpRequest, HttpResponse
from twofold.code import Code
from twofold.errors import Error, validation_error
from twofold.method import StreamKind

logger = logging.getLogger("twofold.client")

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


class Options(_CommonOptions, total=False):
    """The keyword options of :class:`~twofold.client.Client` (for generated subclasses)."""

    transport: httpx.BaseTransport | None


class AsyncOptions(_CommonOptions, total=False):
    """The keyword options of :class:`~twofold.client.AsyncClient`."""

    transport: httpx.AsyncBaseTransport | None


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
        self._protocol: Protocol = make_protocol(protocol)
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive (or None for no deadline)")
        self.timeout = timeout
        self.retry = retry or Retry(attempts=1)
        self._headers = {k.lower(): v for k, v in (headers or {}).items()}
        if auth is not None:
            self._headers.update(auth.headers())

    @property
    def protocol(self) -> str:
        return self._protocol.name

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

    def _prepare(
        self,
        rpc: Rpc[Any, Any],
        message: Any,
        deadline: float | None,
        headers: Mapping[str, str] | None,
    ) -> HttpRequest:
        if rpc.kind is not StreamKind.UNARY:
            kind = rpc.kind.value
            raise Error(Code.UNIMPLEMENTED, f"{rpc.name} is {kind} streaming: not supported yet")
        remaining = None
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Error(Code.DEADLINE_EXCEEDED, f"deadline exceeded before calling {rpc.name}")
        request = self._protocol.request(rpc, message, remaining)
        request.headers.update(self._headers)
        if headers:
            request.headers.update({k.lower(): v for k, v in headers.items()})
        return request

    def _result(self, rpc: Rpc[Any, Any], response: HttpResponse) -> Any:
        try:
            return self._protocol.response(rpc, response)
        except Failure as failure:
            if failure.retry_after is None:
                failure.retry_after = retry_after(response.headers.get("retry-after"))
            raise

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
