"""The catalog keeps what it acknowledged, and says UNAVAILABLE while its database is away.

A crash: 8 writers create and reprice products against ``twofold serve
--workers 2`` until the whole process group is SIGKILLed mid-load; after a
restart every write that was answered 2xx reads back as it was answered (a
write in flight when the server died may or may not have happened: either is
right). An outage: the PostgreSQL server stops under a running catalog;
every wire answers UNAVAILABLE at once (REST 503 with Retry-After), never
500 and never a hang, and the catalog serves again by itself once the
database is back.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import pytest

from tests.e2e import postgres
from tests.e2e.databases import URL_ENV, Database, migrate
from tests.e2e.server import Server, kill_group, start
from tests.tokens import AUTHORIZATION, authorized

WRITERS = 8
ACKNOWLEDGED_BEFORE_THE_KILL = 120
WAIT = 60.0  # a bound on waiting for the load or a recovery, never a timing assertion
TIMEOUT = 30.0  # one request's: an answer that takes longer is a hang


@dataclass
class Product:
    """One writer's product: the answers it was given, and what may have happened since."""

    id: int
    name: str
    price: str
    # A write sent but not answered when the server died: it may have committed.
    maybe: str | None = None


@dataclass
class Writer:
    number: int
    url: str
    products: list[Product] = field(default_factory=list)
    acknowledged: int = 0
    failure: str = ""

    def run(self, stop: threading.Event) -> None:
        """Create a product, reprice it twice, again, until the server stops answering."""
        with httpx.Client(base_url=self.url, headers=AUTHORIZATION, timeout=TIMEOUT) as http:
            step = 0
            while not stop.is_set():
                step += 1
                try:
                    if step % 3 == 1:
                        self._create(http, step)
                    else:
                        self._reprice(http, self.products[-1], step)
                except httpx.TransportError as exc:
                    self.failure = f"killed: {exc!r}"  # the end of this writer's load
                    return
                except AssertionError as exc:
                    self.failure = f"refused: {exc}"
                    return

    def _create(self, http: httpx.Client, step: int) -> None:
        name = f"w{self.number}-{step}"
        body = {"name": name, "price": f"{step}.00", "category": f"durable-{self.number}"}
        answer = http.post("/products", json=body)
        if answer.status_code == 503:  # busy: nothing was written, the client may retry
            return
        assert answer.status_code == 201, answer.text
        self.products.append(Product(answer.json()["id"], name, body["price"]))
        self.acknowledged += 1

    def _reprice(self, http: httpx.Client, product: Product, step: int) -> None:
        price = f"{step}.50"
        product.maybe = price
        answer = http.patch(f"/products/{product.id}", json={"price": price})
        if answer.status_code == 503:
            return
        assert answer.status_code == 200, answer.text
        product.price, product.maybe = price, None
        self.acknowledged += 1


def _load(url: str) -> tuple[list[Writer], threading.Event, list[threading.Thread]]:
    writers = [Writer(number, url) for number in range(WRITERS)]
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop,), daemon=True) for w in writers]
    for thread in threads:
        thread.start()
    return writers, stop, threads


@pytest.mark.postgresql
def test_every_acknowledged_write_survives_a_kill(database: Database, tmp_path: Path) -> None:
    env = database.env(tmp_path)
    server = start("examples.catalog:app", tmp_path, env, "--workers", "2", group=True)
    try:
        writers, stop, threads = _load(server.url)
        deadline = time.monotonic() + WAIT
        while sum(w.acknowledged for w in writers) < ACKNOWLEDGED_BEFORE_THE_KILL:
            assert all(t.is_alive() for t in threads), [w.failure for w in writers]
            assert time.monotonic() < deadline, "the writers made too little progress"
            time.sleep(0.01)
        kill_group(server)  # mid-load: every writer has a request on its way
    finally:
        stop.set()
        server.stop()
    for thread in threads:
        thread.join(TIMEOUT)
    assert all(w.failure.startswith("killed") for w in writers), [w.failure for w in writers]
    answered = [p for w in writers for p in w.products]
    assert len(answered) >= ACKNOWLEDGED_BEFORE_THE_KILL // 3

    again = start("examples.catalog:app", tmp_path, env)
    try:
        with httpx.Client(base_url=again.url, timeout=TIMEOUT) as http:
            for product in answered:
                got = http.get(f"/products/{product.id}")
                assert got.status_code == 200, (product, got.text)
                kept = got.json()
                assert kept["name"] == product.name
                assert kept["price"] in {product.price, product.maybe}, (product, kept)
            made = http.post(
                "/products",
                json={"name": "after", "price": "1.00", "category": "durable"},
                headers=AUTHORIZATION,
            )
            assert made.status_code == 201, made.text
    finally:
        again.stop()


