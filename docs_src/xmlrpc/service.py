"""A meter served over XML-RPC at /RPC2 (and every other wire) by one App."""

from datetime import UTC, datetime
from decimal import Decimal

import msgspec

from twofold import App, Code, Error, Service

meter = Service("meter.v1")


class Reading(msgspec.Struct):
    site: str
    bytes_served: int  # past 2**31: an <i8> on XML-RPC
    cost: Decimal  # a string, as in JSON
    taken_at: datetime  # an RFC 3339 string, as in JSON
    note: str | None = None  # None: the member is left out


SITES = {"north": 5_000_000_000, "south": 1_024}


@meter.procedure
async def read_meter(site: str, scale: int = 1) -> Reading:
    """The bytes a site served, times ``scale``."""
    if site not in SITES:
        raise Error(Code.NOT_FOUND, f"no site {site}")
    taken = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    return Reading(site, SITES[site] * scale, Decimal("12.50"), taken)


app = App(meter)
