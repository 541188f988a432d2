"""No request leaves a reference cycle behind, answered or refused, on any wire.

A cycle is freed only by the garbage collector, whose runs grow with what
the requests leave: the access log's line holding its scope, one cycle per
request, cost REST GET a quarter of its req/s under load. An error kept in
a local of the frame that caught it is the usual cause (its traceback holds
that frame), so the refusals and handler errors are here beside the
successes.
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
import pytest

from twofold import (
    ApiKeys,
    App,
    Authentication,
    Code,
    Error,
    File,
    Idempotency,
    Service,
    StoredApiKey,
    requires,
    resumable,
)
from twofold.core.asgi import ASGIApp, Message
from twofold.http.envelope import frame

service = Service("cycles.v1")
items = service.resource("items")


class Item(msgspec.Struct):
    id: int
    name: Annotated[str, msgspec.Meta(min_length=1)]
    tags: list[str] = []


ITEMS = {1: Item(1, "one")}


@items.get
async def get_item(id: int) -> Item:
    if id == 13:
        raise RuntimeError("a bug")
    try:
        return ITEMS[id]
    except KeyError:
        # Raised inside an except block: its context, a KeyError with its own
        # traceback, travels with it.
        raise Error(Code.NOT_FOUND, f"no item {id}") from None


@items.create
async def create_item(item: Item) -> Item:
    return item


@service.procedure
async def crash() -> None:
    raise RuntimeError("a bug")


@service.procedure(http=("GET", "/items:count"), idempotency=Idempotency.NO_SIDE_EFFECTS)
async def count(to: int) -> AsyncIterator[Item]:
    for n in range(to):
        yield Item(n, "n")
    if to == 3:  # a stream that fails after its first messages
        raise Error(Code.FAILED_PRECONDITION, "unlucky")


@service.procedure(http=("GET", "/items:watch"), idempotency=Idempotency.NO_SIDE_EFFECTS)
@resumable("id", after="after_id")
async def watch(after_id: int = 0) -> AsyncIterator[Item]:
    if after_id == 3:  # a poll that fails before any event
        raise Error(Code.FAILED_PRECONDITION, "unlucky")
    for n in range(after_id + 1, after_id + 3):
        yield Item(n, "n")


@service.procedure(http=("PUT", "/files/{name}"), idempotency=Idempotency.IDEMPOTENT)
async def put_file(name: str, file: File) -> Item:
    return Item(len(file.data), name)


app = App(service)

# Calls refused at admission, before their bodies are read: what a flood of
# calls without credentials makes.
guarded = Service("guarded.v1")
things = guarded.resource("things")


@requires("things:read")
@things.get
async def get_thing(id: int) -> Item:
    return Item(id, "thing")


guarded_app = App(
    guarded,
    interceptors=[Authentication(ApiKeys([StoredApiKey.of("k", "someone", ["things:read"])]))],
)
JSON = (b"content-type", b"application/json")
CONNECT = "/cycles.v1.CyclesService"


def rpc(method: str, **params: Any) -> bytes:
    """A JSON-RPC request's body."""
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()


