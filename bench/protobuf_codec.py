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


def main() -> None:
    schema = Schema(service)
    product = Product(
        id=12345, name="T-Shirt", price=Decimal("22.00"), category="Clothes", tags=["a", "b"]
    )
    page = ListProductsResponse(products=[product] * 20, next_page_token="token")
    request = GetProductRequest(id=42)
    upb_product = schema.message_class(Product)
    upb_request = schema.message_class(GetProductRequest)
    upb_page = schema.message_class(ListProductsResponse)

    def product_to_upb(p: Any, m: Any) -> Any:
        m.id, m.name, m.price, m.category = p.id, p.name, str(p.price), p.category
        m.tags.extend(p.tags)
        return m

    def upb_encode_product(p: Any = product) -> bytes:
        return product_to_upb(p, upb_product()).SerializeToString()  # type: ignore[no-any-return]

    def upb_encode_request() -> bytes:
        m = upb_request()
        m.id = request.id
        return m.SerializeToString()  # type: ignore[no-any-return]

    def upb_encode_page() -> bytes:
        m = upb_page()
        for p in page.products:
            product_to_upb(p, m.products.add())
        m.next_page_token = page.next_page_token
        return m.SerializeToString()  # type: ignore[no-any-return]

    rows = []
    for name, value, upb_encode, upb_cls in [
        ("GetProductRequest", request, upb_encode_request, upb_request),
        ("Product", product, upb_encode_product, upb_product),
        ("ListProductsResponse (20)", page, upb_encode_page, upb_page),
    ]:
        codec = schema.codec(type(value))
        data = codec.encode(value)
        assert data == upb_encode(), name
        json_data = msgspec.json.encode(value)
        json_decode = msgspec.json.Decoder(type(value)).decode
        rows.append(
            (
                name,
                best(lambda c=codec, v=value: c.encode(v)),
                best(upb_encode),
                best(lambda c=codec, d=data: c.decode(d)),
                best(lambda u=upb_cls, d=data: u.FromString(d)),
                best(lambda j=json_decode, d=json_data: j(d)),
            )
        )
    head = ("message", "twofold encode", "upb encode", "twofold decode", "upb parse", "json decode")
    print("  ".join(f"{h:>26}" if i == 0 else f"{h:>14}" for i, h in enumerate(head)))
    for row in rows:
        print(f"{row[0]:>26}  " + "  ".join(f"{x:>11.2f} us" for x in row[1:]))


if __name__ == "__main__":
    main()
