"""``python -m bench.protobuf_codec``: the binary codec against upb, on the catalog's messages.

Per message, microseconds per call (best of 5 timeit runs):

- ``twofold encode``: the generated pure-Python writer (what serves responses);
- ``upb encode``: the same value copied into a upb message (the generated
  class from our descriptors), then ``SerializeToString``: the alternative
  design, written out by hand for these types so it is at its fastest;
- ``twofold decode``: upb's parser, field extraction and ``msgspec.convert``
  (validation included);
- ``upb parse``: ``FromString`` alone, the floor of any upb-based decoder;
- ``json decode``: msgspec's typed JSON decoder on the same value, for scale.

Figures are printed, never asserted.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from examples.catalog.models import ListProductsResponse, Product
from examples.catalog.service import service
from twofold.protobuf import Schema

GetProductRequest = service.methods["GetProduct"].input_type
NUMBER = 100_000


def best(fn: Callable[[], Any]) -> float:
    return min(timeit.repeat(fn, number=NUMBER, repeat=5)) / NUMBER * 1e6


def _row(
    schema: Schema, name: str, value: Any, upb_encode: Callable[[], bytes], upb_cls: Any
) -> tuple[str, float, float, float, float, float]:
    codec = schema.codec(type(value))
    data = codec.encode(value)
    assert data == upb_encode(), name
    json_data = msgspec.json.encode(value)
    json_decode = msgspec.json.Decoder(type(value)).decode
    return (
        name,
        best(lambda: codec.encode(value)),
        best(upb_encode),
        best(lambda: codec.decode(data)),
        best(lambda: upb_cls.FromString(data)),
        best(lambda: json_decode(json_data)),
    )


def main() -> None:
    schema = Schema(service)
    product = Product(
        id=12345,
        name="T-Shirt",
        price=Decimal("22.00"),
        category="Clothes",
        tags=["a", "b"],
        updated_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    page = ListProductsResponse(products=[product] * 20, next_page_token="token")
    request = GetProductRequest(id=42)
    # upb classes built at run time: their fields are unknown to mypy, hence Any.
    upb_product: Any = schema.message_class(Product)
    upb_request: Any = schema.message_class(GetProductRequest)
    upb_page: Any = schema.message_class(ListProductsResponse)

    def product_to_upb(p: Any, m: Any) -> Any:
        m.id, m.name, m.price, m.category = p.id, p.name, str(p.price), p.category
        m.tags.extend(p.tags)
        m.updated_at.FromDatetime(p.updated_at)
        return m

    def upb_encode_product(p: Any = product) -> bytes:
        return bytes(product_to_upb(p, upb_product()).SerializeToString())

    def upb_encode_request() -> bytes:
        m = upb_request()
        m.id = request.id
        return bytes(m.SerializeToString())

    def upb_encode_page() -> bytes:
        m = upb_page()
        for p in page.products:
            product_to_upb(p, m.products.add())
        m.next_page_token = page.next_page_token
        return bytes(m.SerializeToString())

    cases: list[tuple[str, Any, Callable[[], bytes], Any]] = [
        ("GetProductRequest", request, upb_encode_request, upb_request),
        ("Product", product, upb_encode_product, upb_product),
        ("ListProductsResponse (20)", page, upb_encode_page, upb_page),
    ]
    rows = [_row(schema, *case) for case in cases]
    head = ("message", "twofold encode", "upb encode", "twofold decode", "upb parse", "json decode")
    print("  ".join(f"{h:>26}" if i == 0 else f"{h:>14}" for i, h in enumerate(head)))
    for row in rows:
        print(f"{row[0]:>26}  " + "  ".join(f"{x:>11.2f} us" for x in row[1:]))


if __name__ == "__main__":
    main()
