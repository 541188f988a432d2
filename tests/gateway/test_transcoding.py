"""REST -> gRPC transcoding, checked against grpc-gateway's documented behaviour.

Each row is a request through the gateway, the request message the upstream
received (as proto3 JSON), and the response. The expectations are what
grpc-gateway documents for the same google.api.http rules (its
"Customizing your gateway" and "Patch feature" pages, and http.proto's own
examples); the rows marked ``differs`` are where Twofold chose otherwise on
purpose, each with the reason, and docs/gateway.md lists them too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.gateway.upstream import Upstream


@dataclass(frozen=True)
class Case:
    name: str
    verb: str
    path: str
    method: str  # the upstream method that must have been called
    upstream_saw: dict[str, Any]
    body: Any = None
    status: int = 200
    answer: Any = None  # the JSON response, when the case pins it
    differs: str = ""  # how and why grpc-gateway answers otherwise
    headers: dict[str, str] = field(default_factory=dict)


CASES = [
    Case(
        "path variable with a pattern (http.proto: get: /v1/{name=messages/*})",
        "GET",
        "/v1/shelves/1/books/1",
        "GetBook",
        {"name": "shelves/1/books/1"},
        answer={
            "name": "shelves/1/books/1",
            "title": "Dune",
            "pages": "412",  # int64 as a string, as protojson writes it
            "genre": "FICTION",  # enums by name
            "published": "1965-08-01T00:00:00Z",  # Timestamp as RFC 3339
        },
        differs="grpc-gateway's default marshaler sets EmitUnpopulated: it would also print "
        "tags: [], author: null, createTime: null; Twofold prints proto3's canonical JSON "
        "(GatewayOptions(emit_defaults=True) prints them too)",
    ),
    Case(
        "query parameters: scalars, enum by name, repeated, nested message, WKTs, json names",
        "GET",
        "/v1/shelves/1/books?pageSize=5&genre=SCIENCE&tags=a&tags=b&author.displayName=Ann"
        "&publishedAfter=2020-01-01T00:00:00Z&reverse=true&minPages=100",
        "ListBooks",
        {
            "parent": "shelves/1",
            "pageSize": 5,
            "genre": "SCIENCE",
            "tags": ["a", "b"],
            "author": {"displayName": "Ann"},
            "publishedAfter": "2020-01-01T00:00:00Z",
            "reverse": True,
            "minPages": "100",
        },
    ),
    Case(
        "query parameters by proto field name, enum by number",
        "GET",
        "/v1/shelves/1/books?page_size=7&genre=1&author.display_name=Bo",
        "ListBooks",
        {"parent": "shelves/1", "pageSize": 7, "genre": "FICTION", "author": {"displayName": "Bo"}},
    ),
    Case(
        "a map field from name[key]=value (grpc-gateway's form)",
        "GET",
        "/v1/shelves/1/books?minRatings[critics]=4&min_ratings[a.b]=2",
        "ListBooks",
        {"parent": "shelves/1", "minRatings": {"critics": 4, "a.b": 2}},
    ),
    Case(
        "additional_bindings: a second route to the same method",
        "GET",
        "/v1/books",
        "ListBooks",
        {},
    ),
    Case(
        "body: a field; the rest from path and query",
        "POST",
        "/v1/shelves/1/books?bookId=b2",
        "CreateBook",
        {
            "parent": "shelves/1",
            "bookId": "b2",
            "book": {"title": "Solaris", "pages": "204", "tags": ["sf"]},
        },
        body={"title": "Solaris", "pages": "204", "tags": ["sf"]},
    ),
    Case(
        "nested path variable into the body field, update_mask from the query",
        "PATCH",
        "/v1/shelves/1/books/1?updateMask=title",
        "UpdateBook",
        {"book": {"name": "shelves/1/books/1", "title": "Dune II"}, "updateMask": "title"},
        body={"title": "Dune II"},
    ),
    Case(
        "PATCH with no update_mask: the mask is the body's fields (grpc-gateway's patch feature)",
        "PATCH",
        "/v1/shelves/1/books/1",
        "UpdateBook",
        {
            "book": {"name": "shelves/1/books/1", "pages": "500", "author": {"born": 1920}},
            "updateMask": "pages,author.born",
        },
        body={"pages": 500, "author": {"born": 1920}},
    ),
    Case(
        'custom verb with body: "*"',
        "POST",
        "/v1/shelves/1/books/1:move",
        "MoveBook",
        {"name": "shelves/1/books/1", "destination": "shelves/2"},
        body={"destination": "shelves/2"},
        answer={
            "name": "shelves/2/books/1",
            "title": "Dune II",
            "pages": "500",
            "genre": "FICTION",
            "published": "1965-08-01T00:00:00Z",
            "author": {"born": 1920},
        },
    ),
    Case(
        "a typed (int64) path variable",
        "GET",
        "/v1/shelves/42",
        "GetShelf",
        {"id": "42"},
        answer={"id": "42", "theme": "theme 42"},
    ),
    Case(
        "'**' takes the rest of the path, slashes included",
        "GET",
        "/v1/files/a/b/c.txt",
        "GetFile",
        {"name": "a/b/c.txt"},
    ),
    Case(
        "a single-segment variable is percent-decoded",
        "GET",
        "/v1/shelves/1/books?tags=a%20b&tags=%C3%A9",
        "ListBooks",
        {"parent": "shelves/1", "tags": ["a b", "é"]},
    ),
    Case(
        "a multi-segment variable keeps %2F (http.proto: reserved expansion)",
        "GET",
        "/v1/files/dir%2Fname/x%20y",
        "GetFile",
        {"name": "dir%2Fname/x y"},
    ),
    Case(
        "response_body: the field alone is the body",
        "GET",
        "/v1/shelves/9/titles",
        "ListTitles",
        {"parent": "shelves/9"},
        answer=[],
    ),
    Case(
        "DELETE answers the Empty message as {}",
        "DELETE",
        "/v1/shelves/3/books/none",
        "DeleteBook",
        {"name": "shelves/3/books/none"},
        answer={},
    ),
    Case(
        "a query parameter naming no field",
        "GET",
        "/v1/shelves/1/books?noSuchField=1",
        "",
        {},
        status=400,
        differs="grpc-gateway ignores it; Twofold answers 400, as Envoy's transcoder does with "
        "reject_unknown_query_parameters: a typo is not silently dropped",
    ),
    Case(
        "an unknown field in the body",
        "POST",
        "/v1/shelves/1/books",
        "",
        {},
        body={"title": "x", "colour": "red"},
        status=400,
        differs="grpc-gateway discards unknown fields (DiscardUnknown); Twofold answers 400",
    ),
    Case(
        "a path variable that does not parse as its field's type",
        "GET",
        "/v1/shelves/abc",
        "",
        {},
        status=400,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_transcoding(case: Case, http: httpx.Client, upstream: Upstream) -> None:
    upstream.library.seen.clear()
    r = http.request(case.verb, case.path, json=case.body, headers=case.headers)
    assert r.status_code == case.status, r.text
    if case.status != 200:
        assert r.headers["content-type"] == "application/problem+json"
        assert upstream.library.seen == {}, "nothing reaches the upstream that did not parse"
        return
    assert upstream.library.seen == {case.method: case.upstream_saw}
    if case.answer is not None:
        assert r.json() == case.answer


def test_emit_defaults_prints_what_grpc_gateway_prints(upstream: Upstream) -> None:
    from tests.gateway.conftest import gateway_for, serve

    with serve(gateway_for(upstream.target, emit_defaults=True)) as url:
        listed = httpx.get(f"{url}/v1/books?pageSize=1").json()
    assert listed["nextPageToken"] == ""
    seeded = next(b for b in listed["books"] if b["name"] == "shelves/1/books/1")
    # Scalars and lists at their defaults are printed; messages have presence, so an
    # unset one stays out.
    assert seeded["tags"] == [] and "createTime" not in seeded
