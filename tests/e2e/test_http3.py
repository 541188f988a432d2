"""``twofold serve --server pyvoy --tls-cert --tls-key --http3``: the catalog over HTTP/3.

The client is aioquic's QUIC and HTTP/3 stack (tests/e2e/http3.py), on UDP
to the port the TCP answers name in ``Alt-Svc``. Every wire that a browser
or a service reaches over HTTP/3 is called: REST, a Connect unary call,
gRPC-Web, native gRPC (its trailers are HTTP/3 trailers), Server-Sent Events
arriving one by one, bidi streams; then problem answers, what the limits
refuse, and garbage datagrams at the QUIC port.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import socket
import ssl
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pytest
from google.protobuf import json_format

from examples.catalog import app as catalog_app
from examples.catalog import service
from tests.e2e import grpc_app, http3
from tests.e2e.certificates import self_signed
from tests.e2e.grpc_app import Number
from tests.e2e.server import Server, spawn
from tests.tokens import AUTHORIZATION
from twofold.http.envelope import END_STREAM, TRAILERS, frame
from twofold.protobuf import Schema

T = TypeVar("T")
SERVICE = "/catalog.v1.CatalogService/"
METHODS = {m.name: m for m in catalog_app.table}
SCHEMA = Schema(service)
GRPC_APP = Schema(grpc_app.app.table)
# RFC 9114 section 8.1 error codes.
H3_FRAME_UNEXPECTED = 0x105
H3_EXCESSIVE_LOAD = 0x107


@dataclass
class Served:
    server: Server
    cert: Path

    @property
    def port(self) -> int:
        return self.server.port

    def connect(self, **kwargs: Any) -> Any:
        return http3.client(self.port, self.cert, **kwargs)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if importlib.util.find_spec("pyvoy") is None:
        pytest.skip("pyvoy is not installed (the dev extra has it)")
    tmp = tmp_path_factory.mktemp("http3")
    cert, key = self_signed(tmp)

    def argv(port: int, _: int | None) -> list[str]:
        return [
            sys.executable, "-m", "twofold", "serve", "examples.catalog:app",
            "--server", "pyvoy", "--port", str(port),
            "--tls-cert", str(cert), "--tls-key", str(key), "--http3",
        ]  # fmt: skip

    env = {"CATALOG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'catalog.db'}"}
    server = spawn(argv, tmp, env, tls=cert)
    yield Served(server, cert)
    server.stop()


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


async def new_product(client: http3.Client, category: str, price: str = "10.00") -> dict[str, Any]:
    body = json.dumps({"name": "Lamp", "price": price, "category": category}).encode()
    headers = {"content-type": "application/json", **AUTHORIZATION}
    r = await client.request("POST", "/products", headers, body)
    assert r.status == 201, r.body
    product: dict[str, Any] = json.loads(r.body)
    assert r.headers["location"] == f"/products/{product['id']}"
    return product


def served_over_http3(served: Served, request: str) -> bool:
    """Envoy's access log names the protocol each request came over: a line for
    ``request`` (a method and the start of a target) says HTTP/3. Envoy writes
    the log once a second, so it is read again for a while."""
    line = re.compile(rf'"{re.escape(request)}\S* HTTP/3"')
    for _ in range(200):
        if line.search(served.server.output()):
            return True
        time.sleep(0.05)
    return False


def test_rest_over_http3(served: Served) -> None:
    async def main() -> None:
        async with served.connect() as client:
            product = await new_product(client, f"rest-{uuid.uuid4().hex[:8]}")
            path = f"/products/{product['id']}"
            r = await client.request("GET", path, {"accept": "application/json"})
            assert r.status == 200
            assert json.loads(r.body) == product
            assert r.headers["content-type"] == "application/json"
            assert r.headers["cache-control"].startswith("public")
            etag = r.headers["etag"]
            r = await client.request("GET", path, {"if-none-match": etag})
            assert (r.status, r.body) == (304, b"")
            r = await client.request(
                "GET", f"/products?page_size=10&category={product['category']}"
            )
            assert [p["id"] for p in json.loads(r.body)["products"]] == [product["id"]]

    run(main())
    assert served_over_http3(served, "GET /products/")


def test_tcp_answers_advertise_http3_where_a_client_finds_it(served: Served) -> None:
    url = served.server.url
    trusted = ssl.create_default_context(cafile=str(served.cert))
    with httpx.Client(base_url=url, http2=True, verify=trusted) as h2:
        answers = [h2.get("/readyz"), h2.get("/products/0")]  # a 200, a problem
        with httpx.Client(base_url=url, verify=trusted) as h1:
            answers.append(h1.get("/products"))
    assert [r.http_version for r in answers] == ["HTTP/2", "HTTP/2", "HTTP/1.1"]
    advertised = {r.headers["alt-svc"] for r in answers}
    assert advertised == {f'h3=":{served.port}"; ma=86400'}
    # As a browser does: HTTP/3 on the port the header names, same host.
    match = re.fullmatch(r'h3=":(\d+)"; ma=\d+', advertised.pop())
    assert match is not None

    async def main() -> http3.Response:
        async with http3.client(int(match.group(1)), served.cert) as client:
            return await client.request("GET", "/readyz")

    r = run(main())
    assert (r.status, r.body) == (200, b"ready\n")
    assert "alt-svc" not in r.headers  # said on TCP, where a client looks for it


def test_connect_unary_over_http3(served: Served) -> None:
    async def main() -> None:
        async with served.connect() as client:
            product = await new_product(client, f"connect-{uuid.uuid4().hex[:8]}")
            json_headers = {"content-type": "application/json"}
            message = json.dumps({"id": product["id"]}).encode()
            r = await client.request("POST", SERVICE + "GetProduct", json_headers, message)
            assert r.status == 200 and r.headers["content-type"] == "application/json"
            assert json.loads(r.body)["name"] == "Lamp"
            # Connect GET: the cacheable read.
            query = f"?connect=v1&encoding=json&message={quote(message.decode())}"
            r = await client.request("GET", SERVICE + "GetProduct" + query)
            assert r.status == 200 and json.loads(r.body)["id"] == str(product["id"])
            assert "etag" in r.headers
            # A Connect error: its JSON and its status.
            missing = json.dumps({"id": 999999999}).encode()
            r = await client.request("POST", SERVICE + "GetProduct", json_headers, missing)
            assert r.status == 404
            assert json.loads(r.body)["code"] == "not_found"

    run(main())


def proto(name: str, payload: dict[str, Any]) -> bytes:
    """``payload`` as the protobuf runtime serializes the method's input message."""
    cls = SCHEMA.message_class(METHODS[name].input_type)
    return bytes(json_format.ParseDict(payload, cls()).SerializeToString())


