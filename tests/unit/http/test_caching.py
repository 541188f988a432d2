"""Validators, Cache-Control, conditional writes and list Links, in process (http.caching)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import msgspec
import pytest

from tests.asgi import ASGI
from twofold import (
    App,
    Cache,
    Code,
    Context,
    Error,
    Idempotency,
    Service,
    check_etag,
    check_unmodified,
)
from twofold.http.caching import (
    PreconditionFailed,
    etag,
    http_date,
    if_match,
    last_modified,
    none_match,
    not_modified_since,
)


class Note(msgspec.Struct, kw_only=True):
    id: int
    text: str
    etag: str = ""


class Page(msgspec.Struct, kw_only=True):
    notes: list[Note]
    next_page_token: str = ""


class Report(msgspec.Struct, kw_only=True):
    words: int


class NotePatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    text: str


service = Service("notes.v1")
notes = service.resource("notes")
NOTES: dict[int, Note] = {}


def _store(note: Note) -> Note:
    version = int(NOTES[note.id].etag[1:]) + 1 if note.id in NOTES else 1
    NOTES[note.id] = stored = Note(id=note.id, text=note.text, etag=f"v{version}")
    return stored


def _find(id: int) -> Note:
    if id not in NOTES:
        raise Error(Code.NOT_FOUND, f"note {id} does not exist")
    return NOTES[id]


@notes.get(cache=Cache(max_age=60, public=True))
async def get_note(id: int) -> Note:
    return _find(id)


@notes.list
async def list_notes(page_size: int = 2, page_token: str = "", q: str = "") -> Page:
    ids = sorted(NOTES)
    start = int(page_token or 0)
    more = start + page_size < len(ids)
    return Page(
        notes=[NOTES[i] for i in ids[start : start + page_size]],
        next_page_token=str(start + page_size) if more else "",
    )


@notes.update
async def update_note(id: int, note: NotePatch, etag: str = "") -> Note:
    check_etag(etag, _find(id).etag, f"note {id}")
    return _store(Note(id=id, text=note.text))


@notes.delete
async def delete_note(id: int, etag: str = "") -> None:
    check_etag(etag, _find(id).etag)
    del NOTES[id]


@notes.action("touch")
async def touch_note(id: int) -> Note:
    """A write without an etag field: If-Match cannot be honoured atomically."""
    return _store(_find(id))


@service.procedure(idempotency=Idempotency.NO_SIDE_EFFECTS, cache=Cache(private=True, max_age=5))
async def count_words() -> Report:
    return Report(words=sum(len(n.text.split()) for n in NOTES.values()))


app = App(service)


call = ASGI(app).request


@pytest.fixture(autouse=True)
def fresh() -> None:
    NOTES.clear()
    for i in (1, 2, 3):
        _store(Note(id=i, text=f"note number {i}"))


def test_cache_header_values() -> None:
    assert Cache().header == b"no-cache"
    assert Cache(max_age=60, public=True).header == b"public, max-age=60"
    assert Cache(max_age=0, private=True).header == b"private, max-age=0"
    assert Cache(no_store=True, max_age=9).header == b"no-store"
    with pytest.raises(ValueError):
        Cache(max_age=-1)
    with pytest.raises(ValueError):
        Cache(public=True, private=True)


def test_etag_is_the_version_field_or_a_digest_of_the_body() -> None:
    assert etag(Note(id=1, text="a", etag="v7"), b"ignored") == b'"v7"'
    assert etag(Note(id=1, text="a", etag="v7"), b"", gzip=True) == b'"v7-gzip"'
    digest = etag(Report(words=1), b'{"words":1}')
    assert digest == etag(Report(words=1), b'{"words":1}')  # stable across calls
    assert digest != etag(Report(words=2), b'{"words":2}')
    assert digest.startswith(b'"') and digest.endswith(b'"') and b"W/" not in digest


def test_if_none_match_compares_weakly() -> None:
    assert none_match(b'"a", W/"v7"', b'"v7"')
    assert none_match(b"*", b'"v7"')
    assert not none_match(b'"v8"', b'"v7"')
    assert not none_match(b"garbage", b'"v7"')


@pytest.mark.parametrize(
    ("value", "expected"), [('"v7"', "v7"), (' "v7" ', "v7"), ("*", ""), ('"a-b_c"', "a-b_c")]
)
def test_if_match_values(value: str, expected: str) -> None:
    assert if_match(value) == expected


@pytest.mark.parametrize("value", ['W/"v7"'])
def test_a_weak_if_match_never_matches(value: str) -> None:
    with pytest.raises(PreconditionFailed):
        if_match(value)


@pytest.mark.parametrize("value", ["v7", '"v7', '"v7", "v8"', '""', '"a b"', "", '"\x01"'])
def test_a_malformed_if_match_is_invalid(value: str) -> None:
    with pytest.raises(Error) as info:
        if_match(value)
    assert info.value.code is Code.INVALID_ARGUMENT
    assert not isinstance(info.value, PreconditionFailed)


def test_check_etag() -> None:
    check_etag("", "v1")
    check_etag("v1", "v1")
    with pytest.raises(PreconditionFailed) as info:
        check_etag("v0", "v1")
    assert info.value.code is Code.ABORTED


def test_a_read_has_etag_cache_control_and_vary() -> None:
    r = call("GET", "/notes/1")
    assert r.status_code == 200
    assert r.headers["etag"] == '"v1"'
    assert r.headers["cache-control"] == "public, max-age=60"
    assert r.headers["vary"] == "Accept, Accept-Encoding"
    head = call("HEAD", "/notes/1")
    assert head.headers["etag"] == '"v1"' and head.content == b""


def test_if_none_match_is_304_without_a_body() -> None:
    for verb in ("GET", "HEAD"):
        r = call(verb, "/notes/1", headers={"if-none-match": '"v0", "v1"'})
        assert r.status_code == 304
        assert r.content == b""
        assert r.headers["etag"] == '"v1"'
        assert r.headers["cache-control"] == "public, max-age=60"
        assert "content-length" not in r.headers
    assert call("GET", "/notes/1", headers={"if-none-match": '"v0"'}).status_code == 200


def test_defaults_are_no_cache_for_reads_and_no_store_for_writes_and_errors() -> None:
    listed = call("GET", "/notes")
    assert listed.headers["cache-control"] == "no-cache"
    # No etag field on a page: the tag is a digest of the body, and it validates.
    tag = listed.headers["etag"]
    assert call("GET", "/notes", headers={"if-none-match": tag}).status_code == 304
    written = call("PATCH", "/notes/1", json={"text": "new"})
    assert written.headers["cache-control"] == "no-store"
    assert written.headers["etag"] == '"v2"'  # the new version, for the next If-Match
    missing = call("GET", "/notes/99")
    assert missing.status_code == 404
    assert missing.headers["cache-control"] == "no-store"
    assert "etag" not in missing.headers


def test_if_match_makes_a_write_conditional() -> None:
    r = call("PATCH", "/notes/1", json={"text": "first"}, headers={"if-match": '"v1"'})
    assert r.status_code == 200, r.text
    assert r.json()["etag"] == "v2"
    stale = call("PATCH", "/notes/1", json={"text": "second"}, headers={"if-match": '"v1"'})
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    doc = stale.json()
    assert doc["code"] == "aborted" and doc["title"] == "Precondition Failed"
    assert NOTES[1].text == "first"  # nothing written
    assert call("DELETE", "/notes/1", headers={"if-match": '"v1"'}).status_code == 412
    assert call("DELETE", "/notes/1", headers={"if-match": '"v2"'}).status_code == 204
    assert 1 not in NOTES


@pytest.mark.parametrize(
    ("value", "status", "code"),
    [
        ('W/"v1"', 412, "aborted"),
        ("v1", 400, "invalid_argument"),
        ('"v1", "v2"', 400, "invalid_argument"),
        ('"', 400, "invalid_argument"),
    ],
)
def test_bad_if_match_writes_nothing(value: str, status: int, code: str) -> None:
    r = call("PATCH", "/notes/1", json={"text": "x"}, headers={"if-match": value})
    assert r.status_code == status
    assert r.json()["code"] == code
    assert NOTES[1].text == "note number 1"


def test_if_match_star_only_asks_that_the_item_exists() -> None:
    assert call("PATCH", "/notes/1", json={"text": "x"}, headers={"if-match": "*"}).is_success
    r = call("PATCH", "/notes/9", json={"text": "x"}, headers={"if-match": "*"})
    assert r.status_code == 404


def test_if_match_on_a_write_without_an_etag_field_is_refused() -> None:
    r = call("POST", "/notes/1:touch", headers={"if-match": '"v1"'})
    assert r.status_code == 400
    assert r.json()["violations"][0]["field"] == "If-Match"
    assert NOTES[1].etag == "v1"


def test_if_unmodified_since_on_a_write_without_the_field_is_refused() -> None:
    r = call("PATCH", "/notes/1", json={"text": "x"}, headers={"if-unmodified-since": LONG_AGO})
    assert r.status_code == 400
    assert r.json()["violations"][0]["field"] == "If-Unmodified-Since"
    assert NOTES[1].etag == "v1"


LONG_AGO = "Sun, 06 Nov 1994 08:49:37 GMT"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (LONG_AGO, datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)),
        ("Sunday, 06-Nov-94 08:49:37 GMT", datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        ("Sun, 06 Nov 1994 08:49:37 -0000", None),  # no zone: not an HTTP date
    ],
)
def test_http_dates(value: str, expected: datetime | None) -> None:
    assert http_date(value) == expected


def test_modification_times_compare_in_whole_seconds() -> None:
    stored = datetime(2026, 1, 1, 0, 0, 0, 900_000, tzinfo=UTC)
    assert last_modified(stored) == b"Thu, 01 Jan 2026 00:00:00 GMT"
    check_unmodified(datetime(2026, 1, 1, tzinfo=UTC), stored)  # the same second
    check_unmodified(None, stored)
    with pytest.raises(PreconditionFailed):
        check_unmodified(datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC), stored)
    assert not_modified_since(b"Thu, 01 Jan 2026 00:00:00 GMT", stored)
    assert not not_modified_since(b"Wed, 31 Dec 2025 23:59:59 GMT", stored)
    assert not not_modified_since(b"not a date", stored)


def test_rest_ignores_if_unmodified_since_with_if_match_or_when_not_a_date() -> None:
    from docs_src.caching.articles import ARTICLES, Article
    from docs_src.caching.articles import app as articles_app

    ARTICLES.clear()
    ARTICLES[1] = Article(id=1, title="t", body="b", etag="v1")

    async def go() -> None:
        transport = httpx.ASGITransport(articles_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            headers = {"if-unmodified-since": "not a date"}
            r = await client.patch("/articles/1", json={"body": "new"}, headers=headers)
            assert r.status_code == 200, r.text
            headers = {"if-unmodified-since": LONG_AGO, "if-match": r.headers["etag"]}
            r = await client.patch("/articles/1", json={"body": "newer"}, headers=headers)
            assert r.status_code == 200, r.text
            doc = articles_app.openapi["paths"]["/articles/{id}"]
            names = {p["name"] for p in doc["patch"]["parameters"]}
            assert {"If-Match", "If-Unmodified-Since"} <= names
            assert "412" in doc["patch"]["responses"]
            assert "Last-Modified" in doc["get"]["responses"]["200"]["headers"]
            assert "Last-Modified" in doc["get"]["responses"]["304"]["headers"]
            assert "If-Modified-Since" in {p["name"] for p in doc["get"]["parameters"]}

    asyncio.run(go())


def test_the_rpc_way_is_an_etag_field_and_aborted() -> None:
    body = {"id": 1, "note": {"text": "rpc"}, "etag": "v0"}
    r = call("POST", "/notes.v1.NotesService/UpdateNote", json=body)
    assert r.status_code == 409
    assert r.json()["code"] == "aborted"
    body["etag"] = "v1"
    assert call("POST", "/notes.v1.NotesService/UpdateNote", json=body).json()["etag"] == "v2"


def test_a_connect_get_is_cached_and_revalidated_like_rest() -> None:
    url = "/notes.v1.NotesService/GetNote"
    r = call("GET", url, params={"encoding": "json", "message": '{"id": 1}'})
    assert r.status_code == 200
    assert r.headers["etag"] == '"v1"'
    assert r.headers["cache-control"] == "public, max-age=60"
    assert r.headers["vary"] == "Accept-Encoding"
    again = call(
        "GET",
        url,
        params={"encoding": "json", "message": '{"id": 1}'},
        headers={"if-none-match": '"v1"'},
    )
    assert again.status_code == 304 and again.content == b""
    report = call("GET", "/notes.v1.NotesService/CountWords", params={"encoding": "json"})
    assert report.headers["cache-control"] == "private, max-age=5"
    # Connect POST is not a cacheable read.
    assert "etag" not in call("POST", url, json={"id": 1}).headers


def test_a_list_links_to_its_next_page() -> None:
    r = call("GET", "/notes", params={"page_size": 2, "q": "a b"})
    assert r.headers["link"] == '</notes?page_size=2&q=a+b&page_token=2>; rel="next"'
    last = call("GET", "/notes", params={"page_size": 2, "page_token": "2"})
    assert "link" not in last.headers


def test_openapi_documents_validators_and_preconditions() -> None:
    paths = app.openapi["paths"]
    patch = paths["/notes/{id}"]["patch"]
    names = [p["name"] for p in patch["parameters"]]
    assert names == ["id", "update_mask", "If-Match"] or names == ["id", "If-Match"]
    assert patch["responses"]["412"] == {"$ref": "#/components/responses/PreconditionFailed"}
    delete = paths["/notes/{id}"]["delete"]
    assert "etag" not in [p["name"] for p in delete["parameters"]]
    assert "412" in delete["responses"]
    assert "412" not in paths["/notes/{id}:touch"]["post"]["responses"]
    listed = paths["/notes"]["get"]["responses"]
    assert set(listed["200"]["headers"]) == {"Cache-Control", "ETag", "Vary", "Link"}
    assert "304" in listed


def test_a_cache_control_set_by_the_handler_wins() -> None:
    svc = Service("hand.v1")

    @svc.procedure(idempotency=Idempotency.NO_SIDE_EFFECTS, http=("GET", "/now"))
    async def now(ctx: Context) -> Report:
        ctx.response_headers["Cache-Control"] = "max-age=1"
        return Report(words=0)

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(App(svc))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/now")

    assert asyncio.run(go()).headers.get_list("cache-control") == ["max-age=1"]


def test_a_create_links_to_the_get_of_what_it_created() -> None:
    from examples.catalog import app as catalog

    paths = catalog.openapi["paths"]
    created = paths["/products"]["post"]["responses"]["201"]
    assert created["links"] == {
        "GetCreated": {
            "operationRef": "#/paths/~1products~1{id}/get",
            "parameters": {"id": "$response.body#/id"},
        }
    }
    order = paths["/users/{user_id}/orders"]["post"]["responses"]["201"]["links"]["GetCreated"]
    assert order["operationRef"] == "#/paths/~1users~1{user_id}~1orders~1{order_id}/get"
    assert order["parameters"] == {
        "user_id": "$request.path.user_id",
        "order_id": "$response.body#/id",
    }
    # No Get, no link.
    assert "links" not in app.openapi["paths"]["/notes"]["get"]["responses"]["200"]
