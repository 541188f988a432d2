"""REST details, in process: routing, decoding, statuses and problem documents."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import msgspec
import pytest

from twofold import App, Code, Context, Error, Options, Service


class Part(msgspec.Struct):
    id: int
    machine_id: int
    name: str
    tags: list[str] = []


class NewPart(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    tags: list[str] = []


service = Service("shop.v1")
machines = service.resource("machines")
parts = machines.resource("parts")
PARTS: dict[int, Part] = {}


@parts.create
async def create_part(machine_id: int, part: NewPart, ctx: Context) -> Part:
    created = Part(len(PARTS) + 1, machine_id, part.name, part.tags)
    PARTS[created.id] = created
    ctx.response_headers["x-part-count"] = str(len(PARTS))
    return created


@parts.get
async def get_part(machine_id: int, part_id: int) -> Part:
    part = PARTS.get(part_id)
    if part is None or part.machine_id != machine_id:
        raise Error(Code.NOT_FOUND, f"part {part_id} not found")
    return part


@parts.list
async def list_parts(machine_id: int, tags: list[str] = [], limit: int = 10) -> Part:  # noqa: B006
    return Part(0, machine_id, f"limit={limit}", tags)


@parts.action("rename")
async def rename_part(machine_id: int, part_id: int, name: str) -> Part:
    part = await get_part(machine_id, part_id)
    PARTS[part_id] = renamed = Part(part.id, machine_id, name, part.tags)
    return renamed


@service.procedure(http=("POST", "/explode"))
async def explode() -> Part:
    raise RuntimeError("secret /etc/passwd details")


Call = Callable[..., Awaitable[httpx.Response]]


def run(test: Callable[[httpx.AsyncClient], Awaitable[None]], app: App | None = None) -> None:
    async def main() -> None:
        transport = httpx.ASGITransport(app or App(service, options=Options(max_body_size=1000)))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await test(client)

    asyncio.run(main())


def check_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    doc: dict[str, Any] = r.json()
    assert doc["status"] == status and doc["code"] == code
    assert doc["type"] == "about:blank" and doc["instance"] == r.request.url.path
    return doc


def test_create_nested_with_location_and_response_headers() -> None:
    async def test(c: httpx.AsyncClient) -> None:
        r = await c.post("/machines/7/parts", json={"name": "gear", "tags": ["a"]})
        assert r.status_code == 201, r.text
        part = r.json()
        assert part["machine_id"] == 7 and part["tags"] == ["a"]
        assert r.headers["location"] == f"/machines/7/parts/{part['id']}"
        assert r.headers["x-part-count"] == str(len(PARTS))
        got = await c.get(r.headers["location"])
        assert got.json() == part
        check_problem(await c.get(f"/machines/8/parts/{part['id']}"), 404, "not_found")

    run(test)


def test_query_parameters() -> None:
    async def test(c: httpx.AsyncClient) -> None:
        r = await c.get("/machines/1/parts?tags=a&tags=b&limit=3&utm_source=x")
        assert r.json() == {"id": 0, "machine_id": 1, "name": "limit=3", "tags": ["a", "b"]}
        doc = check_problem(
            await c.get("/machines/1/parts?limit=1&limit=2"), 400, "invalid_argument"
        )
        assert doc["violations"] == [{"field": "limit", "description": "given more than once"}]
        doc = check_problem(await c.get("/machines/1/parts?limit=lots"), 400, "invalid_argument")
        assert doc["violations"][0]["field"] == "limit"

    run(test)


def test_action_takes_path_and_body() -> None:
    async def test(c: httpx.AsyncClient) -> None:
        part = (await c.post("/machines/2/parts", json={"name": "old"})).json()
        r = await c.post(f"/machines/2/parts/{part['id']}:rename", json={"name": "new"})
        assert r.status_code == 200 and r.json()["name"] == "new"
        r = await c.post(f"/machines/2/parts/{part['id']}:rename", json={"name": "x", "part_id": 9})
        assert check_problem(r, 400, "invalid_argument")["violations"][0]["field"] == "part_id"
        r = await c.post(f"/machines/2/parts/{part['id']}:rename")
        assert check_problem(r, 400, "invalid_argument")["violations"][0]["field"] == "name"
        check_problem(await c.post(f"/machines/2/parts/{part['id']}:melt"), 404, "not_found")

    run(test)


def test_verbs_head_options_and_allow() -> None:
    async def test(c: httpx.AsyncClient) -> None:
        r = await c.delete("/machines/1/parts")
        check_problem(r, 405, "unimplemented")
        assert r.headers["allow"] == "GET, HEAD, POST, OPTIONS"
        r = await c.options("/machines/1/parts")
        assert r.status_code == 204 and r.headers["allow"] == "GET, HEAD, POST, OPTIONS"
        get = await c.get("/machines/1/parts")
        head = await c.head("/machines/1/parts")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == get.headers["content-length"]

    run(test)


def test_body_limits_and_media_types() -> None:
    async def test(c: httpx.AsyncClient) -> None:
        r = await c.post("/machines/1/parts", json={"name": "x" * 2000})
        check_problem(r, 413, "resource_exhausted")
        r = await c.post(
            "/machines/1/parts",
            content=b"name=x",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        check_problem(r, 415, "invalid_argument")
        assert r.headers["accept-post"] == "application/json, application/xml"
        r = await c.post(
            "/machines/1/parts",
            content=b'{"name": "x"}',
            headers={"content-type": "application/vnd.part+json; charset=utf-8"},
        )
        assert r.status_code == 201
        r = await c.post(
            "/machines/1/parts", content=b"\xff\xfe", headers={"content-type": "application/json"}
        )
        check_problem(r, 400, "invalid_argument")
        check_problem(
            await c.post("/machines/1/parts", json={"name": "x", "extra": 1}),
            400,
            "invalid_argument",
        )
        check_problem(await c.post("/machines/1/parts"), 400, "invalid_argument")

    run(test)


def test_unexpected_exception_is_internal_without_details(caplog: pytest.LogCaptureFixture) -> None:
    async def test(c: httpx.AsyncClient) -> None:
        with caplog.at_level(logging.ERROR, logger="twofold"):
            r = await c.post("/explode", json={})
        doc = check_problem(r, 500, "internal")
        assert "passwd" not in r.text and "Traceback" not in r.text
        assert doc["detail"] == "internal error"
        assert "secret" in caplog.text  # logged for the operator

    run(test)


def test_interceptors_wrap_every_call_in_order() -> None:
    seen: list[str] = []

    async def outer(ctx: Context, request: Any, call_next: Any) -> Any:
        seen.append(f"outer:{ctx.protocol}:{ctx.method.name}")
        return await call_next(request, ctx)

    async def deny_renames(ctx: Context, request: Any, call_next: Any) -> Any:
        seen.append("inner")
        if ctx.method.name == "RenamePart":
            raise Error(Code.PERMISSION_DENIED, "no renames")
        return await call_next(request, ctx)

    app = App(service, interceptors=[outer, deny_renames])

    async def test(c: httpx.AsyncClient) -> None:
        part = (await c.post("/machines/3/parts", json={"name": "p"})).json()
        r = await c.post(f"/machines/3/parts/{part['id']}:rename", json={"name": "q"})
        check_problem(r, 403, "permission_denied")
        assert PARTS[part["id"]].name == "p"

    run(test, app)
    assert seen == ["outer:rest:CreatePart", "inner", "outer:rest:RenamePart", "inner"]