def product_from(data: bytes) -> dict[str, Any]:
    cls = SCHEMA.message_class(METHODS["GetProduct"].output_type)
    return dict(json_format.MessageToDict(cls.FromString(data)))


def envelopes(body: bytes) -> list[tuple[int, bytes]]:
    found = []
    while body:
        size = int.from_bytes(body[1:5], "big")
        found.append((body[0], body[5 : 5 + size]))
        body = body[5 + size :]
    return found


def test_grpc_web_and_native_grpc_over_http3(served: Served) -> None:
    async def main() -> None:
        async with served.connect() as client:
            product = await new_product(client, f"grpc-{uuid.uuid4().hex[:8]}")
            request = frame(proto("GetProduct", {"id": product["id"]}))
            web = {"content-type": "application/grpc-web+proto", "x-grpc-web": "1"}
            r = await client.request("POST", SERVICE + "GetProduct", web, request)
            assert r.status == 200
            (flags, message), (trailer_flags, trailers) = envelopes(r.body)
            assert (flags, trailer_flags) == (0, TRAILERS)
            assert product_from(message)["name"] == "Lamp"
            assert b"grpc-status: 0" in trailers
            # Native gRPC: its status in HTTP/3 trailers (a HEADERS frame after the DATA).
            grpc = {"content-type": "application/grpc", "te": "trailers"}
            r = await client.request("POST", SERVICE + "GetProduct", grpc, request)
            assert (r.status, r.headers["content-type"]) == (200, "application/grpc")
            ((flags, message),) = envelopes(r.body)
            assert product_from(message)["id"] == str(product["id"])
            assert r.trailers["grpc-status"] == "0"
            missing = frame(proto("GetProduct", {"id": 999999999}))
            r = await client.request("POST", SERVICE + "GetProduct", grpc, missing)
            # Trailers-only: the status rides on the only HEADERS frame.
            assert r.status == 200 and r.body == b""
            assert (r.headers | r.trailers)["grpc-status"] == "5"  # NOT_FOUND

    run(main())