# name: (verb, path, headers, body, the status expected; gRPC-Web and JSON-RPC
# say their errors inside a 200)
REQUESTS: dict[str, tuple[str, str, list[tuple[bytes, bytes]], bytes, int]] = {
    "rest get": ("GET", "/items/1", [], b"", 200),
    "rest not found": ("GET", "/items/7", [], b"", 404),
    "rest invalid body": ("POST", "/items", [JSON], b'{"item": {"id": "x", "name": ""}}', 400),
    "rest malformed body": ("POST", "/items", [JSON], b"{", 400),
    "rest no route": ("GET", "/nothing", [], b"", 404),
    "rest handler bug": ("GET", "/items/13", [], b"", 500),
    "connect get": ("POST", f"{CONNECT}/GetItem", [JSON], b'{"id": 1}', 200),
    "connect not found": ("POST", f"{CONNECT}/GetItem", [JSON], b'{"id": 7}', 404),
    "connect invalid": ("POST", f"{CONNECT}/CreateItem", [JSON], b'{"item": {"name": 5}}', 400),
    "connect handler bug": ("POST", f"{CONNECT}/Crash", [JSON], b"{}", 500),
    "grpc-web not found": (
        "POST",
        f"{CONNECT}/GetItem",
        [(b"content-type", b"application/grpc-web+proto")],
        frame(b"\x08\x07"),
        200,
    ),
    "grpc-web truncated": (
        "POST",
        f"{CONNECT}/GetItem",
        [(b"content-type", b"application/grpc-web+proto")],
        frame(b"\x08\x07")[:-1],
        200,
    ),
    "json-rpc call": ("POST", "/jsonrpc", [JSON], rpc("GetItem", id=1), 200),
    "json-rpc not found": ("POST", "/jsonrpc", [JSON], rpc("GetItem", id=7), 200),
    "json-rpc unknown method": ("POST", "/jsonrpc", [JSON], rpc("NoSuchMethod"), 200),
    "sse stream": ("GET", "/items:count?to=2", [(b"accept", b"text/event-stream")], b"", 200),
    "sse stream failing": (
        "GET",
        "/items:count?to=3",
        [(b"accept", b"text/event-stream")],
        b"",
        200,
    ),
    "upload": ("PUT", "/files/a", [(b"content-type", b"text/plain")], b"hello", 200),
    "upload compressed": (
        "PUT",
        "/files/a",
        [(b"content-type", b"text/plain"), (b"content-encoding", b"gzip")],
        b"hello",
        415,
    ),
    "long poll": ("GET", "/items:watch?wait=1", [], b"", 200),
    "long poll failing": ("GET", "/items:watch?wait=1&after_id=3", [], b"", 400),
    "connect stream failing": (
        "POST",
        f"{CONNECT}/Count",
        [(b"content-type", b"application/connect+json")],
        frame(b'{"to": 3}'),
        200,
    ),
    "grpc-web stream failing": (
        "POST",
        f"{CONNECT}/Count",
        [(b"content-type", b"application/grpc-web+proto")],
        frame(b"\x08\x03"),
        200,
    ),
    "rest refused": ("GET", "/things/1", [], b"", 401),
    "connect refused": ("POST", "/guarded.v1.GuardedService/GetThing", [JSON], b'{"id": 1}', 401),
    "grpc-web refused": (
        "POST",
        "/guarded.v1.GuardedService/GetThing",
        [(b"content-type", b"application/grpc-web+proto")],
        frame(b"\x08\x01"),
        200,
    ),
    "json-rpc refused": ("POST", "/jsonrpc", [JSON], rpc("GetThing", id=1), 200),
}


async def call(
    target: ASGIApp, verb: str, url: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> int:
    """One request as a server makes it (no client library in between, whose
    own objects would count); the response's status. Once the body is read, a
    receive waits for the response's end, then says the client is gone, as
    ASGI servers do."""
    path, _, query = url.partition("?")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "root_path": "",
        "headers": [(b"host", b"t"), (b"content-length", b"%d" % len(body)), *headers],
        "state": {},
        "method": verb,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
    }
    sent: list[Message] = []
    read = False
    done = asyncio.Event()

    async def receive() -> Message:
        nonlocal read
        if not read:
            read = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()

    await target(scope, receive, send)
    done.set()
    await asyncio.sleep(0)  # a watcher still waiting on receive hears the end
    return int(sent[0]["status"])


@pytest.mark.parametrize("name", REQUESTS)
def test_a_request_leaves_nothing_for_the_garbage_collector(name: str) -> None:
    verb, path, headers, body, expected = REQUESTS[name]
    target = guarded_app if "refused" in name else app

    async def run() -> int:
        status = await call(target, verb, path, headers, body)  # first: what is built once
        assert status == expected
        gc.collect()
        gc.disable()
        try:
            for _ in range(20):
                await call(target, verb, path, headers, body)
            return gc.collect()
        finally:
            gc.enable()

    with pytest.MonkeyPatch.context() as patch:
        # A handler's bug is logged with its traceback; the log keeps nothing.
        patch.setattr("twofold.core.errors.logger.disabled", True)
        assert asyncio.run(run()) == 0
