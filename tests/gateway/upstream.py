"""A hand-written grpcio server for library.proto: the upstream the gateway fronts.

It uses nothing of Twofold: protoc (grpcio-tools) compiles the .proto into a
descriptor set, grpcio serves generic handlers over message classes made
from it, and grpcio-reflection serves the schema. Each call's request is
kept (``seen``) so a test can see exactly what the gateway transcoded.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_reflection.v1alpha import reflection

HERE = Path(__file__).parent
PROTO = HERE / "library.proto"
SERVICE = "library.v1.Library"


@cache
def descriptor_set() -> bytes:
    """library.proto and its imports as a FileDescriptorSet, compiled by protoc."""
    import tempfile

    from grpc_tools import protoc

    from twofold.gateway.descriptors import include_paths

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "library.pb"
        args = ["protoc", f"-I{HERE}", *(f"-I{p}" for p in include_paths())]
        args += [f"--descriptor_set_out={out}", "--include_imports", "--include_source_info"]
        assert protoc.main([*args, str(PROTO)]) == 0
        return out.read_bytes()


@cache
def pool() -> descriptor_pool.DescriptorPool:
    found = descriptor_pool.DescriptorPool()
    for f in descriptor_pb2.FileDescriptorSet.FromString(descriptor_set()).file:
        found.Add(f)
    return found


def message(name: str) -> Any:
    return message_factory.GetMessageClass(pool().FindMessageTypeByName(f"library.v1.{name}"))


class Library:
    """The service's state and handlers."""

    def __init__(self) -> None:
        self.books: dict[str, Any] = {}
        self.seen: dict[str, dict[str, Any]] = {}
        self.metadata: dict[str, dict[str, str]] = {}
        # The parents of WatchBooks streams the gateway cancelled.
        self.cancelled: list[str] = []
        book = message("Book")(name="shelves/1/books/1", title="Dune", pages=412, genre=1)
        book.published.FromJsonString("1965-08-01T00:00:00Z")
        self.books[book.name] = book

    def _keep(self, method: str, request: Any, context: Any) -> None:
        if request is not None:  # a request stream has no one request
            self.seen[method] = json_format.MessageToDict(request, descriptor_pool=pool())
        pairs = context.invocation_metadata()
        self.metadata[method] = {k: v for k, v in pairs if isinstance(v, str)}

    async def GetBook(self, request: Any, context: Any) -> Any:
        self._keep("GetBook", request, context)
        book = self.books.get(request.name)
        if book is None:
            info = error_details_pb2.ResourceInfo(resource_type="book", resource_name=request.name)
            await _abort(context, code_pb2.NOT_FOUND, f"no book {request.name}", info)
        return book

    async def ListBooks(self, request: Any, context: Any) -> Any:
        self._keep("ListBooks", request, context)
        return self._list(request)

    def _list(self, request: Any) -> Any:
        found = [b for n, b in sorted(self.books.items()) if n.startswith(request.parent)]
        return message("ListBooksResponse")(books=found, next_page_token="")

    async def ListTitles(self, request: Any, context: Any) -> Any:
        self._keep("ListTitles", request, context)
        return self._list(request)

    async def CreateBook(self, request: Any, context: Any) -> Any:
        self._keep("CreateBook", request, context)
        if not request.book.title:
            bad = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field="book.title", description="required"
                    )
                ]
            )
            await _abort(context, code_pb2.INVALID_ARGUMENT, "a book needs a title", bad)
        book = message("Book")()
        book.CopyFrom(request.book)
        book.name = f"{request.parent}/books/{request.book_id or len(self.books) + 1}"
        book.create_time.FromJsonString("2026-01-01T00:00:00Z")
        self.books[book.name] = book
        return book

    async def UpdateBook(self, request: Any, context: Any) -> Any:
        self._keep("UpdateBook", request, context)
        book = self.books.get(request.book.name)
        if book is None:
            await _abort(context, code_pb2.NOT_FOUND, f"no book {request.book.name}")
        request.update_mask.MergeMessage(request.book, book)
        return book

    async def DeleteBook(self, request: Any, context: Any) -> Any:
        self._keep("DeleteBook", request, context)
        self.books.pop(request.name, None)
        return message_factory.GetMessageClass(
            pool().FindMessageTypeByName("google.protobuf.Empty")
        )()

    async def MoveBook(self, request: Any, context: Any) -> Any:
        self._keep("MoveBook", request, context)
        book = self.books.get(request.name) or message("Book")(name=request.name)
        moved = message("Book")()
        moved.CopyFrom(book)
        moved.name = f"{request.destination}/books/{request.name.rsplit('/', 1)[-1]}"
        return moved

    async def GetShelf(self, request: Any, context: Any) -> Any:
        self._keep("GetShelf", request, context)
        return message("Shelf")(id=request.id, theme=f"theme {request.id}")

    async def WatchBooks(self, request: Any, context: Any) -> AsyncIterator[Any]:
        self._keep("WatchBooks", request, context)
        try:
            for i in range(request.count):
                if request.fail_after and i == request.fail_after:
                    retry = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=3))
                    await _abort(context, code_pb2.UNAVAILABLE, "the shelf is being dusted", retry)
                yield message("Book")(name=f"{request.parent}/books/{i}", title=f"Book {i}")
                await asyncio.sleep(request.delay_ms / 1000)
        except asyncio.CancelledError:
            self.cancelled.append(request.parent)
            raise

    async def GetFile(self, request: Any, context: Any) -> Any:
        self._keep("GetFile", request, context)
        return message("Book")(name=request.name)

    async def Echo(self, request: Any, context: Any) -> Any:
        self._keep("Echo", request, context)
        if request.delay_ms:
            await asyncio.sleep(request.delay_ms / 1000)
        # Binary (-bin) values as the hex of the bytes the upstream got.
        pairs = context.invocation_metadata()
        seen = sorted(f"{k}={v if isinstance(v, str) else v.hex()}" for k, v in pairs)
        return message("EchoRequest")(text=request.text, metadata=seen)

    async def ImportBooks(self, requests: AsyncIterator[Any], context: Any) -> Any:
        self._keep("ImportBooks", None, context)
        made = []
        async for request in requests:
            if request.book.title == "fail":
                await _abort(context, code_pb2.INVALID_ARGUMENT, "a book cannot be 'fail'")
            made.append(await self.CreateBook(request, context))
        return message("ListBooksResponse")(books=made)

    async def Chat(self, requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
        self._keep("Chat", None, context)
        seen = sorted(f"{k}={v}" for k, v in context.invocation_metadata() if isinstance(v, str))
        await context.send_initial_metadata((("x-upstream", "library"),))
        try:
            async for request in requests:
                if request.text == "fail":
                    await _abort(context, code_pb2.NOT_FOUND, "no such chat", None)
                if request.delay_ms:
                    await asyncio.sleep(request.delay_ms / 1000)
                yield message("EchoRequest")(text=request.text, metadata=seen)
        except (asyncio.CancelledError, GeneratorExit):
            # grpcio closes a cancelled call's response generator (GeneratorExit).
            self.cancelled.append("Chat")
            raise
        context.set_trailing_metadata((("x-chat-end", "bye"),))

    async def Fail(self, request: Any, context: Any) -> Any:
        self._keep("Fail", request, context)
        code = code_pb2.Code.Value(request.code or "UNKNOWN")
        detail: Any = None
        if code == code_pb2.INVALID_ARGUMENT:
            detail = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field="code", description="bad")
                ]
            )
        elif code == code_pb2.UNAVAILABLE:
            detail = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=7))
        elif code == code_pb2.NOT_FOUND:
            detail = error_details_pb2.ErrorInfo(reason="NO_SUCH_THING", domain="library.test")
        await _abort(context, code, f"failed as asked: {request.code}", detail)

    async def Garbage(self, request: Any, context: Any) -> bytes:
        self._keep("Garbage", request, context)
        # Field 1 as a varint where Book has a string: not a Book.
        return b"\x0a\xff\xff\xff\xff\x0f"


