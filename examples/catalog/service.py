"""The catalog API, defined once: products, users, their orders and a report.

Each handler is one transaction (see :meth:`Database.transaction`): when it
raises, nothing it wrote is kept. Validation that msgspec cannot express runs
before the transaction starts.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from decimal import Decimal

import msgspec
from msgspec import UNSET, UnsetType
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from examples.catalog.database import Database, OrderRow, ProductRow, UserRow, new_version
from examples.catalog.models import (
    CategoryFilter,
    CategorySummary,
    Id,
    ListOrdersResponse,
    ListProductsResponse,
    ListUsersResponse,
    NewOrder,
    NewProduct,
    NewUser,
    Order,
    OrderStatus,
    PageSize,
    Product,
    ProductPatch,
    Report,
    UnmodifiedSince,
    User,
)
from examples.catalog.security import owner
from twofold import (
    Cache,
    Code,
    Context,
    Error,
    Idempotency,
    Provided,
    Service,
    check_etag,
    check_unmodified,
    public,
    requires,
)
from twofold.http.pagination import Filters
from twofold.interceptors import idempotency

service = Service("catalog.v1", description="A product catalog with users and their orders.")
products = service.resource("products")
users = service.resource("users")
orders = users.resource("orders")

# How long caches (browsers, proxies, CDNs) may serve a product without asking
# again: a price change can take this long to show. Read when the module loads.
PRODUCT_MAX_AGE = int(os.environ.get("CATALOG_PRODUCT_MAX_AGE", "60"))


def cents(price: Decimal) -> int:
    """A price as integer cents: 22.00 -> 2200.

    models.Price's Bounds (not negative, at most 999999999.99, two places)
    hold on every protocol before a handler runs, so this only scales.
    """
    return int(price.scaleb(2))


def money(amount_cents: int) -> Decimal:
    """Integer cents as a Decimal with exactly two places: 2200 -> Decimal("22.00")."""
    return Decimal(amount_cents).scaleb(-2)


def _product(row: ProductRow) -> Product:
    return Product(
        id=row.id,
        name=row.name,
        price=money(row.price_cents),
        category=row.category,
        tags=list(row.tags),
        updated_at=_when(row.updated_at),
        etag=row.version,
    )


def _when(unix_time: float) -> datetime:
    return datetime.fromtimestamp(unix_time, UTC)


def _check_unchanged(row: ProductRow, etag: str, since: datetime | None) -> None:
    """The conditions of a write on a product (If-Match, If-Unmodified-Since), checked
    with its row locked; then the row gets a new version and modification time."""
    check_etag(etag, row.version, f"product {row.id}")
    check_unmodified(since, _when(row.updated_at), f"product {row.id}")
    row.version = new_version()
    row.updated_at = time.time()


def _user(row: UserRow) -> User:
    return User(id=row.id, name=row.name, email=row.email)


def _order(row: OrderRow) -> Order:
    return Order(
        id=row.id,
        user_id=row.user_id,
        product_id=row.product_id,
        quantity=row.quantity,
        total=money(row.total_cents),
        status=OrderStatus(row.status),
        etag=row.version,
    )


def _after(db: Database, page_token: str, filters: Filters) -> int:
    """The id a page starts after (0 for the first page)."""
    after = db.tokens.decode(page_token, filters).get("id", 0)
    if not isinstance(after, int):
        raise Error.invalid("page_token", "not a page token")
    return after


def _next_token(db: Database, ids: list[int], page_size: int, filters: Filters) -> str:
    """A token for the page after this one, if the query found more than a page."""
    if len(ids) <= page_size:
        return ""
    return db.tokens.encode({"id": ids[page_size - 1]}, filters)


async def _find_product(session: AsyncSession, id: int, *, lock: bool = False) -> ProductRow:
    row = await session.get(ProductRow, id, with_for_update=lock)
    if row is None:
        raise Error(Code.NOT_FOUND, f"product {id} does not exist")
    return row


async def _find_user(session: AsyncSession, id: int) -> UserRow:
    row = await session.get(UserRow, id)
    if row is None:
        raise Error(Code.NOT_FOUND, f"user {id} does not exist")
    return row


async def _find_order(
    session: AsyncSession, user_id: int, order_id: int, *, lock: bool = False
) -> OrderRow:
    row = await session.get(OrderRow, order_id, with_for_update=lock)
    if row is None or row.user_id != user_id:
        raise Error(Code.NOT_FOUND, f"user {user_id} has no order {order_id}")
    return row


def masked(patch: ProductPatch, update_mask: str) -> ProductPatch:
    """The patch limited to the fields ``update_mask`` names (all given ones if empty).

    A named field the patch leaves out would be cleared (AIP-134), and every
    field of a product is required, so that is INVALID_ARGUMENT.
    """
    if not update_mask:
        return patch
    known = ProductPatch.__struct_fields__
    paths = [p.strip() for p in update_mask.split(",")]
    for path in paths:
        if path not in known:
            raise Error.invalid("update_mask", f"{path!r} is not a field of a product")
        if isinstance(getattr(patch, path), UnsetType):
            raise Error.invalid(f"product.{path}", "named in update_mask but not given")
    unset = {name: UNSET for name in known if name not in paths}
    return msgspec.structs.replace(patch, **unset)


# Products


@products.create
@requires("products:write")
async def create_product(
    db: Provided[Database], product: NewProduct, ctx: Context, idempotency_key: str = ""
) -> Product:
    """Add a product to the catalog.

    A retry with the same ``idempotency_key`` (REST: ``Idempotency-Key``)
    returns the first answer instead of adding the product twice.
    """
    return await add_product(db, product, ctx)


async def add_product(db: Database, product: NewProduct, ctx: Context | None = None) -> Product:
    """Insert a product; with the call's ``ctx``, complete its idempotency key in
    the same transaction, so that the key's answer commits with the product or
    neither does."""
    price = cents(product.price)
    async with db.transaction(write=True) as session:
        row = ProductRow(
            name=product.name, price_cents=price, category=product.category, tags=product.tags
        )
        session.add(row)
        await session.flush()
        created = _product(row)
        if ctx is not None:
            await idempotency.complete(ctx, created, within=session)
        return created


@products.get(cache=Cache(max_age=PRODUCT_MAX_AGE, public=True))
@public
async def get_product(db: Provided[Database], id: Id) -> Product:
    """Get one product by id."""
    async with db.transaction() as session:
        return _product(await _find_product(session, id))


@products.list
@public
async def list_products(
    db: Provided[Database],
    page_size: PageSize = 20,
    page_token: str = "",
    category: CategoryFilter | None = None,
) -> ListProductsResponse:
    """List products in id order, optionally only those of one category.

    A page token is only valid with the category it was issued for.
    """
    filters: Filters = {"list": "products", "category": category}
    query = select(ProductRow).where(ProductRow.id > _after(db, page_token, filters))
    if category is not None:
        query = query.where(ProductRow.category == category)
    async with db.transaction() as session:
        rows = (await session.scalars(query.order_by(ProductRow.id).limit(page_size + 1))).all()
    return ListProductsResponse(
        products=[_product(row) for row in rows[:page_size]],
        next_page_token=_next_token(db, [row.id for row in rows], page_size, filters),
    )


@products.update
@requires("products:write")
async def update_product(
    db: Provided[Database],
    id: Id,
    product: ProductPatch,
    etag: str = "",
    update_mask: str = "",
    unmodified_since: UnmodifiedSince = None,
) -> Product:
    """Change some fields of a product; the fields not given keep their value.

    With ``etag``, only if the product is still at that version, and with
    ``unmodified_since``, only if it has not changed since (else ABORTED, 412
    on REST); ``update_mask`` (``"name,price"``) limits the change to those
    fields.
    """
    patch = masked(product, update_mask)  # fields not to change are UNSET
    price = None if isinstance(patch.price, UnsetType) else cents(patch.price)
    async with db.transaction(write=True) as session:
        row = await _find_product(session, id, lock=True)
        _check_unchanged(row, etag, unmodified_since)
        if not isinstance(patch.name, UnsetType):
            row.name = patch.name
        if price is not None:
            row.price_cents = price
        if not isinstance(patch.category, UnsetType):
            row.category = patch.category
        if not isinstance(patch.tags, UnsetType):
            row.tags = patch.tags
        await session.flush()
        return _product(row)


@products.replace
@requires("products:write")
async def replace_product(
    db: Provided[Database],
    id: Id,
    product: NewProduct,
    etag: str = "",
    unmodified_since: UnmodifiedSince = None,
) -> Product:
    """Replace every field of a product (only if still at version ``etag``, and
    unchanged since ``unmodified_since``, when given)."""
    price = cents(product.price)
    async with db.transaction(write=True) as session:
        row = await _find_product(session, id, lock=True)
        _check_unchanged(row, etag, unmodified_since)
        row.name, row.price_cents = product.name, price
        row.category, row.tags = product.category, product.tags
        await session.flush()
        return _product(row)


@products.delete
@requires("products:write")
async def delete_product(
    db: Provided[Database], id: Id, etag: str = "", unmodified_since: UnmodifiedSince = None
) -> None:
    """Delete a product. A product that has been ordered cannot be deleted."""
    async with db.transaction(write=True) as session:
        row = await _find_product(session, id, lock=True)
        _check_unchanged(row, etag, unmodified_since)
        try:
            await session.execute(delete(ProductRow).where(ProductRow.id == row.id))
        except IntegrityError:
            # The orders' foreign key: orders keep pointing at what was bought.
            raise Error(
                Code.FAILED_PRECONDITION, f"product {id} has orders and cannot be deleted"
            ) from None


# Users


@users.create
@requires("users:write")
async def create_user(db: Provided[Database], user: NewUser) -> User:
    """Register a user. Emails are unique: a taken one is ALREADY_EXISTS."""
    async with db.transaction(write=True) as session:
        row = UserRow(name=user.name, email=user.email)
        session.add(row)
        try:
            await session.flush()
        except IntegrityError:
            # The only constraint a valid NewUser can break is the unique email.
            raise Error(
                Code.ALREADY_EXISTS, f"a user with email {user.email} already exists"
            ) from None
        return _user(row)


@users.get
@public
async def get_user(db: Provided[Database], id: Id) -> User:
    """Get one user by id."""
    async with db.transaction() as session:
        return _user(await _find_user(session, id))


@users.list
@public
async def list_users(
    db: Provided[Database], page_size: PageSize = 20, page_token: str = ""
) -> ListUsersResponse:
    """List users in id order."""
    filters: Filters = {"list": "users"}
    query = select(UserRow).where(UserRow.id > _after(db, page_token, filters))
    async with db.transaction() as session:
        rows = (await session.scalars(query.order_by(UserRow.id).limit(page_size + 1))).all()
    return ListUsersResponse(
        users=[_user(row) for row in rows[:page_size]],
        next_page_token=_next_token(db, [row.id for row in rows], page_size, filters),
    )


# Orders


@orders.create
@requires("orders:write", check=owner)
async def create_order(
    db: Provided[Database], user_id: Id, order: NewOrder, ctx: Context, idempotency_key: str = ""
) -> Order:
    """Place an order; its total is the product's current price times the quantity.

    A retry with the same ``idempotency_key`` places it only once.
    """
    async with db.transaction(write=True) as session:
        await _find_user(session, user_id)
        product = await _find_product(session, order.product_id)
        row = OrderRow(
            user_id=user_id,
            product_id=product.id,
            quantity=order.quantity,
            total_cents=product.price_cents * order.quantity,
            status=OrderStatus.OPEN.value,
        )
        session.add(row)
        try:
            await session.flush()
        except IntegrityError:
            # The user or product was deleted by a concurrent call since we read it.
            raise Error(Code.NOT_FOUND, "the user or the product no longer exists") from None
        placed = _order(row)
        # The key's answer commits with the order, or neither does.
        await idempotency.complete(ctx, placed, within=session)
        return placed


@orders.get
@requires(check=owner)
async def get_order(db: Provided[Database], user_id: Id, order_id: Id) -> Order:
    """Get one of a user's orders."""
    async with db.transaction() as session:
        return _order(await _find_order(session, user_id, order_id))


