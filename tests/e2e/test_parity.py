"""One behaviour, every protocol: the same calls give the same data and the same codes.

Single calls are the parity kit's declared cases (``test_catalog``), run on
every wire and through twofold.Client on each; the scenarios that chain
calls (create, then read what was created) run on every wire that carries
writes, through the kit's ``twofold_parity`` fixture (tests/e2e/conftest.py).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from twofold import Code
from twofold.protobuf.binary import tag, varint
from twofold.testing.parity import CLIENT_WIRES, WIRES, Case, Cases, Outcome, Unsupported, Wires

pytestmark = pytest.mark.postgresql

Caller = Callable[..., Outcome]
# A category no scenario writes to (each makes its own, see new_category).
UNUSED = "parity-cases-nothing-here"

test_catalog = Cases(
    Case("unknown_user_is_not_found", "GetUser", {"id": 987654321}, error=Code.NOT_FOUND),
    Case("unknown_product_is_not_found", "GetProduct", {"id": 987654321}, error="not_found"),
    Case(
        "invalid_page_token",
        "ListProducts",
        {"page_token": "not-a-token"},
        error=Code.INVALID_ARGUMENT,
        violations=["page_token"],
    ),
    # Protobuf cannot hold it: skipped on the protobuf wires, where
    # test_a_field_of_the_wrong_wire_type_is_named sends what a confused client would.
    Case(
        "id_of_the_wrong_type",
        "GetProduct",
        {"id": "forty-two"},
        error=Code.INVALID_ARGUMENT,
        violations=["id"],
    ),
    # PostgreSQL's text cannot hold U+0000 (SQLite's can): the same answer on both.
    Case(
        "nul_in_a_query",
        "ListProducts",
        {"category": UNUSED + "\x00"},
        error=Code.INVALID_ARGUMENT,
        violations=["category"],
    ),
    Case("empty_category", "ListProducts", {"category": UNUSED}, expect={"products": []}),
    wires=WIRES + CLIENT_WIRES,
)


@pytest.fixture(params=[w for w in WIRES + CLIENT_WIRES if w != "connect-get"])
def protocol(request: pytest.FixtureRequest, twofold_parity: Wires) -> Caller:
    """``protocol(rpc, payload)`` over one wire (Connect GET carries no writes,
    and every scenario writes)."""
    return functools.partial(twofold_parity.call, request.param)


def new_category() -> str:
    # The server lives for the whole session: each test works in its own category.
    return f"cat-{uuid.uuid4().hex[:10]}"


def create(protocol: Caller, category: str, name: str = "T-Shirt", price: str = "22.00") -> Any:
    product = {"name": name, "price": price, "category": category}
    outcome = protocol("CreateProduct", {"product": product})
    assert outcome.ok, outcome
    return outcome.data


def test_product_lifecycle(protocol: Caller) -> None:
    category = new_category()
    created = create(protocol, category)
    assert created.name == "T-Shirt"
    assert created.price == Decimal("22.00")
    assert created.category == category

    got = protocol("GetProduct", {"id": created.id})
    assert got.ok and got.data == created

    updated = protocol("UpdateProduct", {"id": created.id, "product": {"price": "20.00"}})
    assert updated.ok, updated
    assert updated.data.price == Decimal("20.00")
    assert updated.data.name == "T-Shirt"  # a partial update keeps what it did not name

    assert protocol("GetProduct", {"id": created.id}).data.price == Decimal("20.00")

    deleted = protocol("DeleteProduct", {"id": created.id})
    assert deleted.ok, deleted
    missing = protocol("GetProduct", {"id": created.id})
    assert missing.code == "not_found"


def test_list_pages_through_a_category(protocol: Caller) -> None:
    category = new_category()
    ids = [create(protocol, category, name=f"P{i}", price=f"{i}.50").id for i in range(5)]
    create(protocol, new_category())  # another category stays out of the listing

    seen: list[int] = []
    token = ""
    pages = 0
    while True:
        page = protocol("ListProducts", {"category": category, "page_size": 2, "page_token": token})
        assert page.ok, page
        seen += [p.id for p in page.data.products]
        pages += 1
        token = page.data.next_page_token
        if not token:
            break
    assert seen == ids
    assert pages == 3


def test_validation_errors_name_the_field(protocol: Caller) -> None:
    category = new_category()
    bad_price = protocol(
        "CreateProduct", {"product": {"name": "X", "price": "cheap", "category": category}}
    )
    assert bad_price.code == "invalid_argument"
    assert bad_price.violations == ["product.price"]

    missing = protocol("CreateProduct", {"product": {"price": "1.00", "category": category}})
    assert missing.code == "invalid_argument"
    assert missing.violations == ["product.name"]

    listing = protocol("ListProducts", {"category": category})
    assert listing.ok and listing.data.products == []  # nothing was written


def test_orders_cancel_once(protocol: Caller) -> None:
    product = create(protocol, new_category(), price="3.25")
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    user = protocol("CreateUser", {"user": {"name": "Ada", "email": email}})
    assert user.ok, user
    order = protocol(
        "CreateOrder",
        {"user_id": user.data.id, "order": {"product_id": product.id, "quantity": 4}},
    )
    assert order.ok, order
    assert order.data.total == Decimal("13.00")

    ids = {"user_id": user.data.id, "order_id": order.data.id}
    cancelled = protocol("CancelOrder", ids)
    assert cancelled.ok, cancelled
    assert cancelled.data.status.value == "cancelled"
    again = protocol("CancelOrder", ids)
    assert again.code == "failed_precondition"
    assert protocol("GetOrder", ids).data.status.value == "cancelled"


def test_text_with_nul_is_refused(protocol: Caller) -> None:
    # PostgreSQL's text cannot hold U+0000 (SQLite's can): the same answer on both.
    category = new_category()
    product = {"name": "a\x00b", "price": "1.00", "category": category}
    try:
        outcome = protocol("CreateProduct", {"product": product})
    except Unsupported as exc:  # XML 1.0 has no way to write U+0000
        pytest.skip(str(exc))
    assert outcome.code == "invalid_argument"
    assert outcome.violations == ["product.name"]
    listing = protocol("ListProducts", {"category": category})
    assert listing.ok and listing.data.products == []  # nothing was written


@pytest.mark.parametrize("wire", ["connect-proto", "grpc-web", "grpc"])
def test_a_field_of_the_wrong_wire_type_is_named(twofold_parity: Wires, wire: str) -> None:
    # What a client with a mismatched .proto sends for {"id": "forty-two"}:
    # the text, length-delimited, under the int64 id's number. The server's
    # parser skips a field of the wrong wire type, so id reads as absent
    # (zero), and validation names it.
    wires = twofold_parity.wires
    message = wires.schema.message_class(wires.method("GetProduct").input_type)
    number = message.DESCRIPTOR.fields_by_name["id"].number
    text = b"forty-two"
    outcome = twofold_parity.call(wire, "GetProduct", tag(number, 2) + varint(len(text)) + text)
    assert outcome.code == "invalid_argument"
    assert outcome.violations == ["id"]
