"""What only the RPC protocols carry: procedures, qualified names, Connect GET."""

from __future__ import annotations

import base64
import json
import uuid
from decimal import Decimal

import httpx

REPORT = "/catalog.v1.CatalogService/GenerateReport"


def make_products(http: httpx.Client, category: str, prices: list[str]) -> None:
    for i, price in enumerate(prices):
        r = http.post("/products", json={"name": f"R{i}", "price": price, "category": category})
        assert r.status_code == 201, r.text


def line_for(report: dict, category: str) -> dict:  # type: ignore[type-arg]
    lines = [c for c in report["categories"] if c["category"] == category]
    assert len(lines) == 1, report
    return lines[0]  # type: ignore[no-any-return]


def test_generate_report_over_jsonrpc_and_connect(http: httpx.Client) -> None:
    category = f"rep-{uuid.uuid4().hex[:8]}"
    make_products(http, category, ["0.10", "0.20", "10.00"])

    r = http.post(
        "/jsonrpc",
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "GenerateReport",
            "params": {"category": category},
        },
    )
    line = line_for(r.json()["result"], category)
    assert Decimal(line["total_value"]) == Decimal("10.30")
    assert int(line["product_count"]) == 3

    qualified = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "catalog.v1.CatalogService/GenerateReport",
        "params": {"category": category},
    }
    assert http.post("/jsonrpc", json=qualified).json()["result"] == r.json()["result"]

    c = http.post(REPORT, json={"category": category}, headers={"connect-protocol-version": "1"})
    assert c.status_code == 200, c.text
    assert Decimal(line_for(c.json(), category)["total_value"]) == Decimal("10.30")


def test_connect_get_for_side_effect_free_methods(http: httpx.Client) -> None:
    category = f"get-{uuid.uuid4().hex[:8]}"
    make_products(http, category, ["1.00"])
    message = json.dumps({"category": category})
    plain = http.get(REPORT, params={"encoding": "json", "message": message, "connect": "v1"})
    assert plain.status_code == 200, plain.text
    encoded = base64.urlsafe_b64encode(message.encode()).decode().rstrip("=")
    b64 = http.get(REPORT, params={"encoding": "json", "message": encoded, "base64": "1"})
    assert b64.status_code == 200
    assert b64.json() == plain.json()
    assert line_for(plain.json(), category)["total_value"] == "1.00"


def test_procedures_have_no_rest_route(http: httpx.Client) -> None:
    r = http.post("/reports", json={})
    assert r.status_code == 404