@pytest.fixture
def own_cluster() -> Iterator[postgres.Cluster]:
    """A PostgreSQL server of this test's own, to stop and start: the session's is shared."""
    directory = postgres.bindir()
    if directory is None:
        pytest.skip("PostgreSQL is not installed: run scripts/ensure-postgres (make test does)")
    cluster = postgres.start(directory)
    try:
        yield cluster
    finally:
        cluster.stop()


def _unavailable(server: Server, product: int) -> None:
    """Every wire answers UNAVAILABLE, at once, while the database is away."""
    with httpx.Client(base_url=server.url, timeout=TIMEOUT, headers=AUTHORIZATION) as http:
        for answer in (
            http.get(f"/products/{product}"),
            http.post("/products", json={"name": "x", "price": "1.00", "category": "gone"}),
            http.post(
                "/products",
                json={"name": "y", "price": "1.00", "category": "gone"},
                headers={"idempotency-key": "outage-1"},
            ),
        ):
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"].isdigit()
            assert answer.json()["code"] == "unavailable"
        connect = http.post(
            "/catalog.v1.CatalogService/GetProduct",
            json={"id": product},
            headers={"connect-protocol-version": "1"},
        )
        assert connect.status_code == 503 and connect.json()["code"] == "unavailable"
        rpc = http.post(
            "/jsonrpc",
            json={"jsonrpc": "2.0", "id": 1, "method": "GetProduct", "params": {"id": product}},
        )
        assert rpc.json()["error"]["data"]["code"] == "unavailable", rpc.text
    with grpc.insecure_channel(server.grpc_target) as channel:
        get = authorized(channel).unary_unary(
            "/catalog.v1.CatalogService/GetProduct",
            request_serializer=lambda _: b"\x08" + bytes([product]),
            response_deserializer=bytes,
        )
        with pytest.raises(grpc.RpcError) as info:
            get(None, timeout=TIMEOUT)
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE, info.value.details()


def _watch(url: str, category: str) -> queue.Queue[dict[str, object]]:
    """The price changes a REST watcher (Server-Sent Events) is told, as it is told them."""
    changes: queue.Queue[dict[str, object]] = queue.Queue()

    def read() -> None:
        with (
            contextlib.suppress(httpx.TransportError),  # the server stopping at the end
            httpx.Client(base_url=url, timeout=None) as http,
            http.stream("GET", "/products:watchPrices", params={"category": category}) as events,
        ):
            for line in events.iter_lines():
                if line.startswith("data:"):
                    changes.put(json.loads(line.removeprefix("data:")))

    threading.Thread(target=read, daemon=True).start()
    return changes


def _heard(
    http: httpx.Client, product: int, changes: queue.Queue[dict[str, object]], price: int
) -> dict[str, object]:
    """Change the price until the watcher tells of a change (it starts at some point)."""
    deadline = time.monotonic() + WAIT
    while True:
        price += 1
        patched = http.patch(f"/products/{product}", json={"price": f"{price}.00"})
        assert patched.status_code == 200, patched.text
        with contextlib.suppress(queue.Empty):
            return changes.get(timeout=0.25)
        assert time.monotonic() < deadline, "the watcher heard of no change"


def test_an_outage_is_unavailable_and_the_catalog_recovers_by_itself(
    own_cluster: postgres.Cluster, tmp_path: Path
) -> None:
    url = own_cluster.create_database()
    result = migrate(url)
    assert result.returncode == 0, result.stdout + result.stderr
    # The watch below is still open when the server stops: a short grace period
    # ends it then, instead of holding the stop for the default 10 s.
    server = start("examples.catalog:app", tmp_path, {URL_ENV: url}, "--grace", "1")
    try:
        with httpx.Client(base_url=server.url, timeout=TIMEOUT, headers=AUTHORIZATION) as http:
            made = http.post("/products", json={"name": "kept", "price": "2.00", "category": "o"})
            assert made.status_code == 201, made.text
            product = made.json()["id"]
            assert product < 128  # one byte in the gRPC message below
            changes = _watch(server.url, "o")  # open across the outage
            _heard(http, product, changes, 100)  # the watch has begun
            own_cluster.halt()
            _unavailable(server, product)
            _unavailable(server, product)  # and again: nothing stuck after the first
            own_cluster.resume()
            deadline = time.monotonic() + WAIT
            while (got := http.get(f"/products/{product}")).status_code != 200:
                assert got.status_code == 503, got.text
                assert time.monotonic() < deadline, "the catalog did not recover"
                time.sleep(0.2)
            assert got.json()["name"] == "kept"
            again = http.post("/products", json={"name": "new", "price": "3.00", "category": "o"})
            assert again.status_code == 201, again.text
            # The watch opened before the outage hears of changes made after it.
            assert _heard(http, product, changes, 500)["product_id"] == product
        assert "Traceback" not in server.output(), server.output()
    finally:
        server.stop()