def test_server_sent_events_arrive_one_by_one_over_http3(served: Served) -> None:
    """Each change is seen while the stream is open, before the next is made:
    nothing is held back until the stream ends (it never does by itself)."""
    category = f"sse-{uuid.uuid4().hex[:8]}"

    async def events(exchange: http3.Exchange, into: asyncio.Queue[Any]) -> None:
        """Each event's data into ``into``, as the DATA frames bring them."""
        buffer = b""
        async for chunk in exchange.chunks():
            buffer += chunk
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                for line in block.split(b"\n"):
                    if line.startswith(b"data: "):
                        into.put_nowait(json.loads(line[6:]))

    async def main() -> list[tuple[str, str]]:
        async with served.connect() as client:
            product = await new_product(client, category)
            watch = client.open(
                "GET", f"/products:watchPrices?category={category}", {"accept": "text/event-stream"}
            )
            head = await watch.head()
            assert (head.status, head.headers["content-type"]) == (200, "text/event-stream")
            stream: asyncio.Queue[Any] = asyncio.Queue()
            reader = asyncio.ensure_future(events(watch, stream))
            seen: list[tuple[str, str]] = []
            prices = iter(f"{n}.00" for n in range(11, 100))
            # The stream is open (its head came), but the handler may still be
            # subscribing: a change made before that is not for this watcher,
            # so the first change is made again until the stream reports one.
            while not seen:
                await patch_price(client, product["id"], next(prices))
                try:
                    change = await asyncio.wait_for(stream.get(), 2.0)
                except TimeoutError:
                    continue
                seen.append((change["old_price"], change["new_price"]))
            last = seen[0][1]
            for _ in range(2):
                price = next(prices)
                await patch_price(client, product["id"], price)
                change = await asyncio.wait_for(stream.get(), 20.0)
                assert change["product_id"] == product["id"]
                seen.append((change["old_price"], change["new_price"]))
                assert seen[-1] == (last, price)
                last = price
            watch.cancel()
            reader.cancel()
            # The connection goes on after the stream's reset.
            r = await client.request("GET", "/readyz")
            assert r.status == 200
            return seen

    assert len(run(main())) == 3


async def patch_price(client: http3.Client, product_id: int, price: str) -> None:
    body = json.dumps({"price": price}).encode()
    headers = {"content-type": "application/json", **AUTHORIZATION}
    r = await client.request("PATCH", f"/products/{product_id}", headers, body)
    assert r.status == 200, r.body


