"""Stations on REST, answered in JSON or XML as each client's Accept prefers."""

from datetime import datetime
from decimal import Decimal

import msgspec

from twofold import App, Code, Error, Service


class Station(msgspec.Struct, kw_only=True):
    id: int
    name: str
    tariff: Decimal
    bytes_served: int
    open: bool
    tags: list[str] = []
    opened_at: datetime
    note: str | None = None


class NewStation(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    tariff: Decimal
    tags: list[str] = []


service = Service("grid.v1")
stations = service.resource("stations")
STATIONS: dict[int, Station] = {}


@stations.create
async def create_station(station: NewStation) -> Station:
    made = Station(
        id=len(STATIONS) + 1,
        name=station.name,
        tariff=station.tariff,
        bytes_served=5_000_000_000,
        open=True,
        tags=station.tags,
        opened_at=datetime.fromisoformat("2026-01-02T03:04:05Z"),
    )
    STATIONS[made.id] = made
    return made


@stations.get
async def get_station(id: int) -> Station:
    if id not in STATIONS:
        raise Error(Code.NOT_FOUND, f"no station {id}")
    return STATIONS[id]


app = App(service)
