"""docs/openapi.md: a departures board whose served document is OpenAPI 3.2."""

from collections.abc import AsyncIterator

import msgspec

from twofold import App, Idempotency, Options, Service

board = Service("board.v1", description="Departures of one railway station.")
trains = board.resource("trains")


class Train(msgspec.Struct):
    id: int
    destination: str
    platform: int


TRAINS = {1: Train(1, "Lyon", 3), 2: Train(2, "Turin", 5)}


@trains.get
async def get_train(id: int) -> Train:
    """One train on the board."""
    return TRAINS[id]


@board.procedure(http=("GET", "/departures:watch"), idempotency=Idempotency.NO_SIDE_EFFECTS)
async def watch_departures() -> AsyncIterator[Train]:
    """Each train as it is announced: Server-Sent Events over REST."""
    for train in TRAINS.values():
        yield train


app = App(board, title="Departures", version="1.0.0", options=Options(openapi_version="3.2"))