def test_problems_over_http3(served: Served) -> None:
    async def main() -> None:
        async with served.connect() as client:
            r = await client.request("GET", "/products/999999999")
            assert r.status == 404
            assert r.headers["content-type"] == "application/problem+json"
            problem = json.loads(r.body)
            assert problem["status"] == 404 and problem["code"] == "not_found"
            assert problem["instance"] == "/products/999999999"
            body = json.dumps({"name": "", "price": "-1", "category": "x"}).encode()
            headers = {"content-type": "application/json", **AUTHORIZATION}
            r = await client.request("POST", "/products", headers, body)
            assert r.status == 400
            assert "product.price" in {v["field"] for v in json.loads(r.body)["violations"]}
            r = await client.request(
                "POST", "/products", {"content-type": "application/json"}, b"{}"
            )
            assert r.status == 401  # credentials first: the body is not read
            r = await client.request("GET", "/products?" + "a" * 9000)
            assert (r.status, r.headers["content-type"]) == (414, "application/problem+json")

    run(main())


def test_a_head_over_the_limits_is_refused_over_http3(served: Served) -> None:
    """Over HTTP/3, Envoy's QUIC stack (quiche) refuses a head past the limits
    by resetting the request stream with H3_EXCESSIVE_LOAD, where HTTP/1.1 and
    HTTP/2 get a 431. Past the byte limit, when the request ended with its
    head (a GET), quiche then also closes that client's connection with
    H3_FRAME_UNEXPECTED ("Received FIN before finishing receiving HTTP
    headers"). Other connections go on."""

    async def main() -> None:
        async with served.connect() as bystander, served.connect() as client:
            # A stream on another connection, open while the refusals happen.
            watch = bystander.open("GET", "/products:watchPrices", {"accept": "text/event-stream"})
            assert (await watch.head()).status == 200
            many = [(f"x-h{i}", "v") for i in range(150)]  # --max-headers: 100
            r = await client.request("GET", "/readyz", many)
            assert r.reset == http3.Reset(H3_EXCESSIVE_LOAD) and r.status == 0
            r = await client.request("GET", "/readyz")  # same connection
            assert r.status == 200
            # --max-header-bytes: 16 KiB.
            r = await client.request("GET", "/readyz", {"x-big": "a" * 20000})
            assert r.reset == http3.Reset(H3_EXCESSIVE_LOAD) and r.status == 0
            try:
                r = await client.request("GET", "/readyz")
                assert r.status == 200
            except http3.ConnectionClosed as closed:
                assert closed.code == H3_FRAME_UNEXPECTED, closed
            r = await bystander.request("GET", "/readyz")
            assert r.status == 200
            watch.cancel()

    run(main())


def test_garbage_datagrams_leave_the_quic_port_serving(served: Served) -> None:
    """Datagrams that are no QUIC (or QUIC nobody asked for) are dropped or
    answered by the QUIC stack; the connection already open and new ones go on."""
    garbage = [
        b"\x00",
        os.urandom(1200),
        # A long header with a version nobody speaks: a version negotiation at most.
        b"\xc0\x1a\x2a\x3a\x4a\x08" + os.urandom(8) + b"\x08" + os.urandom(8) + os.urandom(1180),
        # An Initial of QUIC v1 whose lengths lie.
        b"\xc3\x00\x00\x00\x01\x14" + os.urandom(20) + b"\x00\x00\x44\xd0" + os.urandom(40),
        # A short header for a connection that does not exist.
        b"\x40" + os.urandom(1199),
        b"\xff" * 1500,
    ]

    async def main() -> None:
        async with served.connect() as client:
            r = await client.request("GET", "/readyz")
            assert r.status == 200
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for _ in range(50):
                    for datagram in garbage:
                        sock.sendto(datagram, ("127.0.0.1", served.port))
            r = await client.request("GET", "/readyz")
            assert r.status == 200
        async with served.connect() as fresh:
            r = await fresh.request("GET", "/products?page_size=1")
            assert r.status == 200

    run(main())
    assert served.server.process.poll() is None


