"""Idempotency keys hold in the case they exist for: a deadline cut the first call short.

A real catalog server (one process, on SQLite and on PostgreSQL) gets creates with an
Idempotency-Key and a deadline from 0.5 ms to twice the time a create takes
on this server under the same load (measured first, at least 12 ms), which
cancels the handler anywhere: before its transaction, during its commit,
after it, while the key is being released, or not at all. Each key is then
retried without a deadline (every third by two callers at once) until the
answer is definite. Whatever the interleaving, every key must have written
exactly once (rows counted in the database), racing retries must name the
same row, and no key may stay claimed. A server killed with SIGKILL mid-call
leaves keys that free up after their lease, and still written once.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import httpx
import pytest

from tests.e2e import grpc_stubs
from tests.e2e.databases import Database, rows
from tests.e2e.server import Server, start
from tests.security.catalog_app import LEASE
from tests.tokens import AUTHORIZATION

KEYS = 150  # per protocol
BATCH = 10  # keys in flight at once
ORDER_EVERY = 4  # every 4th key places an order (CreateOrder), the others create products
# How long a retry may keep hearing "still running" before the key counts as
# stuck: longer than the lease, after which a claimed key must be free again.
PATIENCE = LEASE + 15.0
RPC = "/catalog.v1.CatalogService"
# Answers that leave a key's outcome open: the client retries with the key.
INDEFINITE = ("aborted", "unavailable", "deadline_exceeded")
CLIENT_TIMEOUT = 60.0  # seconds any one attempt may take


@dataclass
class Answer:
    """What one attempt got: the created row's id, or the error code."""

    id: int | None = None
    code: str = ""


@dataclass
class Tally:
    products: dict[str, int] = field(default_factory=dict)  # key -> id
    orders: dict[str, int] = field(default_factory=dict)
    stuck: list[str] = field(default_factory=list)
    # The codes the stuck keys' retries heard: ABORTED, UNAVAILABLE or DEADLINE_EXCEEDED.
    stuck_codes: Counter[str] = field(default_factory=Counter)
    disagreements: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


Attempt = Callable[[str, int, str, float | None], Awaitable[Answer]]


