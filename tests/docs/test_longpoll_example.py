"""docs/rest.md, Long polling: the newsroom example answers as the page shows."""

from __future__ import annotations

import asyncio

import httpx

from docs_src.streaming import longpoll


def test_a_held_poll_answers_with_the_story_published_meanwhile() -> None:
    async def main() -> None:
        transport = httpx.ASGITransport(longpoll.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://docs") as client:
            watch = "/stories:watch"
            poll = asyncio.ensure_future(client.get(watch, params={"wait": 30}))
            done, _ = await asyncio.wait({poll}, timeout=0.5)
            assert not done  # held: nothing published yet
            r = await client.post("/stories", json={"headline": "Lamps in stock"})
            assert r.status_code == 200
            r = await poll
            # docs/rest.md shows this answer.
            assert r.status_code == 200
            assert r.json() == {"events": [{"id": 1, "headline": "Lamps in stock"}], "cursor": "1"}
            assert r.headers["link"] == '</stories:watch?wait=30&after_id=1>; rel="next"'
            # Nothing after 1 within the wait: 204, and the same cursor.
            r = await client.get(watch, params={"wait": 0, "after_id": 1})
            assert r.status_code == 204
            assert r.headers["link"] == '</stories:watch?wait=0&after_id=1>; rel="next"'
            # Stories published between two polls come in the next one, in one batch.
            for headline in ("Vases sold out", "Kettles back"):
                await client.post("/stories", json={"headline": headline})
            r = await client.get(watch, params={"wait": 30, "after_id": 1})
            assert [s["id"] for s in r.json()["events"]] == [2, 3]
            assert r.json()["cursor"] == "3"
            # A bad wait is a 400 problem; without wait the route is an event stream.
            r = await client.get(watch, params={"wait": "-1"})
            assert r.status_code == 400
            assert r.headers["content-type"] == "application/problem+json"

    longpoll.FEED.clear()
    asyncio.run(main())


def test_the_document_states_the_wait_parameter() -> None:
    op = longpoll.app.openapi["paths"]["/stories:watch"]["get"]
    wait = next(p for p in op["parameters"] if p["name"] == "wait")
    assert wait["schema"] == {"type": "number", "minimum": 0}
    assert "20 s at most" in wait["description"]
    assert set(op["responses"]) >= {"200", "204", "400", "406"}
    batch = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert batch["required"] == ["events", "cursor"]