async def _abort(context: Any, code: int, message_text: str, detail: Any = None) -> None:
    status = status_pb2.Status(code=code, message=message_text)
    if detail is not None:
        status.details.add().Pack(detail)
    context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
    await context.abort(grpc.StatusCode[code_pb2.Code.Name(code)], message_text)


def _handlers(library: Library) -> grpc.GenericRpcHandler:
    service = pool().FindServiceByName(SERVICE)
    table = {}
    for m in service.methods:
        request_class = message_factory.GetMessageClass(m.input_type)
        serialize: Callable[[Any], bytes] = (
            (lambda b: b) if m.name == "Garbage" else (lambda x: x.SerializeToString())
        )
        make = {
            (False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler,
        }[(m.client_streaming, m.server_streaming)]
        table[m.name] = make(
            getattr(library, m.name),
            request_deserializer=request_class.FromString,
            response_serializer=serialize,
        )
    return grpc.method_handlers_generic_handler(SERVICE, table)


class Upstream:
    """The library served on 127.0.0.1 in a thread with its own event loop."""

    def __init__(self, port: int = 0, *, reflect: bool = True) -> None:
        self.library = Library()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.reflect = reflect
        self.server: Any = None
        self.port = self._run(self._start(port))

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(20)

    async def _start(self, port: int) -> int:
        self.server = grpc.aio.server()
        self.server.add_generic_rpc_handlers((_handlers(self.library),))
        if self.reflect:
            names = (SERVICE, reflection.SERVICE_NAME)
            reflection.enable_server_reflection(names, self.server, pool())
        bound = self.server.add_insecure_port(f"127.0.0.1:{port}")
        await self.server.start()
        return int(bound)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.server is not None:
            self._run(self.server.stop(None))
            self.server = None

    def restart(self) -> None:
        """Stop and serve again on the same port (the state is kept)."""
        self.stop()
        self.port = self._run(self._start(self.port))

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@contextmanager
def running(*, reflect: bool = True) -> Iterator[Upstream]:
    upstream = Upstream(reflect=reflect)
    try:
        yield upstream
    finally:
        upstream.close()
