"""Long polling on the catalog: ``GET /products:watchPrices?wait=&after_id=``
is held until a price changes, answered with the changes and a cursor, or 204
when ``wait`` passes; held polls take slots of the stream budget and give
them back however they end (twofold.wires.longpoll)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

from tests.e2e.databases import URL_ENV, Database, rows
from tests.e2e.server import Server, start
from tests.tokens import AUTHORIZATION

pytestmark = pytest.mark.postgresql

WATCH = "/products:watchPrices"
# Anonymous streams one address may hold (examples/catalog's ConcurrencyLimit).
PER_ADDRESS = 64


@pytest.fixture(scope="module")
def env(database: Database, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return database.env(tmp_path_factory.mktemp("catalog-longpoll"))


@pytest.fixture(scope="module")
def catalog(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A catalog of its own: the budget tests fill its stream slots."""
    server = start("examples.catalog:app", tmp_path_factory.mktemp("server"), env, "--no-grpc")
    yield server
    server.stop()


@pytest.fixture
def http(catalog: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=catalog.url, timeout=40.0, headers=AUTHORIZATION) as client:
        yield client


def product(http: httpx.Client) -> tuple[dict[str, Any], str]:
    """A product of a category of its own.

    A change in another category comes first, so that this one's have ids
    above 1 and ``after_id=1`` replays them all.
    """
    r = http.post("/products", json={"name": "Other", "price": "1.00", "category": "other"})
    set_price(http, r.json()["id"], "1.50")
    category = f"poll-{uuid.uuid4().hex[:8]}"
    r = http.post("/products", json={"name": "Lamp", "price": "10.00", "category": category})
    assert r.status_code == 201, r.text
    return r.json(), category


def set_price(http: httpx.Client, product_id: int, price: str) -> None:
    assert http.patch(f"/products/{product_id}", json={"price": price}).status_code == 200


def change_ids(env: dict[str, str], product_id: int) -> list[int]:
    """The price_changes rows of a product, as the database has them."""
    sql = "SELECT id FROM price_changes WHERE product_id = :p ORDER BY id"
    return [row[0] for row in rows(env[URL_ENV], sql, p=product_id)]


def last_change_id(http: httpx.Client, category: str) -> int:
    """The id of the latest change of ``category``, from a poll that replays them."""
    r = http.get(WATCH, params={"category": category, "after_id": 1, "wait": 5})
    assert r.status_code == 200, r.text
    return int(r.json()["cursor"])


async def held(url: str, params: dict[str, Any], **client: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=40.0, **client) as c:
        return await c.get(WATCH, params=params)


def test_a_held_poll_answers_with_the_change_and_its_cursor(
    catalog: Server, http: httpx.Client, env: dict[str, str]
) -> None:
    item, category = product(http)

    async def scenario() -> httpx.Response:
        poll = asyncio.ensure_future(held(catalog.url, {"category": category, "wait": 30}))
        # The poll is held: nothing has changed in its category yet.
        done, _ = await asyncio.wait({poll}, timeout=1.0)
        assert not done
        await asyncio.to_thread(set_price, http, item["id"], "11.00")
        return await poll

    r = asyncio.run(scenario())
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert set(body) == {"events", "cursor"}
    [event] = body["events"]
    assert event["product_id"] == item["id"]
    assert (event["old_price"], event["new_price"]) == ("10.00", "11.00")
    # The cursor is the event id: the price change's row id.
    assert body["cursor"] == str(event["id"])
    assert [event["id"]] == change_ids(env, item["id"])
    link = r.headers["link"]
    assert link.endswith('; rel="next"') and f"after_id={event['id']}" in link


def test_the_next_poll_gets_only_later_changes(http: httpx.Client) -> None:
    item, category = product(http)
    for price in ("11.00", "12.00", "13.00"):
        set_price(http, item["id"], price)
    first = http.get(WATCH, params={"category": category, "after_id": 1, "wait": 5})
    assert first.status_code == 200, first.text
    got = first.json()
    # Every change the poll missed, in one batch, oldest first.
    assert [e["new_price"] for e in got["events"]] == ["11.00", "12.00", "13.00"]
    ids = [e["id"] for e in got["events"]]
    assert ids == sorted(ids) and got["cursor"] == str(ids[-1])
    set_price(http, item["id"], "14.00")
    # Following the Link header is following the cursor.
    r = http.get(first.headers["link"].split(">")[0].lstrip("<"))
    assert r.status_code == 200, r.text
    [later] = r.json()["events"]
    assert later["new_price"] == "14.00" and later["id"] > ids[-1]
    # An earlier cursor gets the changes after it, no others.
    r = http.get(WATCH, params={"category": category, "after_id": ids[1], "wait": 5})
    assert [e["id"] for e in r.json()["events"]] == [ids[2], later["id"]]


def test_nothing_new_within_wait_is_a_204_with_the_same_cursor(http: httpx.Client) -> None:
    item, category = product(http)
    set_price(http, item["id"], "11.00")
    cursor = last_change_id(http, category)
    for wait in ("1", "0", "0.5"):
        r = http.get(WATCH, params={"category": category, "after_id": cursor, "wait": wait})
        assert r.status_code == 204, (wait, r.text)
        assert r.content == b""
        assert f"after_id={cursor}" in r.headers["link"]
    # Last-Event-ID is a cursor too, as on the event stream.
    r = http.get(
        WATCH, params={"category": category, "wait": 0}, headers={"Last-Event-ID": str(cursor)}
    )
    assert r.status_code == 204 and f"after_id={cursor}" in r.headers["link"]
    # No cursor sent: the poll starts from now, and gives none back.
    r = http.get(WATCH, params={"category": category, "wait": 0})
    assert r.status_code == 204 and "after_id" not in r.headers["link"]