@orders.list
@requires(check=owner)
async def list_orders(
    db: Provided[Database], user_id: Id, page_size: PageSize = 20, page_token: str = ""
) -> ListOrdersResponse:
    """List a user's orders in id order."""
    filters: Filters = {"list": "orders", "user_id": user_id}
    query = select(OrderRow).where(
        OrderRow.user_id == user_id, OrderRow.id > _after(db, page_token, filters)
    )
    async with db.transaction() as session:
        await _find_user(session, user_id)
        rows = (await session.scalars(query.order_by(OrderRow.id).limit(page_size + 1))).all()
    return ListOrdersResponse(
        orders=[_order(row) for row in rows[:page_size]],
        next_page_token=_next_token(db, [row.id for row in rows], page_size, filters),
    )


@orders.action("cancel")
@requires("orders:write", check=owner)
async def cancel_order(db: Provided[Database], user_id: Id, order_id: Id, etag: str = "") -> Order:
    """Cancel an open order. Cancelling one that is already cancelled is FAILED_PRECONDITION."""
    async with db.transaction(write=True) as session:
        row = await _find_order(session, user_id, order_id, lock=True)
        check_etag(etag, row.version, f"order {order_id}")
        row.version = new_version()
        if row.status == OrderStatus.CANCELLED.value:
            raise Error(Code.FAILED_PRECONDITION, f"order {order_id} is already cancelled")
        row.status = OrderStatus.CANCELLED.value
        await session.flush()
        return _order(row)


# Procedures


@service.procedure(
    idempotency=Idempotency.NO_SIDE_EFFECTS, cache=Cache(private=True, max_age=PRODUCT_MAX_AGE)
)
@public
async def generate_report(db: Provided[Database], category: CategoryFilter | None = None) -> Report:
    """Count the products of each category and add up their prices.

    With ``category``, only that category is reported (an empty list if it
    has no products).
    """
    query = select(
        ProductRow.category, func.count(ProductRow.id), func.sum(ProductRow.price_cents)
    ).group_by(ProductRow.category)
    if category is not None:
        query = query.where(ProductRow.category == category)
    async with db.transaction() as session:
        rows = (await session.execute(query)).all()
    summaries = [
        # PostgreSQL sums BIGINT as NUMERIC (a Decimal here), SQLite as an int.
        CategorySummary(category=name, product_count=count, total_value=money(int(total)))
        for name, count, total in rows
    ]
    # Sorted here rather than by ORDER BY, whose order is the database's
    # collation: SQLite compares code points, PostgreSQL usually the locale.
    summaries.sort(key=lambda summary: summary.category)
    return Report(categories=summaries)