@pytest.fixture(scope="module")
def strict(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server with a short idle timeout and two streams per connection."""
    tmp = tmp_path_factory.mktemp("http3-limits")
    cert, key = served.cert, served.cert.with_name("key.pem")

    def argv(port: int, _: int | None) -> list[str]:
        return [
            sys.executable, "-m", "twofold", "serve", "tests.e2e.grpc_app:app",
            "--server", "pyvoy", "--port", str(port),
            "--tls-cert", str(cert), "--tls-key", str(key), "--http3",
            "--idle-timeout", str(IDLE), "--max-concurrent-streams", "2",
        ]  # fmt: skip

    server = spawn(argv, tmp, tls=cert)
    yield Served(server, cert)
    server.stop()


IDLE = 1.0  # the strict server's --idle-timeout


def test_the_connection_limits_hold_over_quic(strict: Served) -> None:
    """--max-concurrent-streams is the QUIC connection's stream limit, and
    --idle-timeout closes a connection with no request open, not one whose
    request is quiet for longer (QUIC's own idle timer counts packets)."""
    sleep = {"content-type": "application/json"}

    async def main() -> None:
        async with strict.connect(wait=5 * IDLE + 5) as client:
            # What the server told the client in its transport parameters.
            assert client.peer_max_streams == 2
            body = json.dumps({"seconds": 2 * IDLE}).encode()
            r = await client.request("POST", "/streams.v1.Streams/Sleep", sleep, body)
            assert r.status == 200 and "n" in json.loads(r.body)
            # Now idle: the server closes the connection (NO_ERROR), in at most 5x the timeout.
            closed = await client.closed()
            assert closed.code == 0, closed

    run(main())


@pytest.mark.parametrize(
    ("content_type", "encode", "decode"),
    [
        (
            "application/grpc",
            lambda n: GRPC_APP.codec(Number).encode(Number(n)),
            lambda data: GRPC_APP.codec(Number).decode(data).n,
        ),
        (
            "application/connect+json",
            lambda n: json.dumps({"n": n}).encode(),
            lambda data: int(json.loads(data)["n"]),
        ),
    ],
)
def test_bidi_is_full_duplex_over_http3(
    strict: Served,
    content_type: str,
    encode: Callable[[int], bytes],
    decode: Callable[[bytes], int],
) -> None:
    """Each answer of a bidi stream (native gRPC, Connect) arrives before the
    next message is sent, on one HTTP/3 request stream."""

    async def main() -> tuple[list[int], http3.Response]:
        async with strict.connect() as client:
            headers = {"content-type": content_type, "te": "trailers"}
            call = client.open("POST", "/streams.v1.Streams/Double", headers, end=False)
            frames = Frames(call)
            answers = []
            for n in (5, 7, 11):
                call.send(frame(encode(n)))
                flags, data = await frames.next()
                assert flags == 0
                answers.append(decode(data))
            call.send(b"", end=True)
            rest = await frames.rest()
            return answers, rest

    answers, rest = run(main())
    assert answers == [10, 14, 22]
    if content_type == "application/grpc":
        assert rest.trailers["grpc-status"] == "0"
    else:  # Connect's end of stream: a last envelope, flag 0x02, with no error
        assert rest.body == frame(b"{}", END_STREAM)


class Frames:
    """The enveloped messages of a response, each as soon as its bytes are in."""

    def __init__(self, exchange: http3.Exchange) -> None:
        self.exchange = exchange
        self.chunks = aiter(exchange.chunks())
        self.buffer = b""

    async def next(self) -> tuple[int, bytes]:
        while len(self.buffer) < 5 or len(self.buffer) < 5 + int.from_bytes(self.buffer[1:5]):
            self.buffer += await anext(self.chunks)
        size = int.from_bytes(self.buffer[1:5])
        found = (self.buffer[0], self.buffer[5 : 5 + size])
        self.buffer = self.buffer[5 + size :]
        return found

    async def rest(self) -> http3.Response:
        """The response once it has ended, its body what came after the frames read."""
        async for chunk in self.chunks:
            self.buffer += chunk
        self.exchange.response.body = self.buffer
        return self.exchange.response
