"""Upstream errors as RFC 9457 problems, and bad input answered 4xx, never 500.

The upstream's grpc-status picks the HTTP status from the one table
(twofold.core.code.HTTP_STATUS, which is also grpc-gateway's
HTTPStatusFromCode); its google.rpc details become problem members:
BadRequest -> ``violations``, RetryInfo -> ``Retry-After``, the rest ->
``details``.
"""

from __future__ import annotations

import base64
import time

import httpx
import pytest

from tests.e2e.server import free_port
from tests.gateway.conftest import gateway_for, serve
from tests.gateway.upstream import Upstream, running

STATUS = {
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}


@pytest.mark.parametrize("code", sorted(STATUS))
def test_every_upstream_status_maps_as_grpc_gateway_maps_it(code: str, http: httpx.Client) -> None:
    r = http.post("/v1/fail", json={"code": code})
    assert r.status_code == STATUS[code]
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == STATUS[code]
    assert problem["code"] == code.lower().replace("cancelled", "canceled")
    assert problem["detail"] == f"failed as asked: {code}"
    assert problem["instance"] == "/v1/fail"


def test_bad_request_details_become_violations(http: httpx.Client) -> None:
    r = http.post("/v1/shelves/1/books", json={"pages": 3})
    assert r.status_code == 400
    assert r.json()["violations"] == [{"field": "book.title", "description": "required"}]


def test_retry_info_becomes_retry_after(http: httpx.Client) -> None:
    r = http.post("/v1/fail", json={"code": "UNAVAILABLE"})
    assert r.status_code == 503
    assert r.headers["retry-after"] == "7"
    assert r.json()["details"] == [{"type": "google.rpc.RetryInfo", "retryDelay": "7s"}]


def test_other_details_pass_through(http: httpx.Client) -> None:
    r = http.get("/v1/shelves/1/books/missing")
    assert r.status_code == 404
    assert r.json()["details"] == [
        {
            "type": "google.rpc.ResourceInfo",
            "resourceType": "book",
            "resourceName": "shelves/1/books/missing",
        }
    ]


