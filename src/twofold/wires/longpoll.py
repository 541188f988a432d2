"""Long polling: a resumable server stream, a batch at a time, for clients and
proxies that cannot keep an event stream open.

``GET /products:watchPrices?wait=30&after_id=41`` is held until the stream has
events after 41, then answered 200 with them, as many as are ready, in one
document ``{"events": [...], "cursor": "42"}`` (or its XML, ``<Batch>``, to a
client whose ``Accept`` prefers it); after ``wait`` seconds with none, 204. Both
carry ``Link: <...&after_id=42>; rel="next"``, the next poll. The call is the
stream's own (same interceptors, same stream budget): it is opened when the
poll arrives and closed when the poll is answered, whichever way (events,
``wait`` over, the deadline, an error, the client gone), so a held poll holds
one slot of the stream budget and gives it back with its answer. Nothing is
lost between two polls: the next one resumes after the cursor, as an
EventSource resumes after its Last-Event-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec

from twofold.core.asgi import Receive, Scope, Send
from twofold.core.chain import Refused
from twofold.core.context import Context
from twofold.core.errors import Error, as_error
from twofold.core.invoke import deadline, stream
from twofold.core.options import Options
from twofold.http import negotiation, resumption, xmlmessage
from twofold.http.body import encode_headers, header
from twofold.http.operation import Operation
from twofold.http.problem import send_problem
from twofold.wires.exchange import Exchange, serve_route_stream, stopping

JSON = b"application/json"
# How long a poll gives the handler to produce what it already has (the
# events it missed, read from its store) even when ``wait`` is 0: a poll with
# wait=0 asks "what is there now?", not "answer before you have looked".
GRACE = 0.25
_encode = msgspec.json.Encoder().encode


class Batch(msgspec.Struct):
    """The body of a 200: the events in order, and the id of the last one."""

    events: list[Any]
    cursor: str


_BATCHES: dict[Any, Any] = {}


def batch_type(message: Any) -> Any:
    """``Batch`` with the stream's message as its events' type: what the XML
    mapping needs to write each event as that message (JSON needs no type)."""
    found = _BATCHES.get(message)
    if found is None:
        found = _BATCHES[message] = msgspec.defstruct(
            "Batch", [("events", list[message]), ("cursor", str)]
        )
    return found


async def serve(
    op: Operation,
    ctx: Context,
    params: dict[str, Any],
    receive: Receive,
    send: Send,
    options: Options,
    refused: Refused,
) -> None:
    """Answer one long poll (a server stream's REST route with ``?wait=``).

    ``ctx`` is the call's, built and admitted (credentials checked) by the
    REST protocol: nothing is held before that.
    """
    scope = ctx.scope
    assert scope is not None
    # First, so that every refusal is in the representation asked for (one
    # that is neither JSON nor XML is refused in JSON).
    chosen = negotiation.representation(header(scope, b"accept"))
    xml = chosen == negotiation.XML

    async def poll() -> _Poll:
        if chosen is None:
            raise negotiation.NotAcceptable
        wait = _wait(ctx, scope, options.max_poll_wait)  # refused before the body is read
        sent = await resumption.read(op, scope, params, receive, options.max_body_size)
        return _Poll(ctx, sent, max(wait, GRACE), send, xml)

    await serve_route_stream(ctx, receive, send, refused, poll(), _Poll.run, xml=xml)


def _wait(ctx: Context, scope: Scope, maximum: float) -> float:
    """How long the poll may be held, in seconds; raises :class:`Error` for a
    method that cannot be polled or a bad ``wait``."""
    if ctx.method.resume is None:
        raise Error.invalid(
            resumption.WAIT,
            f"{ctx.method.name} cannot be long-polled: it is not resumable; "
            "open it as an event stream (no wait parameter)",
        )
    raw_wait = resumption.wait_of(scope["query_string"])
    assert raw_wait is not None  # the REST protocol sends only polls here
    return resumption.seconds(raw_wait, maximum)


class _Poll:
    """One held poll: the stream's call, read until it has events or time is up."""

    def __init__(
        self,
        ctx: Context,
        sent: resumption.StreamRequest,
        wait: float,
        send: Send,
        xml: bool,
    ) -> None:
        self.ctx = ctx
        self.xml = xml
        self.sent = sent
        self.wait = wait
        self.send = send
        self.events: list[Any] = []
        self.arrived = asyncio.Event()

    async def pump(self) -> None:
        # The handler's generator runs in this one task from start to end (a
        # context manager inside it may span its yields); closing it (aclosing)
        # ends the call, and so gives back its place in the stream budget.
        async with contextlib.aclosing(stream(self.ctx.method, self.ctx, self.sent.request)) as out:
            async for output in out:
                self.events.append(output)
                self.arrived.set()
                if len(self.events) >= resumption.MAX_POLL_EVENTS:
                    return

    async def run(self, exchange: Exchange) -> None:
        pump = asyncio.ensure_future(self.pump())
        arrived = asyncio.ensure_future(self.arrived.wait())
        error: Error | None = None
        try:
            # The deadline (Request-Timeout, @timeout) stops the poll as it
            # stops a stream; @lifetime ends the call cleanly, which here is
            # an answer with what there is.
            async with deadline(self.ctx):
                await asyncio.wait(
                    {pump, arrived}, timeout=self.wait, return_when=asyncio.FIRST_COMPLETED
                )
                if not pump.done():
                    # What the handler has ready comes with the first event
                    # (a replay is yielded in a row): one turn of the loop
                    # lets the pump take it before the call is closed.
                    await asyncio.sleep(0)
            # Answered as asked (events, or the wait over): closing the call
            # now is its end, not a cancellation (metrics, logs, traces).
            self.ctx.closed = True
        except (Exception, asyncio.CancelledError) as exc:  # only coded errors reach the wire
            if isinstance(exc, asyncio.CancelledError) and exchange.gone:
                raise  # the client left: nobody to answer (the finally closes the call)
            error = stopping() if isinstance(exc, asyncio.CancelledError) else as_error(exc)
        finally:
            arrived.cancel()
            pump.cancel()
            # Closed before the answer goes out: the slot is free by the time
            # the client can ask again.
            await asyncio.wait({pump})
        if error is None and pump.done() and not pump.cancelled():
            failure = pump.exception()
            if failure is not None:
                error = as_error(failure)
        # Events already taken are answered even when the call then failed:
        # the next poll resumes after them (and meets the error, if it lasts).
        if self.events:
            try:
                await self._answer()
                return
            except negotiation.Unrepresentable as exc:
                # Nothing was sent: the next poll, asking for JSON, gets them.
                error = exc
        if error is not None:
            scope = self.ctx.scope
            assert scope is not None
            await send_problem(self.send, error, scope["path"], xml=self.xml)
        else:
            await self._nothing()

    def _headers(self, cursor: str | None) -> list[tuple[bytes, bytes]]:
        scope = self.ctx.scope
        resume = self.ctx.method.resume
        assert scope is not None and resume is not None
        headers = [
            # A poll's answer is live, as an event is: no cache may keep it.
            (b"cache-control", b"no-store"),
            (b"link", resumption.next_poll(scope, resume.after, cursor)),
        ]
        if self.ctx.has_response_headers():
            headers.extend(encode_headers(self.ctx.response_headers))
        return headers

    async def _answer(self) -> None:
        resume = self.ctx.method.resume
        assert resume is not None
        cursor = resumption.event_id(getattr(self.events[-1], resume.event_id))
        batch = Batch(self.events, cursor)
        if self.xml:
            try:
                body = xmlmessage.encode(batch, batch_type(self.ctx.method.output_type))
            except xmlmessage.Unrepresentable:
                raise negotiation.Unrepresentable from None
        else:
            body = _encode(batch)
        headers = self._headers(cursor)
        headers.append((b"content-type", xmlmessage.XML if self.xml else JSON))
        headers.append((b"content-length", b"%d" % len(body)))
        await self.send({"type": "http.response.start", "status": 200, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})

    async def _nothing(self) -> None:
        # 204: no events; the cursor is the one the client sent (the next poll
        # is the same poll), or none when it sent none.
        self.ctx.status = 204
        headers = self._headers(self.sent.after)
        await self.send({"type": "http.response.start", "status": 204, "headers": headers})
        await self.send({"type": "http.response.body", "body": b""})
