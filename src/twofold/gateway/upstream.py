"""The gRPC upstream: a pool of grpcio aio channels, calls as bytes, statuses as Errors.

Messages cross as bytes (no serializer): the gateway parses the answer
itself, so that an answer that is not the declared message is a 502 of
ours rather than an exception inside grpcio. A failed call's status and
``grpc-status-details-bin`` become one :class:`~twofold.core.errors.Error`,
which every front wire renders from its own table.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import json_format
from google.protobuf.any_pb2 import Any as AnyProto
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from twofold.core.code import Code
from twofold.core.details import TYPE_URL_PREFIX, BadRequest, FieldViolation
from twofold.core.errors import Error
from twofold.interceptors.metrics import Metrics

if TYPE_CHECKING:
    from twofold.gateway.tracing import UpstreamTracing

# What goes upstream unless configured otherwise: credentials, and the ids
# that tie a trace or a log line together across the hop.
FORWARD = ("authorization", "x-request-id", "traceparent", "tracestate", "grpc-trace-bin")
# How long a client that says nothing may keep an upstream call open, and the
# most it may ask for: a gateway that waits forever on a stuck upstream is an outage.
DEFAULT_TIMEOUT = 30.0
# A client may retry an UNAVAILABLE upstream after this many seconds unless the
# upstream said otherwise (google.rpc.RetryInfo).
RETRY_AFTER = "1"
# What a client is told when the upstream cannot be reached: grpcio's own
# words name addresses and OS errors.
UNAVAILABLE = "the upstream service is unavailable"
# grpcio's reconnect back-off starts at 1 s and grows to 120 s: behind a gateway an
# upstream that restarted would stay "unavailable" for minutes. Retry sooner.
CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
)


class BadGateway(Error):
    """The upstream answered with something that is not the declared message."""

    http_status = 502

    def __init__(self, message: str) -> None:
        super().__init__(Code.INTERNAL, message)


@dataclass(frozen=True, slots=True)
class UpstreamDetail:
    """A google.rpc detail from the upstream, passed on as it came."""

    TYPE_NAME: str
    value: bytes
    json: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return dict(self.json)

    def to_proto(self) -> bytes:
        return self.value


class Upstream:
    """``target`` (``host:port``) over ``size`` channels, used in turn.

    One HTTP/2 connection carries at most its peer's concurrent-stream limit
    (often 100); several channels spread a busy gateway's calls.
    """

    def __init__(
        self,
        target: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        size: int = 1,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self.target = target
        self.credentials = credentials
        self.size = max(1, size)
        self.options = [*CHANNEL_OPTIONS, *options]
        self._channels: list[grpc.aio.Channel] = []
        self._turn = itertools.count()
        self._unary: dict[tuple[int, str], Any] = {}
        self._stream: dict[tuple[int, str], Any] = {}
        self._duplex: dict[tuple[int, str], Any] = {}
        # Set by the Gateway when it has metrics (twofold.interceptors.metrics.Metrics).
        self.metrics: Metrics | None = None
        # Set by the Gateway when it traces (twofold.gateway.tracing, twofold[otel]).
        self.tracing: UpstreamTracing | None = None

    def channel(self) -> grpc.aio.Channel:
        """The next channel; made on first use, inside the running event loop."""
        if not self._channels:
            self._channels = [self._make() for _ in range(self.size)]
        return self._channels[next(self._turn) % self.size]

    def _make(self) -> grpc.aio.Channel:
        if self.credentials is not None:
            return grpc.aio.secure_channel(self.target, self.credentials, self.options)
        return grpc.aio.insecure_channel(self.target, self.options)

    async def unary(
        self,
        path: str,
        request: bytes,
        metadata: Sequence[tuple[str, str | bytes]],
        seconds: float,
        protocol: str = "",
    ) -> bytes:
        """One unary call; ``protocol`` (the front wire) labels its metrics."""
        channel = self.channel()
        key = (id(channel), path)
        call = self._unary.get(key) or self._unary.setdefault(key, channel.unary_unary(path))
        with self._measure(protocol, path), self._traced(protocol, path, metadata) as sent:
            try:
                answer: bytes = await call(request, metadata=sent, timeout=seconds)
            except grpc.aio.AioRpcError as exc:
                raise upstream_error(exc) from None
        return answer

    def server_stream(
        self,
        path: str,
        request: bytes,
        metadata: Sequence[tuple[str, str | bytes]],
        seconds: float,
        protocol: str = "",
    ) -> AsyncIterator[bytes]:
        """One server stream, measured to its last message."""

        def start(sent: Sequence[tuple[str, str | bytes]]) -> grpc.aio.UnaryStreamCall:
            channel = self.channel()
            key = (id(channel), path)
            stub = self._stream.get(key) or self._stream.setdefault(key, channel.unary_stream(path))
            call: grpc.aio.UnaryStreamCall = stub(request, metadata=sent, timeout=seconds)
            return call

        return self._relay(protocol, path, metadata, start)

    def stream(
        self,
        path: str,
        requests: AsyncIterator[bytes],
        metadata: Sequence[tuple[str, str | bytes]],
        seconds: float,
        protocol: str = "",
        opened: Callable[[grpc.aio.Call], None] | None = None,
    ) -> AsyncIterator[bytes]:
        """A client or bidi stream: ``requests`` go up as they come, answers come back.

        The call is a stream both ways whatever the method declares (HTTP/2 does
        not say): a unary answer is a stream of one message. ``opened`` is told
        the call as soon as it exists, before any request is read, so that the
        request side can cancel it.
        """

        def start(sent: Sequence[tuple[str, str | bytes]]) -> grpc.aio.StreamStreamCall:
            call = self.open(path, requests, sent, seconds)
            if opened is not None:
                opened(call)
            return call

        return self._relay(protocol, path, metadata, start)

    async def _relay(
        self,
        protocol: str,
        path: str,
        metadata: Sequence[tuple[str, str | bytes]],
        start: Callable[
            [Sequence[tuple[str, str | bytes]]],
            grpc.aio.UnaryStreamCall | grpc.aio.StreamStreamCall,
        ],
    ) -> AsyncIterator[bytes]:
        """The answers of the call ``start`` makes (given the metadata to send),
        measured and traced to the last; its status as an :class:`Error`.

        Nothing runs before the first answer is asked for. However the
        iteration ends (the last answer, an error, the consumer stopping early
        or closing it, a cancellation when the client left), the call is
        cancelled: a no-op for a call already over, the end of one still open.
        """
        with self.observed(protocol, path, metadata) as sent:
            call = start(sent)
            try:
                async for item in call:
                    yield item
            except grpc.aio.AioRpcError as exc:
                raise upstream_error(exc) from None
            finally:
                call.cancel()

    def open(
        self,
        path: str,
        requests: AsyncIterator[bytes],
        metadata: Sequence[tuple[str, str | bytes]],
        seconds: float,
    ) -> grpc.aio.StreamStreamCall:
        """A raw call, for a relay that needs its headers and trailers as they are."""
        channel = self.channel()
        key = (id(channel), path)
        stub = self._duplex.get(key) or self._duplex.setdefault(key, channel.stream_stream(path))
        call: grpc.aio.StreamStreamCall = stub(requests, metadata=metadata, timeout=seconds)
        return call

    @contextlib.contextmanager
    def observed(
        self, protocol: str, path: str, metadata: Sequence[tuple[str, str | bytes]]
    ) -> Iterator[Sequence[tuple[str, str | bytes]]]:
        """One call's metrics and span; yields the metadata to send (the trace's added)."""
        with self._measure(protocol, path), self._traced(protocol, path, metadata) as sent:
            yield sent

    @contextlib.contextmanager
    def _traced(
        self, protocol: str, path: str, metadata: Sequence[tuple[str, str | bytes]]
    ) -> Iterator[Sequence[tuple[str, str | bytes]]]:
        if self.tracing is None:
            yield metadata
            return
        with self.tracing.span(protocol, path, metadata) as sent:
            yield sent

    @contextlib.contextmanager
    def _measure(self, protocol: str, path: str) -> Iterator[None]:
        """Count, time and gauge one upstream call in ``metrics`` (if any), by its
        front wire, method and canonical code (``canceled`` when the client left)."""
        metrics = self.metrics
        if metrics is None:
            yield
            return
        labels = (protocol, path.lstrip("/"))
        gauge = metrics.in_flight.labels(*labels)
        gauge.inc()
        start = time.perf_counter()
        code = "ok"
        try:
            yield
        except Error as exc:
            code = exc.code.wire_name
            raise
        except (asyncio.CancelledError, GeneratorExit):
            code = Code.CANCELED.wire_name
            raise
        except BaseException:
            code = Code.INTERNAL.wire_name
            raise
        finally:
            gauge.dec()
            metrics.duration.labels(*labels).observe(time.perf_counter() - start)
            metrics.calls.labels(*labels, code).inc()

    async def close(self) -> None:
        channels, self._channels = self._channels, []
        self._unary.clear()
        self._stream.clear()
        self._duplex.clear()
        for channel in channels:
            await channel.close()


def upstream_error(exc: grpc.aio.AioRpcError) -> Error:
    """The Error a failed upstream call is, details and Retry-After included."""
    status = exc.code()
    try:
        code = Code(status.value[0])
    except ValueError:
        code = Code.UNKNOWN
    headers: dict[str, str] = {}
    details: list[Any] = []
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            details = _details(value, headers)
    if code is Code.UNAVAILABLE:
        headers.setdefault("Retry-After", RETRY_AFTER)
    message = exc.details() or ""
    if code is Code.UNAVAILABLE and not details and "failed to connect" in message.lower():
        # grpcio's own text names addresses and OS errors: not the client's business.
        message = UNAVAILABLE
    return Error(code, message, details, headers=headers)


def _details(raw: bytes, headers: dict[str, str]) -> list[Any]:
    status = status_pb2.Status()
    try:
        status.ParseFromString(raw)
    except Exception:
        return []  # a detail we cannot read must not hide the status itself
    out: list[Any] = []
    for item in status.details:
        out.append(_detail(item, headers))
    return out


def _detail(item: AnyProto, headers: dict[str, str]) -> Any:
    name = item.type_url.rpartition("/")[2]
    if name == "google.rpc.BadRequest":
        bad = error_details_pb2.BadRequest.FromString(item.value)
        return BadRequest(
            tuple(FieldViolation(v.field, v.description) for v in bad.field_violations)
        )
    if name == "google.rpc.RetryInfo":
        info = error_details_pb2.RetryInfo.FromString(item.value)
        delay = info.retry_delay.seconds + info.retry_delay.nanos / 1e9
        headers["Retry-After"] = str(max(0, math.ceil(delay)))
    doc: Mapping[str, Any] = {}
    try:
        known = json_format.MessageToDict(item)
        known.pop("@type", None)
        doc = known
    except Exception:
        doc = {}  # a type only the upstream knows: its bytes still go on
    url = item.type_url if item.type_url.startswith(TYPE_URL_PREFIX) else name
    return UpstreamDetail(url.removeprefix(TYPE_URL_PREFIX), item.value, doc)


def grpc_timeout(value: str) -> float | None:
    """gRPC's ``grpc-timeout`` (``100m``, ``5S``) in seconds, or None if malformed."""
    units = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
    if len(value) < 2 or len(value) > 9 or not value[:-1].isdigit() or value[-1] not in units:
        return None
    return int(value[:-1]) * units[value[-1]]
