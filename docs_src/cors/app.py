"""docs/cors.md: a shop API that its own web app, and its preview deployments, may call."""

from __future__ import annotations

import msgspec

from twofold import ApiKeys, App, Authentication, Cors, Service, StoredApiKey, requires

service = Service("shop.v1")
orders = service.resource("orders")


class Order(msgspec.Struct):
    id: int
    total: float


@requires("orders:read")
@orders.get
async def get_order(id: int) -> Order:
    return Order(id, 9.5)


app = App(
    service,
    interceptors=[Authentication(ApiKeys([StoredApiKey.of("web-key", "web", ["orders:read"])]))],
    cors=Cors(
        ["https://shop.example.com", "https://*.preview.shop.example.com"],
        credentials=True,  # the web app sends its session cookie
        max_age=3600,  # a browser may reuse a preflight's answer for an hour
    ),
)
