"""Product images: ``PUT /products/{id}/image`` and ``GET /products/{id}/image``.

An image is uploaded as a :class:`twofold.Upload`: REST takes it raw
(``Content-Type: image/png``) or as a ``multipart/form-data`` part named
``image``, and the handler reads it as it arrives, its media type checked
before a byte of it is read and its size held to 8 MiB while it is read
(the App's upload limit is larger). It is answered as a :class:`twofold.File`
with its own media type, ETag and ranges; the RPC wires carry its bytes.
It lives in the catalog's database, one row per product, and goes when its
product does (``ON DELETE CASCADE``; migration 0003).
"""

from __future__ import annotations

import hashlib
import time

import msgspec
from sqlalchemy import BigInteger, Float, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from examples.catalog.database import Base, Database, ProductRow
from examples.catalog.models import Id
from examples.catalog.service import service
from twofold import (
    Code,
    Error,
    File,
    Idempotency,
    Provided,
    Upload,
    check_etag,
    public,
    requires,
)

# What a browser can show; anything else is refused, not stored.
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif"})
# Under the App's upload limit: a product picture, not a photo archive.
MAX_IMAGE_SIZE = 8 << 20


class ProductImageRow(Base):
    __tablename__ = "product_images"

    product_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        ForeignKey("products.id", ondelete="CASCADE"),
        primary_key=True,
    )
    content_type: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str] = mapped_column(String(255))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    # A hash of the bytes: the image's strong ETag, the same on every process.
    etag: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[float] = mapped_column(Float, default=time.time)


class ProductImage(msgspec.Struct, kw_only=True):
    """What was stored: the image's media type, size, name and ETag."""

    product_id: Id
    content_type: str
    size: int
    filename: str
    etag: str


@service.procedure(http=("PUT", "/products/{id}/image"), idempotency=Idempotency.IDEMPOTENT)
@requires("products:write")
async def put_product_image(
    db: Provided[Database], id: Id, image: Upload, etag: str = ""
) -> ProductImage:
    """Set a product's image (PNG, JPEG, GIF, WebP or AVIF, at most 8 MiB);
    with ``etag`` (REST: If-Match), only if the image is still that one."""
    media = image.content_type.split(";", 1)[0].strip().lower()
    if media not in IMAGE_TYPES:
        # Refused before a byte of the body is read.
        raise Error.invalid("image.content_type", f"{media or 'no type'} is not an image type")
    # The column takes bytes, so they are gathered, but never more than 8 MiB
    # of them: past that, read() raises (413) and nothing is written.
    data = await image.read(MAX_IMAGE_SIZE)
    if not data:
        raise Error.invalid("image.data", "the image is empty")
    tag = hashlib.sha256(data).hexdigest()[:32]
    async with db.transaction(write=True) as session:
        if await session.get(ProductRow, id) is None:
            raise Error(Code.NOT_FOUND, f"product {id} not found")
        row = await session.get(ProductImageRow, id, with_for_update=True)
        # Inside the transaction, the row locked: no write comes between check and write.
        check_etag(etag, "" if row is None else row.etag, f"product {id}'s image")
        if row is None:
            row = ProductImageRow(product_id=id)
            session.add(row)
        row.content_type, row.filename, row.data, row.etag = (
            media,
            image.filename,
            data,
            tag,
        )
        row.updated_at = time.time()
        await session.flush()
    return ProductImage(
        product_id=id, content_type=media, size=len(data), filename=image.filename, etag=tag
    )


@service.procedure(http=("GET", "/products/{id}/image"), idempotency=Idempotency.NO_SIDE_EFFECTS)
@public
async def get_product_image(db: Provided[Database], id: Id) -> File:
    """A product's image, with its ETag; REST honours Range and If-None-Match."""
    async with db.transaction() as session:
        row = await session.get(ProductImageRow, id)
        if row is None:
            raise Error(Code.NOT_FOUND, f"product {id} has no image")
        return File(data=row.data, content_type=row.content_type, filename=row.filename,
                    etag=row.etag)  # fmt: skip
