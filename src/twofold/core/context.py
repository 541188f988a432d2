"""The call context: what a handler and an interceptor know about one call."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from twofold.core.asgi import Scope
from twofold.core.headers import Headers

if TYPE_CHECKING:
    from twofold.core.method import Method
    from twofold.core.policy import Identity


class Context:
    """One call, whatever protocol carried it.

    ``deadline`` is on the event loop's clock (``loop.time()``), or None for
    no deadline. ``state`` is a free dict for interceptors to hand values to
    handlers (an authenticated identity, a request id). ``response_headers``
    are added to the response by HTTP protocols and sent as metadata by gRPC.
    ``identity`` is who made the call, set by :class:`~twofold.Authentication`
    (None for an anonymous call). ``scope`` is the ASGI scope of a call over
    HTTP (its path, scheme, HTTP version), None on native gRPC. ``admitted``
    says whether the interceptors' header-only steps ran for this call
    (:class:`~twofold.core.chain.Gate`).
    """

    __slots__ = (
        "_peer",
        "_response_headers",
        "_response_trailers",
        "_state",
        "_timeout",
        "admitted",
        "closed",
        "deadline",
        "headers",
        "identity",
        "method",
        "protocol",
        "scope",
        "status",
    )

    def __init__(
        self,
        protocol: str,
        method: Method,
        headers: Headers,
        peer: str | tuple[str, int] | None = None,
        deadline: float | None = None,
        scope: Scope | None = None,
    ) -> None:
        self.protocol = protocol
        self.scope = scope
        self.method = method
        self.headers = headers
        # A transport's (host, port) is formatted only when someone asks:
        # most calls never do, and building the string is per request.
        self._peer = peer
        self.deadline = deadline
        self._state: dict[str, Any] | None = None
        self.identity: Identity | None = None
        self.admitted = False
        # Set by a protocol that closes a stream because it has what it asked
        # for (a long poll answered, or its wait over): the cancellation that
        # stops the handler is then the call's normal end, not a client's.
        self.closed = False
        self._response_headers: dict[str, str] | None = None
        self._response_trailers: dict[str, str] | None = None
        # The timeout a streaming protocol holds around its whole exchange
        # (twofold.core.invoke.deadline), so that a deadline set later can move it.
        self._timeout: asyncio.Timeout | None = None
        # The HTTP status the wire answers a success with, where the wire
        # chooses one (REST: the binding's 200/201/204; SSE: 200), recorded
        # by the wire so that observers need not work it out again. An
        # error's status is its own (Error.status).
        self.status: int | None = None

    @property
    def peer(self) -> str | None:
        """``host:port`` of the caller (``[host]:port`` for IPv6), when known."""
        peer = self._peer
        if peer is None or isinstance(peer, str):
            return peer
        self._peer = text = address(peer)
        return text

    @property
    def state(self) -> dict[str, Any]:
        if self._state is None:
            self._state = {}
        return self._state

    @property
    def response_headers(self) -> dict[str, str]:
        if self._response_headers is None:
            self._response_headers = {}
        return self._response_headers

    def has_response_headers(self) -> bool:
        return bool(self._response_headers)

    @property
    def response_trailers(self) -> dict[str, str]:
        """Trailing metadata, sent after the last message by the gRPC wires (a
        ``-bin`` value as the latin-1 text of its bytes, as ``headers`` has them)."""
        if self._response_trailers is None:
            self._response_trailers = {}
        return self._response_trailers

    def has_response_trailers(self) -> bool:
        return bool(self._response_trailers)

    def shorten_deadline(self, when: float) -> bool:
        """Bring a stream's deadline forward to ``when`` (on the loop's clock).

        Only where a streaming protocol holds a timeout around the whole
        exchange (:func:`twofold.core.invoke.deadline`): that timeout now fires at
        the earlier of the two deadlines, and the answer is True. Otherwise
        nothing changes and the answer is False: the caller must wrap its own
        timeout around the call.
        """
        if self._timeout is None:
            return False
        if self.deadline is None or when < self.deadline:
            self.deadline = when
            self._timeout.reschedule(when)
        return True

    def time_remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or None."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - asyncio.get_running_loop().time())

    def __repr__(self) -> str:
        return f"Context(protocol={self.protocol!r}, method={self.method.full_name!r})"


def address(client: Sequence[Any] | None) -> str | None:
    """An ASGI ``client`` (host, port) as ``host:port``, ``[host]:port`` for IPv6;
    None for none (a server may give an empty one)."""
    if not client:
        return None
    host, port = client
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
