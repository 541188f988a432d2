"""JSON numbers as the schema reads them: 2.0 is an integer, a Decimal is a string."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import pytest

from twofold import App, Service
from twofold.core.numbers import Decoder


class Line(msgspec.Struct, forbid_unknown_fields=True):
    quantity: int
    price: Decimal
    sizes: list[int] = []
    prices: dict[str, Decimal] = {}


class Order(msgspec.Struct):
    lines: list[Line]
    note: str | None = None


def test_whole_floats_are_ints_where_the_type_says_int() -> None:
    decoded = Decoder(Order).decode(
        b'{"lines": [{"quantity": 2.0, "price": "1.50", "sizes": [1e1]}]}'
    )
    assert decoded.lines[0].quantity == 2 and type(decoded.lines[0].quantity) is int
    assert decoded.lines[0].sizes == [10]


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (b'{"lines": [{"quantity": 2.5, "price": "1"}]}', "$.lines[0].quantity"),
        (b'{"lines": [{"quantity": 1, "price": 1.5}]}', "$.lines[0].price"),
        (b'{"lines": [{"quantity": 1, "price": 0}]}', "$.lines[0].price"),
        (b'{"lines": [{"quantity": 1, "price": "1", "prices": {"a": 2}}]}', "$.lines[0].prices.a"),
        (b'{"lines": [{"quantity": "1", "price": "1"}]}', "$.lines[0].quantity"),
    ],
)
def test_what_the_schema_refuses_is_refused(raw: bytes, where: str) -> None:
    with pytest.raises(msgspec.ValidationError) as refused:
        Decoder(Order).decode(raw)
    assert str(refused.value).endswith(f"at `{where}`")


def test_a_type_without_numbers_is_decoded_by_msgspec_alone() -> None:
    decoder = Decoder(msgspec.defstruct("Note", [("text", str)]))
    assert (decoder.ints, decoder.decimals) == ([], None)


# REST and JSON-RPC decode alike.

shop = Service("shop.v1")


@shop.procedure(http=("POST", "/orders:total"))
async def total(order: Order) -> Line:
    first = order.lines[0]
    return Line(quantity=first.quantity, price=first.price * first.quantity)


def call(path: str, body: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(App(shop))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(path, json=body)

    return asyncio.run(go())


def test_rest_and_jsonrpc_read_numbers_alike() -> None:
    order = {"lines": [{"quantity": 3.0, "price": "1.50"}]}
    r = call("/orders:total", {"order": order})
    assert r.status_code == 200 and r.json()["price"] == "4.50", r.text
    rpc = {"jsonrpc": "2.0", "id": 1, "method": "Total", "params": {"order": order}}
    assert call("/jsonrpc", rpc).json()["result"]["price"] == "4.50"

    order = {"lines": [{"quantity": 3, "price": 1.5}]}
    r = call("/orders:total", {"order": order})
    assert r.status_code == 400, r.text
    assert r.json()["violations"][0]["field"] == "order.lines[0].price"
    rpc["params"] = {"order": order}
    assert call("/jsonrpc", rpc).json()["error"]["code"] == -32602
