"""A conftest.py for the parity tests of a shelf that is already running elsewhere."""

import os
from collections.abc import Iterator

import pytest

from docs_src.testing.shelf import service
from twofold.testing.parity import Wires

URL = os.environ.get("SHELF_URL", "http://127.0.0.1:8000")
GRPC_TARGET = os.environ.get("SHELF_GRPC_TARGET", "127.0.0.1:50051")


@pytest.fixture(scope="session")
def twofold_parity() -> Iterator[Wires]:
    with Wires.connect(service, URL, grpc_target=GRPC_TARGET) as wires:
        yield wires
