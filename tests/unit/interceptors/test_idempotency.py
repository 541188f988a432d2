"""Idempotency keys (twofold.interceptors.idempotency): retries return the first answer, once."""

from __future__ import annotations

import asyncio
import time

import httpx
import msgspec
import pytest

from tests.asgi import ASGI
from twofold import App, Code, Context, Deadlines, Error, IdempotencyKeys, Service
from twofold.interceptors import idempotency
from twofold.interceptors.idempotency import Claim, MemoryStore, Record, _fingerprint, _finish


class Ticket(msgspec.Struct, kw_only=True):
    id: int
    seat: str


class NewTicket(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    seat: str


service = Service("box.v1")
tickets = service.resource("tickets")
SOLD: list[Ticket] = []


@tickets.create
async def create_ticket(ticket: NewTicket, idempotency_key: str = "") -> Ticket:
    if ticket.seat == "broken":
        raise Error(Code.UNAVAILABLE, "try again")
    SOLD.append(Ticket(id=len(SOLD) + 1, seat=ticket.seat))
    return SOLD[-1]


@tickets.get
async def get_ticket(id: int) -> Ticket:
    return SOLD[id - 1]


store = MemoryStore()
app = App(service, interceptors=[IdempotencyKeys(store, ttl=60)])


call = ASGI(app).request


@pytest.fixture(autouse=True)
def fresh() -> None:
    SOLD.clear()
    store.entries.clear()


def test_a_retried_post_returns_the_first_answer() -> None:
    first = call("POST", "/tickets", json={"seat": "A1"}, headers={"idempotency-key": "k1"})
    assert first.status_code == 201
    again = call("POST", "/tickets", json={"seat": "A1"}, headers={"idempotency-key": "k1"})
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert len(SOLD) == 1
    other = call("POST", "/tickets", json={"seat": "A1"}, headers={"idempotency-key": "k2"})
    assert other.json()["id"] == 2
    assert call("POST", "/tickets", json={"seat": "A1"}).json()["id"] == 3  # no key, no memory


def test_the_same_key_with_another_body_is_422_and_writes_nothing() -> None:
    call("POST", "/tickets", json={"seat": "A1"}, headers={"idempotency-key": "k"})
    r = call("POST", "/tickets", json={"seat": "B2"}, headers={"idempotency-key": "k"})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "invalid_argument"
    assert len(SOLD) == 1


@pytest.mark.parametrize("key", ["x" * 256, "caf\u00e9", "tab\there"])
def test_a_bad_key_is_400(key: str) -> None:
    r = call("POST", "/tickets", json={"seat": "A1"}, headers={"idempotency-key": key.encode()})
    assert r.status_code == 400
    assert r.json()["violations"][0]["field"] == "idempotency_key"
    assert SOLD == []


def test_a_key_of_255_characters_is_fine() -> None:
    r = call("POST", "/tickets", json={"seat": "A1"}, headers={"idempotency-key": "x" * 255})
    assert r.status_code == 201


def test_a_failed_call_can_be_retried_with_its_key() -> None:
    r = call("POST", "/tickets", json={"seat": "broken"}, headers={"idempotency-key": "k"})
    assert r.status_code == 503
    assert store.entries == {}


def test_rpc_callers_send_the_field() -> None:
    body = {"ticket": {"seat": "C3"}, "idempotencyKey": "rpc-1"}
    first = call("POST", "/box.v1.BoxService/CreateTicket", json=body)
    assert first.status_code == 200, first.text
    assert call("POST", "/box.v1.BoxService/CreateTicket", json=body).json() == first.json()
    assert len(SOLD) == 1
    body["ticket"] = {"seat": "D4"}
    reused = call("POST", "/box.v1.BoxService/CreateTicket", json=body)
    assert reused.status_code == 400
    assert reused.json()["code"] == "invalid_argument"
    rpc = {"jsonrpc": "2.0", "id": 1, "method": "CreateTicket", "params": body}
    assert call("POST", "/jsonrpc", json=rpc).json()["error"]["data"]["code"] == "invalid_argument"


def test_a_call_still_running_is_aborted() -> None:
    request = service.methods["CreateTicket"].input_type(ticket=NewTicket(seat="A1"))

    async def go() -> None:
        claim = Claim("box.v1.BoxService/CreateTicket", "k", "another call")
        assert await store.reserve(claim, _fingerprint(request), 1e12) is None

    asyncio.run(go())
    r = call("POST", "/tickets", json={"seat": "A1"}, headers={"idempotency-key": "k"})
    assert r.status_code == 409
    assert r.json()["code"] == "aborted"
    assert SOLD == []


def test_a_lease_expires_and_the_late_call_cannot_answer_any_more() -> None:
    async def go() -> None:
        late, retry = Claim("m", "k", "late"), Claim("m", "k", "retry")
        assert await store.reserve(late, b"x", time.time() - 1) is None  # its process died
        assert await store.reserve(retry, b"x", time.time() + 60) is None  # taken over
        with pytest.raises(Error) as refused:
            await store.complete(late, b"{}", 1e12)
        assert refused.value.code is Code.ABORTED
        await store.release(late)  # not its key any more: nothing happens
        await store.complete(retry, b'{"id": 1}', 1e12)
        await store.release(retry)  # answered: kept
        assert await store.reserve(Claim("m", "k", "third"), b"x", 1e12) == Record(
            b"x", b'{"id": 1}'
        )

    asyncio.run(go())


def test_keys_expire() -> None:
    async def go() -> None:
        assert await store.reserve(Claim("m", "k", "1"), b"x", 0.0) is None
        assert await store.reserve(Claim("m", "k", "2"), b"y", 1e12) is None  # the old one expired

    asyncio.run(go())


# A handler that completes its key with its write, then goes on: the deadline
# may cancel it before (nothing written, key freed) or after (key answered).
ledger = Service("ledger.v1")
entries = ledger.resource("entries")
WRITTEN: list[Ticket] = []


@entries.create
async def create_entry(entry: NewTicket, ctx: Context, idempotency_key: str = "") -> Ticket:
    await asyncio.sleep(0.02 if entry.seat == "slow before" else 0)
    WRITTEN.append(Ticket(id=len(WRITTEN) + 1, seat=entry.seat))
    # No await between the write and the completion: atomic on the event loop.
    await idempotency.complete(ctx, WRITTEN[-1])
    await asyncio.sleep(0.02 if entry.seat == "slow after" else 0)
    return WRITTEN[-1]


ledger_store = MemoryStore()
ledger_app = App(ledger, interceptors=[Deadlines(), IdempotencyKeys(ledger_store, lease=5)])


def call_ledger(seat: str, headers: dict[str, str]) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(ledger_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post("/entries", json={"seat": seat}, headers=headers)

    return asyncio.run(go())


@pytest.mark.parametrize("seat", ["slow before", "slow after"])
def test_a_deadline_leaves_the_key_free_or_answered_never_stuck(seat: str) -> None:
    WRITTEN.clear()
    key = {"idempotency-key": seat.replace(" ", "-")}
    cut = call_ledger(seat, {**key, "request-timeout": "0.01"})
    assert cut.status_code == 504
    assert len(WRITTEN) == (1 if seat == "slow after" else 0)
    retried = call_ledger(seat, key)
    assert retried.status_code == 201
    assert len(WRITTEN) == 1  # written once, whenever the deadline fired
    assert retried.json() == msgspec.to_builtins(WRITTEN[0])
    assert all(record.response for _, _, record in ledger_store.entries.values())


def test_clean_up_runs_to_its_end_when_cancelled_again() -> None:
    done: list[str] = []

    async def release() -> None:
        await asyncio.sleep(0.01)
        done.append("released")

    async def go() -> None:
        task = asyncio.create_task(_finish(release(), "release"))
        await asyncio.sleep(0)
        task.cancel()  # a second cancellation, while it cleans up
        with pytest.raises(asyncio.CancelledError):
            await task
        assert done == ["released"]

    asyncio.run(go())


def test_openapi_documents_the_header_and_422() -> None:
    post = app.openapi["paths"]["/tickets"]["post"]
    assert [p["name"] for p in post["parameters"]] == ["Idempotency-Key"]
    assert post["parameters"][0]["schema"]["maxLength"] == 255
    assert "422" in post["responses"]
