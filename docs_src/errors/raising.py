"""docs/errors.md's example: raising coded errors with details."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from twofold import App, Code, Error, ErrorInfo, Service

service = Service("shop.v1")
orders = service.resource("orders")
CANCELLED: set[int] = set()


class Order(msgspec.Struct):
    id: int
    status: str


@orders.get
async def get_order(id: int) -> Order:
    if id > 100:
        raise Error(Code.NOT_FOUND, f"order {id} not found")
    return Order(id, "cancelled" if id in CANCELLED else "open")


@orders.action("cancel")
async def cancel_order(id: int) -> Order:
    order = await get_order(id)
    if order.status == "cancelled":
        raise Error(
            Code.FAILED_PRECONDITION,
            f"order {id} is already cancelled",
            [ErrorInfo(reason="ORDER_CANCELLED", domain="shop.example.com")],
        )
    CANCELLED.add(id)
    return Order(id, "cancelled")


@orders.action("refund")
async def refund_order(id: int, amount: Decimal) -> Order:
    if amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise Error.invalid("amount", "at most two decimal places")
    return await get_order(id)


app = App(service)
