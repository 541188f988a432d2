"""docs/protobuf.md: a service whose messages become protobuf, with pinned numbers."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

import msgspec

from twofold import Idempotency, Service
from twofold.protobuf import FieldNumber, Schema


class Carrier(enum.Enum):
    """Who carries the parcel."""

    POST = "post"
    COURIER = "courier"


class Letter(msgspec.Struct, tag="letter"):
    grams: int


class Parcel(msgspec.Struct, tag="parcel"):
    grams: int
    fragile: bool = False


class Shipment(msgspec.Struct, kw_only=True):
    """A parcel or letter on its way."""

    id: Annotated[int, FieldNumber(1)]
    carrier: Carrier
    item: Letter | Parcel
    sent_at: datetime | None = None
    notes: dict[str, str] = {}


service = Service("shipping.v1")
shipments = service.resource("shipments")
SHIPMENTS: dict[int, Shipment] = {}


@shipments.get
async def get_shipment(id: int) -> Shipment:
    """Where a shipment is."""
    return SHIPMENTS[id]


@service.procedure(idempotency=Idempotency.NO_SIDE_EFFECTS)
async def count_shipments(carrier: Carrier | None = None) -> Shipment:
    """Not a very useful procedure, but an RPC-only one."""
    raise NotImplementedError


# The protobuf schema, numbered by docs_src/protobuf/twofold.lock.json.
schema = Schema(service)
codec = schema.codec(Shipment)

shipment = Shipment(id=7, carrier=Carrier.COURIER, item=Parcel(grams=900, fragile=True))
data = codec.encode(shipment)  # bytes, exactly as protobuf's own runtime writes them
assert codec.decode(data) == shipment