@pytest.fixture(scope="module")
def short(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A catalog that holds a poll one second at most (Options.max_poll_wait)."""
    tmp: Path = tmp_path_factory.mktemp("catalog-short-polls")
    env = {**database.env(tmp), "CATALOG_MAX_POLL_WAIT": "1"}
    server = start("examples.catalog:app", tmp, env, "--no-grpc")
    yield server
    server.stop()


def test_an_absurd_wait_is_clamped_to_the_servers_maximum(short: Server) -> None:
    # Held a second, not a billion of them (nor until the client gives up
    # after its 40): a longer wait is the server's longest, not an error.
    with httpx.Client(base_url=short.url, timeout=40.0) as http:
        for wait in ("1e9", "86400", "inf", "31"):
            r = http.get(WATCH, params={"category": "none", "wait": wait})
            assert r.status_code == 204, (wait, r.text)


def test_a_bad_wait_or_cursor_is_a_400_problem(http: httpx.Client) -> None:
    for params in (
        {"wait": "-1"},
        {"wait": "abc"},
        {"wait": ""},
        {"wait": "nan"},
        {"wait": "1" * 40},
        {"wait": "5", "after_id": "-1"},
        {"wait": "5", "after_id": "abc"},
        {"wait": "5", "after_id": str(2**63)},
    ):
        r = http.get(WATCH, params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert problem["status"] == 400 and problem["code"] == "invalid_argument"
        field = "wait" if "after_id" not in params else "after_id"
        assert field in r.text


def test_a_poll_answers_json_or_xml_and_an_event_stream_stays_one(http: httpx.Client) -> None:
    r = http.get(WATCH, params={"wait": 0}, headers={"Accept": "text/event-stream"})
    assert r.status_code == 406, r.text
    r = http.get(WATCH, params={"wait": 0}, headers={"Accept": "application/json"})
    assert r.status_code == 204
    with http.stream("GET", WATCH, headers={"Accept": "text/event-stream"}) as s:
        assert s.status_code == 200
        assert s.headers["content-type"] == "text/event-stream"


def test_a_client_that_prefers_xml_polls_in_xml(http: httpx.Client) -> None:
    item, category = product(http)
    set_price(http, item["id"], "11.00")
    set_price(http, item["id"], "12.50")
    xml = {"Accept": "application/xml"}
    r = http.get(WATCH, params={"category": category, "after_id": 1, "wait": 5}, headers=xml)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/xml"
    # Read by the standard library's parser, as the OpenAPI document names it:
    # a <Batch> root, <events> repeated, <cursor>.
    root = ElementTree.fromstring(r.content)
    assert root.tag == "Batch"
    events = root.findall("events")
    assert [e.findtext("new_price") for e in events] == ["11.00", "12.50"]
    assert {e.findtext("product_id") for e in events} == {str(item["id"])}
    assert root.findtext("cursor") == events[-1].findtext("id")
    assert f"after_id={root.findtext('cursor')}" in r.headers["link"]
    # Nothing after the cursor: 204, the same in either representation.
    r = http.get(
        WATCH, params={"category": category, "after_id": root.findtext("cursor"), "wait": 0},
        headers=xml,
    )  # fmt: skip
    assert r.status_code == 204 and r.content == b""
    # Its problems are XML too.
    r = http.get(WATCH, params={"wait": "soon"}, headers=xml)
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+xml"
    assert ElementTree.fromstring(r.content).tag == "{urn:ietf:rfc:7807}problem"


def test_held_polls_take_stream_slots_and_give_them_back(
    catalog: Server, http: httpx.Client
) -> None:
    item, category = product(http)
    anonymous = {"limits": httpx.Limits(max_connections=PER_ADDRESS + 8)}

    async def scenario() -> None:
        params = {"category": category, "wait": 30}
        polls = [
            asyncio.ensure_future(held(catalog.url, params, **anonymous))
            for _ in range(PER_ADDRESS + 1)
        ]
        # Every slot one address may hold is held: the one poll more is
        # refused, at once, and the others are still held.
        done, _ = await asyncio.wait(polls, return_when=asyncio.FIRST_COMPLETED)
        [refused] = done
        polls.remove(refused)
        r = refused.result()
        assert r.status_code == 429, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert "retry-after" in r.headers
        assert not any(p.done() for p in polls)
        # A client that goes away gives its slot back: one more poll is taken.
        polls[0].cancel()
        await asyncio.wait({polls[0]})
        assert (await until_admitted(catalog.url, params)).status_code == 204
        # The change answers every held poll, and so frees every slot.
        await asyncio.to_thread(set_price, http, item["id"], "11.00")
        answers = await asyncio.gather(*polls[1:])
        assert {r.status_code for r in answers} == {200}
        assert {r.json()["events"][0]["new_price"] for r in answers} == {"11.00"}
        # All the slots are free again: as many polls as before are held.
        polls = [
            asyncio.ensure_future(held(catalog.url, {**params, "wait": 1}, **anonymous))
            for _ in range(PER_ADDRESS)
        ]
        assert {r.status_code for r in await asyncio.gather(*polls)} == {204}

    asyncio.run(scenario())


async def until_admitted(url: str, params: dict[str, Any]) -> httpx.Response:
    """A poll taken, once the server has seen a client go and freed its slot."""
    for _ in range(200):
        r = await held(url, {**params, "wait": 0})
        if r.status_code != 429:
            return r
        await asyncio.sleep(0.05)
    raise AssertionError("the slot of a client that went away was never given back")