@pytest.mark.parametrize(
    ("verb", "path", "body", "status", "field"),
    [
        ("POST", "/v1/shelves/1/books", b"{not json", 400, "book"),
        ("POST", "/v1/shelves/1/books/1:move", b"[1, 2]", 400, ""),
        ("POST", "/v1/shelves/1/books/1:move", b'{"destination": 5}', 400, ""),
        ("POST", "/v1/shelves/1/books", b'{"pages": "many"}', 400, "book"),
        ("POST", "/v1/shelves/1/books", b"\xff\xfe", 400, "book"),
        # An empty array or string is no message (protobuf's Python parser iterates it).
        ("POST", "/v1/shelves/1/books", b"[]", 400, "book"),
        ("POST", "/v1/shelves/1/books", b'{"title": "a", "author": []}', 400, "book.author"),
        ("POST", "/v1/shelves/1/books", b'{"title": "a", "author": ""}', 400, "book.author"),
        ("POST", "/v1/shelves/1/books/1:move", b"[]", 400, ""),
        # Durations as proto3 JSON writes them, not as Python's parser forgives them.
        ("GET", "/v1/books?maxLoan=1.0000000001s", None, 400, "maxLoan"),
        ("GET", "/v1/books?maxLoan=%2B1s", None, 400, "maxLoan"),
        (
            "POST",
            "/v1/shelves/1/books",
            b'{"title": "a", "loanPeriod": "1.5 s"}',
            400,
            "book.loanPeriod",
        ),
        ("GET", "/v1/shelves/99999999999999999999999", None, 400, "id"),
        # A URL's integers are decimal digits: no second name for shelf 1 or 100.
        ("GET", "/v1/shelves/1.0", None, 400, "id"),
        ("GET", "/v1/shelves/1e2", None, 400, "id"),
        ("GET", "/v1/shelves/1/books?pageSize=1e2", None, 400, "pageSize"),
        ("GET", "/v1/books?minPages=1.5", None, 400, "minPages"),
        ("GET", "/v1/books?afterId=-1", None, 400, "afterId"),
        ("GET", "/v1/books?minRatings[x]=1.0", None, 400, "minRatings.x"),
        # A float that does not fit its type is out of range, not infinity.
        ("GET", "/v1/books?score=1e40", None, 400, "score"),
        ("GET", "/v1/books?minRating=1e400", None, 400, "minRating"),
        ("GET", "/v1/shelves/1/books?pageSize=x", None, 400, "pageSize"),
        ("GET", "/v1/shelves/1/books?reverse=maybe", None, 400, "reverse"),
        ("GET", "/v1/shelves/1/books?genre=POETRY", None, 400, "genre"),
        ("GET", "/v1/shelves/1/books?pageSize=1&pageSize=2", None, 400, "pageSize"),
        ("GET", "/v1/shelves/1/books?author=x", None, 400, "author"),
        ("GET", "/v1/shelves/1/books?parent=shelves/2", None, 400, "parent"),
        ("POST", "/v1/shelves/1/books/1:move?destination=x", b"{}", 400, "destination"),
        ("GET", "/v1/shelves/1/books/%ff", None, 400, ""),
        ("GET", "/v1/shelves/1/books?minRatings=4", None, 400, "minRatings"),
        ("GET", "/v1/shelves/1/books?minRatings[x]=many", None, 400, "minRatings.x"),
        ("GET", "/v1/shelves/1/books?pageSize[x]=1", None, 400, "pageSize[x]"),
    ],
)
def test_bad_input_is_a_clear_400(
    verb: str, path: str, body: bytes | None, status: int, field: str, http: httpx.Client
) -> None:
    headers = {"content-type": "application/json"} if body is not None else {}
    r = http.request(verb, path, content=body, headers=headers)
    assert r.status_code == status, r.text
    problem = r.json()
    assert problem["code"] == "invalid_argument"
    if field:
        assert problem["violations"][0]["field"] == field


