from __future__ import annotations

import httpx


def test_get_book(http: httpx.Client) -> None:
    r = http.get("/v1/shelves/1/books/1")
    print(r.status_code, r.headers, r.text)
    assert r.status_code == 200