@pytest.fixture(scope="module")
def url(database: Database, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The database of the module's server."""
    return database.new_url(tmp_path_factory.mktemp("idempotency"))


@pytest.fixture(scope="module")
def server(url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("idempotency-server")
    server = start("tests.security.catalog_app:app", tmp, {"CATALOG_DATABASE_URL": url})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModuleType, ModuleType]:
    return grpc_stubs.generate(tmp_path_factory.mktemp("grpc-stubs"))


def _rest(http: httpx.AsyncClient, user: int) -> Attempt:
    async def attempt(key: str, i: int, kind: str, deadline: float | None) -> Answer:
        headers = {"idempotency-key": key}
        if deadline is not None:
            headers["request-timeout"] = f"{deadline:.6f}"
        if kind == "order":
            url, body = f"/users/{user}/orders", {"product_id": 1, "quantity": i + 1}
        else:
            url, body = "/products", {"name": key, "price": "1.50", "category": "deadlines"}
        r = await http.post(url, json=body, headers=headers)
        if r.status_code == 201:
            return Answer(id=r.json()["id"])
        return Answer(code=r.json().get("code", str(r.status_code)))

    return attempt


def _connect(http: httpx.AsyncClient, user: int) -> Attempt:
    async def attempt(key: str, i: int, kind: str, deadline: float | None) -> Answer:
        headers = {"connect-protocol-version": "1"}
        if deadline is not None:
            # Whole milliseconds: Connect's header has no finer unit.
            headers["connect-timeout-ms"] = str(max(1, round(deadline * 1000)))
        if kind == "order":
            url = f"{RPC}/CreateOrder"
            body = {"userId": user, "order": {"productId": 1, "quantity": i + 1}}
        else:
            url = f"{RPC}/CreateProduct"
            body = {"product": {"name": key, "price": "1.50", "category": "deadlines"}}
        r = await http.post(url, json={**body, "idempotencyKey": key}, headers=headers)
        if r.status_code == 200:
            return Answer(id=int(r.json()["id"]))
        return Answer(code=r.json().get("code", str(r.status_code)))

    return attempt


def _grpc(channel: grpc.aio.Channel, stubs: tuple[ModuleType, ModuleType], user: int) -> Attempt:
    pb2, pb2_grpc = stubs
    stub = pb2_grpc.CatalogServiceStub(channel)
    metadata = tuple(AUTHORIZATION.items())

    async def attempt(key: str, i: int, kind: str, deadline: float | None) -> Answer:
        # Without a deadline of its own, as long as REST's and Connect's client
        # waits: a call that never ends fails the test rather than hanging it.
        timeout = deadline if deadline is not None else CLIENT_TIMEOUT
        try:
            if kind == "order":
                order = pb2.NewOrder(product_id=1, quantity=i + 1)
                request = pb2.CreateOrderRequest(user_id=user, order=order, idempotency_key=key)
                reply = await stub.CreateOrder(request, timeout=timeout, metadata=metadata)
            else:
                product = pb2.NewProduct(name=key, price="1.50", category="deadlines")
                request = pb2.CreateProductRequest(product=product, idempotency_key=key)
                reply = await stub.CreateProduct(request, timeout=timeout, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            return Answer(code=exc.code().name.lower())
        return Answer(id=reply.id)

    return attempt


async def _until_definite(attempt: Attempt, key: str, i: int, kind: str) -> Answer:
    """Retry without a deadline while the key is still claimed by an earlier call."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + PATIENCE
    while True:
        answer = await attempt(key, i, kind, None)
        # ABORTED: the key is still claimed; UNAVAILABLE: the database was busy
        # (SQLite's lock past its timeout) and nothing was written;
        # DEADLINE_EXCEEDED: the server's own default deadline (30 s) passed
        # first, on a machine slow enough. A client retries each with the same key.
        if answer.code not in INDEFINITE or loop.time() > give_up:
            return answer
        await asyncio.sleep(0.05)


async def _one_key(attempt: Attempt, key: str, i: int, deadline: float, tally: Tally) -> None:
    kind = "order" if i % ORDER_EVERY == ORDER_EVERY - 1 else "product"
    first = await attempt(key, i, kind, deadline)
    if first.id is None and first.code not in INDEFINITE:
        tally.unexpected.append(f"{key}: first call {first.code}")
    # Every third key, two callers retry at once: their claims race as well.
    callers = 2 if i % 3 == 0 else 1
    answers = await asyncio.gather(
        *(_until_definite(attempt, key, i, kind) for _ in range(callers))
    )
    ids = {a.id for a in answers}
    if any(a.code in INDEFINITE for a in answers):
        tally.stuck.append(key)
        tally.stuck_codes.update(a.code for a in answers if a.code)
    elif any(a.id is None for a in answers):
        tally.unexpected.append(f"{key}: retried {[a.code for a in answers]}")
    elif len(ids) != 1 or (first.id is not None and ids != {first.id}):
        tally.disagreements.append(f"{key}: {first.id} then {ids}")
    else:
        (tally.orders if kind == "order" else tally.products)[key] = ids.pop()  # type: ignore[assignment]


async def _write_time(attempts: dict[str, Attempt]) -> float:
    """The median time of an uncut create, each protocol running a batch at once
    as the sweep does: deadlines scaled to it fall before, during and after the
    write on a fast machine and on a loaded one alike (fixed ones all fall
    before it on a slow one)."""
    loop = asyncio.get_running_loop()

    async def timed(attempt: Attempt, key: str) -> float:
        began = loop.time()
        assert (await _until_definite(attempt, key, 0, "product")).id is not None
        return loop.time() - began

    times = []
    for round_ in range(2):
        times += await asyncio.gather(
            *(
                timed(attempt, f"calibrate-{protocol}-{round_}-{i}")
                for protocol, attempt in attempts.items()
                for i in range(BATCH)
            )
        )
    return statistics.median(times)


async def _hammer(attempt: Attempt, prefix: str, seed: int, longest: float) -> Tally:
    rng = random.Random(seed)
    tally = Tally()
    keys = [(f"{prefix}-{i}-{rng.getrandbits(32):08x}", i) for i in range(KEYS)]
    for start_at in range(0, KEYS, BATCH):
        batch = keys[start_at : start_at + BATCH]
        await asyncio.gather(
            *(_one_key(attempt, key, i, rng.uniform(0.0005, longest), tally) for key, i in batch)
        )
    return tally


def _setup(server: Server) -> dict[str, int]:
    """A product to order and one user per protocol (so their orders can be counted)."""
    with httpx.Client(base_url=server.url, headers=AUTHORIZATION, timeout=30) as http:
        product = {"name": "orderable", "price": "2.00", "category": "deadlines"}
        assert http.post("/products", json=product).json()["id"] == 1
        users = {}
        for protocol in ("rest", "connect", "grpc"):
            user = {"name": protocol, "email": f"{protocol}@deadlines.test"}
            users[protocol] = http.post("/users", json=user).json()["id"]
    return users


def _index(key: str) -> int:
    """Which of a protocol's keys this is (keys are ``protocol-i-random``)."""
    return int(key.split("-")[1])


def _check(url: str, protocol: str, user: int, tally: Tally) -> None:
    """Exactly once: no key answered two ways, none written twice, every answered
    key written with the answer's id. A stuck key (never answered, which fails
    the test) may have written once or not at all."""
    assert tally.unexpected == []
    assert tally.disagreements == []
    written: dict[int, list[int]] = {}
    products = rows(url, "SELECT name, id FROM products WHERE name LIKE :p", p=f"{protocol}-%")
    for name, id in products:
        written.setdefault(_index(name), []).append(id)
    # An order's quantity names its key: key i orders i + 1.
    orders = rows(url, "SELECT quantity, id FROM orders WHERE user_id = :user", user=user)
    for quantity, id in orders:
        written.setdefault(quantity - 1, []).append(id)
    twice = sorted(i for i, ids in written.items() if len(ids) > 1)
    assert twice == [], f"{len(twice)} keys written twice"
    stuck = {_index(key) for key in tally.stuck}
    answered = {_index(key): id for key, id in (tally.products | tally.orders).items()}
    assert {i: ids[0] for i, ids in written.items() if i not in stuck} == answered
    assert len(answered) + len(stuck) == KEYS


@pytest.mark.postgresql
def test_deadlines_neither_duplicate_nor_stick_a_key(
    url: str, server: Server, stubs: tuple[ModuleType, ModuleType]
) -> None:
    users = _setup(server)

    async def main() -> dict[str, Tally]:
        limits = httpx.Limits(max_connections=2 * 2 * BATCH + 4)  # REST's and Connect's
        async with (
            httpx.AsyncClient(
                base_url=server.url, headers=AUTHORIZATION, timeout=CLIENT_TIMEOUT, limits=limits
            ) as http,
            grpc.aio.insecure_channel(server.grpc_target) as channel,
        ):
            attempts = {
                "rest": _rest(http, users["rest"]),
                "connect": _connect(http, users["connect"]),
                "grpc": _grpc(channel, stubs, users["grpc"]),
            }
            # The three protocols at once: their keys interleave on the server
            # as well, and the sweep takes the time of one.
            longest = max(0.012, 2 * await _write_time(attempts))
            tallies = await asyncio.gather(
                *(
                    _hammer(attempt, protocol, seed, longest)
                    for seed, (protocol, attempt) in enumerate(attempts.items())
                )
            )
            return dict(zip(attempts, tallies, strict=True))

    tallies = asyncio.run(main())
    for protocol, tally in tallies.items():
        _check(url, protocol, users[protocol], tally)
    stuck = {
        protocol: f"{len(tally.stuck)} ({dict(tally.stuck_codes)})"
        for protocol, tally in tallies.items()
        if tally.stuck
    }
    # Liveness, on SQLite too: every key's retries are answered within the
    # patience, so no cancelled call may leave SQLite's write lock held
    # (examples.catalog.sqlite._Connection).
    assert stuck == {}, f"keys left unanswered: {stuck}"
    assert rows(url, "SELECT COUNT(*) FROM idempotency_keys WHERE response IS NULL") == [(0,)]
    log = server.output()
    assert "Traceback" not in log
    assert "Exception during reset" not in log


@pytest.mark.postgresql
def test_a_replayed_key_never_names_another_product(server: Server) -> None:
    # SQLite gave a deleted row's id to the next insert: the stored answer of
    # an old key then described a product that was not the one it created.
    with httpx.Client(base_url=server.url, headers=AUTHORIZATION, timeout=30) as http:

        def write(method: str, url: str, **kwargs: Any) -> httpx.Response:
            # As a client does: UNAVAILABLE (the calls the sweep above left
            # queued for SQLite's lock, on a slow machine) wrote nothing; retry,
            # for a while: a lock that never frees is a failure, said at once.
            give_up = time.monotonic() + 30
            while True:
                r = http.request(method, url, **kwargs)
                if r.status_code != 503 or time.monotonic() > give_up:
                    return r
                time.sleep(0.5)

        body = {"name": "short-lived", "price": "3.00", "category": "ids"}
        created = write("POST", "/products", json=body, headers={"idempotency-key": "ids-1"})
        assert created.status_code == 201, created.text
        first = created.json()
        assert write("DELETE", f"/products/{first['id']}").status_code == 204
        other = {**body, "name": "successor"}
        second = write("POST", "/products", json=other, headers={"idempotency-key": "ids-2"})
        assert second.json()["id"] > first["id"], second.text
        replay = write("POST", "/products", json=body, headers={"idempotency-key": "ids-1"})
        assert replay.json() == first
        assert http.get(f"/products/{first['id']}").status_code == 404


@pytest.mark.postgresql
def test_a_server_killed_mid_call_leaves_keys_that_free_up_and_write_once(
    database: Database, tmp_path: Path
) -> None:
    url = database.new_url(tmp_path)
    env = {"CATALOG_DATABASE_URL": url}
    keys = [f"killed-{i}" for i in range(100)]
    first = start("tests.security.catalog_app:app", tmp_path, env, "--no-grpc")

    async def create(http: httpx.AsyncClient, key: str) -> Answer:
        body = {"name": key, "price": "1.00", "category": "killed"}
        try:
            r = await http.post("/products", json=body, headers={"idempotency-key": key})
        except httpx.TransportError:
            return Answer(code="gone")
        if r.status_code == 201:
            return Answer(id=r.json()["id"])
        return Answer(code=r.json().get("code", str(r.status_code)))

    async def hit_and_kill() -> None:
        async with httpx.AsyncClient(base_url=first.url, headers=AUTHORIZATION) as http:
            calls = [asyncio.create_task(create(http, key)) for key in keys]
            # Once a few are answered, the others are mid-call or not yet read.
            for answered, call in enumerate(asyncio.as_completed(calls)):
                await call
                if answered == 10:
                    break
            first.process.kill()  # SIGKILL: no clean-up of any kind
            await asyncio.gather(*calls)

    asyncio.run(hit_and_kill())
    first.process.wait()
    second = start("tests.security.catalog_app:app", tmp_path, env, "--no-grpc")
    try:

        async def retry_all() -> dict[str, Answer]:
            async with httpx.AsyncClient(base_url=second.url, headers=AUTHORIZATION) as http:

                async def until_definite(key: str) -> Answer:
                    give_up = asyncio.get_running_loop().time() + PATIENCE
                    while True:
                        answer = await create(http, key)
                        if answer.code != "aborted" or asyncio.get_running_loop().time() > give_up:
                            return answer
                        await asyncio.sleep(0.1)

                answers = await asyncio.gather(*(until_definite(key) for key in keys))
                return dict(zip(keys, answers, strict=True))

        answers = asyncio.run(retry_all())
    finally:
        second.stop()
    assert [key for key, answer in answers.items() if answer.id is None] == []
    products = rows(url, "SELECT name, id FROM products")
    assert len(products) == len(keys)  # not one written twice
    assert dict(products) == {key: answer.id for key, answer in answers.items()}
