"""QuotePrices, the catalog's bidi stream: product ids in, their current prices out.

Each id is answered as soon as it arrives, from the database as it is then,
and before the next id is read: a client may wait for one price before it
sends the next id, and a client that sends many at once gets them back in
the order it sent them. Each answer is its own short transaction, so a
stream that waits for its client holds no database connection meanwhile.

An id that names no product is answered ``found: false``, and the stream
goes on. A gRPC status ends the whole call (neither gRPC nor Connect has a
status per message), so NOT_FOUND there would cost the client the stream
and every id it had sent after that one; a product deleted since the
client learnt its id is an answer about that product, not a failure of the
stream. Bidi APIs that answer many items on one stream do the same:
BigQuery's ``AppendRows`` puts a per-request error in the response and says
to "continue with other append requests within the same connection"; the
catalog's own ImportProducts lists the products it could not create rather
than failing the import. What does end the stream is what no later answer
could get right: a message its schema refuses (an id of 0, a field the
request has not) is INVALID_ARGUMENT, as for any call, the
:data:`MAX_QUOTES` + 1st id is RESOURCE_EXHAUSTED, and a database that
cannot be reached is UNAVAILABLE.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Annotated

import msgspec
from msgspec import Meta
from sqlalchemy import select

from examples.catalog.database import Database, ProductRow
from examples.catalog.models import Id
from examples.catalog.service import money, service
from twofold import Code, Error, Idempotency, Provided, public

# Ids one stream may quote. A shop page, a basket or a price check quotes
# tens; past this a client should open another stream, so that one client
# cannot keep a stream place (and the database) busy without end. The time
# bound is the call's deadline, as for any call (CATALOG_TIMEOUT).
MAX_QUOTES = 1000


class QuotePricesRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One product to quote."""

    product_id: Id


class PriceQuote(msgspec.Struct, kw_only=True):
    """The current price of a product a QuotePrices stream asked for, or that it does not exist."""

    product_id: int
    found: bool
    price: Annotated[
        Decimal | None,
        Meta(description="In the catalog's currency, as a Product's; absent when not found."),
    ] = None


@service.procedure(idempotency=Idempotency.NO_SIDE_EFFECTS)
@public
async def quote_prices(
    db: Provided[Database], requests: AsyncIterator[QuotePricesRequest]
) -> AsyncIterator[PriceQuote]:
    """The current price of each product whose id the client sends, answered as it arrives.

    An answer per id, in the order sent, each written before the next id is
    read; an id that names no product is answered with ``found`` false and
    the stream goes on. A stream quotes at most 1000 ids (the next one is
    RESOURCE_EXHAUSTED: open another stream) within the call's deadline.
    """
    quoted = 0
    async for request in requests:
        quoted += 1
        if quoted > MAX_QUOTES:
            raise Error(
                Code.RESOURCE_EXHAUSTED,
                f"a QuotePrices stream quotes at most {MAX_QUOTES} products: open another",
            )
        yield await _quote(db, request.product_id)


async def _quote(db: Database, product_id: int) -> PriceQuote:
    async with db.transaction() as session:
        query = select(ProductRow.price_cents).where(ProductRow.id == product_id)
        cents = await session.scalar(query)
    if cents is None:
        return PriceQuote(product_id=product_id, found=False)
    return PriceQuote(product_id=product_id, found=True, price=money(cents))
