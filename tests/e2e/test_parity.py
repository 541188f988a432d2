"""One behaviour, every protocol: the same calls give the same data and the same codes."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from tests.e2e.callers import Caller

pytestmark = pytest.mark.postgresql


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


def test_invalid_page_token(protocol: Caller) -> None:
    outcome = protocol("ListProducts", {"page_token": "not-a-token"})
    assert outcome.code == "invalid_argument"
    assert outcome.violations == ["page_token"]


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

    wrong_type = protocol("GetProduct", {"id": "forty-two"})
    assert wrong_type.code == "invalid_argument"
    assert wrong_type.violations == ["id"]

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


def test_unknown_user_is_not_found(protocol: Caller) -> None:
    outcome = protocol("GetUser", {"id": 987654321})
    assert outcome.code == "not_found"


def test_text_with_nul_is_refused(protocol: Caller) -> None:
    # PostgreSQL's text cannot hold U+0000 (SQLite's can): the same answer on both.
    category = new_category()
    product = {"name": "a\x00b", "price": "1.00", "category": category}
    outcome = protocol("CreateProduct", {"product": product})
    assert outcome.code == "invalid_argument"
    assert outcome.violations == ["product.name"]
    listing = protocol("ListProducts", {"category": category + "\x00"})
    assert listing.code == "invalid_argument"
    assert listing.violations == ["category"]