def test_oversized_body_is_413(http: httpx.Client) -> None:
    big = b'{"title": "' + b"x" * (65 * 1024) + b'"}'
    r = http.post("/v1/shelves/1/books", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["code"] == "resource_exhausted"


def test_a_body_that_is_not_json_is_415(http: httpx.Client) -> None:
    r = http.post("/v1/shelves/1/books", content=b"title=x", headers={"content-type": "text/plain"})
    assert r.status_code == 415


def test_unknown_path_is_404_and_wrong_verb_405(http: httpx.Client) -> None:
    r = http.get("/v2/nothing")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    r = http.put("/v1/shelves/1/books/1")
    assert r.status_code == 405
    assert r.headers["allow"] == "DELETE, GET, PATCH"


def test_an_answer_that_is_not_the_message_is_502(http: httpx.Client) -> None:
    r = http.get("/v1/garbage")
    assert r.status_code == 502
    assert r.json()["detail"] == "the upstream's answer is not a library.v1.Book"


def test_etag_and_if_none_match(http: httpx.Client) -> None:
    first = http.get("/v1/shelves/7")
    tag = first.headers["etag"]
    again = http.get("/v1/shelves/7", headers={"if-none-match": tag})
    assert again.status_code == 304
    assert again.content == b""
    other = http.get("/v1/shelves/8", headers={"if-none-match": tag})
    assert other.status_code == 200


def test_deadline_goes_upstream_and_expires_as_504(upstream: Upstream) -> None:
    with serve(gateway_for(upstream.target)) as url:
        r = httpx.post(
            f"{url}/library.v1.Library/Echo",
            json={"text": "hi", "delayMs": 5000},
            headers={"connect-timeout-ms": "100"},
        )
        assert r.status_code == 504
        assert r.json()["code"] == "deadline_exceeded"
        r = httpx.post(
            f"{url}/library.v1.Library/Echo",
            json={"text": "hi"},
            headers={"request-timeout": "nonsense"},
        )
        assert r.status_code == 400


def test_metadata_forwarding_is_an_allow_list(http: httpx.Client) -> None:
    r = http.post(
        "/library.v1.Library/Echo",
        json={"text": "hi"},
        headers={
            "authorization": "Bearer t0k",
            "x-request-id": "r-1",
            "cookie": "session=secret",
            "x-internal": "no",
        },
    )
    seen = r.json()["metadata"]
    assert "authorization=Bearer t0k" in seen and "x-request-id=r-1" in seen
    assert not [m for m in seen if m.startswith(("cookie", "x-internal"))]


def test_binary_metadata_reaches_the_upstream_as_its_bytes(upstream: Upstream) -> None:
    blob = bytes(range(0, 256, 7))
    gateway = gateway_for(upstream.target, forward_headers=("x-blob-bin",))
    with serve(gateway) as url, httpx.Client(base_url=url) as http:
        # Unpadded, as gRPC implementations send -bin values, or padded: both are base64.
        for text in (base64.b64encode(blob).rstrip(b"="), base64.b64encode(blob)):
            r = http.post(
                "/library.v1.Library/Echo", json={"text": "hi"}, headers={"x-blob-bin": text}
            )
            assert r.status_code == 200, r.text
            assert f"x-blob-bin={blob.hex()}" in r.json()["metadata"]
        r = http.post("/library.v1.Library/Echo", json={"text": "x"}, headers={"x-blob-bin": "%%"})
        assert r.status_code == 400
        assert r.json()["code"] == "invalid_argument"
        assert r.json()["message"] == "metadata x-blob-bin is not base64"


def test_upstream_down_is_503_with_retry_after_and_no_hang() -> None:
    with serve(gateway_for(f"127.0.0.1:{free_port()}")) as url:
        r = httpx.get(f"{url}/v1/shelves/1/books/1", timeout=20)
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert r.json()["code"] == "unavailable"
    assert "127.0.0.1" not in r.json()["detail"]


def test_upstream_restart_mid_run() -> None:
    with running() as up, serve(gateway_for(up.target)) as url, httpx.Client(base_url=url) as http:
        assert http.get("/v1/shelves/1").status_code == 200
        up.stop()
        assert http.get("/v1/shelves/1").status_code == 503
        up.restart()
        # grpcio reconnects with back-off (the gateway keeps it short); calls find
        # the upstream again without a restart of the gateway.
        deadline = time.monotonic() + 20
        while http.get("/v1/shelves/1").status_code != 200:
            assert time.monotonic() < deadline, "the gateway never found the upstream again"
            time.sleep(0.1)


def test_a_header_grpc_cannot_carry_is_400_not_500(http: httpx.Client) -> None:
    r = http.post(
        "/library.v1.Library/Echo", json={"text": "x"}, headers={"x-request-id": "é".encode()}
    )
    assert r.status_code == 400
    r = http.get("/v1/shelves/1", headers={"authorization": b"Bearer\tt0k"})
    assert r.status_code == 400
    assert r.json()["detail"] == "header authorization: gRPC metadata is printable ASCII"


def test_cors_for_every_wire(upstream: Upstream) -> None:
    from twofold.http.cors import Cors

    page = "https://app.example.com"
    with (
        serve(gateway_for(upstream.target, cors=Cors(origins=[page]))) as url,
        httpx.Client(base_url=url) as http,
    ):
        preflight = http.options(
            "/v1/shelves/1/books",
            headers={"origin": page, "access-control-request-method": "POST"},
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == page
        r = http.get("/v1/shelves/1", headers={"origin": page})
        assert r.headers["access-control-allow-origin"] == page
        assert "etag" in r.headers["access-control-expose-headers"]
        r = http.post("/library.v1.Library/Echo", json={}, headers={"origin": "https://evil.test"})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
