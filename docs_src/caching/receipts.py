"""docs/caching.md: idempotency keys in the application's database, completed
in the handler's own transaction."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from sqlalchemy import LargeBinary, String, and_, delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from twofold import App, Context, Deadlines, IdempotencyKeys, Service
from twofold.interceptors import idempotency
from twofold.interceptors.idempotency import Claim, Record, lease_lost, running


class Base(DeclarativeBase):
    pass


class ReceiptRow(Base):
    __tablename__ = "receipts"
    __table_args__ = {"sqlite_autoincrement": True}  # never reuse an id an answer names
    id: Mapped[int] = mapped_column(primary_key=True)
    amount: Mapped[int]


class KeyRow(Base):
    __tablename__ = "idempotency_keys"
    method: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    token: Mapped[str] = mapped_column(String(64))  # which call holds it
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary)
    response: Mapped[bytes | None] = mapped_column(LargeBinary)  # NULL while running
    expires_at: Mapped[float]  # the lease's end, then the answer's


def held(claim: Claim) -> Any:
    """The key's row while ``claim`` holds it without an answer."""
    return and_(KeyRow.method == claim.scope, KeyRow.key == claim.key,
                KeyRow.token == claim.token, KeyRow.response.is_(None))  # fmt: skip


sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(expire_on_commit=False)


class SqlKeys:
    """An IdempotencyStore over the same database as the receipts."""

    async def reserve(self, claim: Claim, fingerprint: bytes, lease: float) -> Record | None:
        async with sessions.begin() as session:
            await session.execute(delete(KeyRow).where(KeyRow.expires_at <= time.time()))
            row = await session.get(KeyRow, (claim.scope, claim.key), with_for_update=True)
            if row is not None:
                return Record(row.fingerprint, row.response)
            new = KeyRow(method=claim.scope, key=claim.key, token=claim.token,
                         fingerprint=fingerprint, response=None, expires_at=lease)  # fmt: skip
            session.add(new)
            try:
                await session.flush()
            except IntegrityError:  # claimed meanwhile by another process
                raise running() from None
            return None

    async def complete(
        self, claim: Claim, response: bytes, expires: float, within: Any = None
    ) -> None:
        if within is None:
            async with sessions.begin() as session:
                await self.complete(claim, response, expires, session)
            return
        # Changes the row only while this call holds the key, and locks it
        # until the handler's transaction ends.
        done: Any = await within.execute(
            update(KeyRow).where(held(claim)).values(response=response, expires_at=expires)
        )
        if done.rowcount != 1:
            raise lease_lost()  # a retry took the key over: roll this write back

    async def release(self, claim: Claim) -> None:
        async with sessions.begin() as session:
            await session.execute(delete(KeyRow).where(held(claim)))


class NewReceipt(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    amount: int


class Receipt(msgspec.Struct, kw_only=True):
    id: int
    amount: int


service = Service("till.v1")
receipts = service.resource("receipts")


@receipts.create
async def create_receipt(receipt: NewReceipt, ctx: Context, idempotency_key: str = "") -> Receipt:
    async with sessions.begin() as session:
        row = ReceiptRow(amount=receipt.amount)
        session.add(row)
        await session.flush()
        answer = Receipt(id=row.id, amount=row.amount)
        # The receipt and its key's answer commit together, or neither does.
        await idempotency.complete(ctx, answer, within=session)
    return answer


@asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[None]:
    engine = create_async_engine(os.environ.get("TILL_DATABASE_URL", "sqlite+aiosqlite:///till.db"))
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    sessions.configure(bind=engine)
    yield
    await engine.dispose()


app = App(
    service,
    lifespan=lifespan,
    interceptors=[Deadlines(default=10), IdempotencyKeys(SqlKeys(), lease=30)],
)
