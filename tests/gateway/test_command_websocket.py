"""``twofold gateway``'s own server takes the gateway's WebSocket limits.

A message past ``GatewayOptions.websocket``'s size (the gateway's body limit,
4 MiB, by default) is refused as its frame header arrives, 1009, not after
uvicorn has buffered it up to its own default of 16 MiB: the frame below
declares 8 MiB and sends none of it, so only a server that knows the
gateway's limit answers at all.
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import Server, spawn
from tests.e2e.websocket_wire import close_code, raw_upgrade
from tests.gateway.upstream import Upstream


@pytest.fixture(scope="module")
def gateway(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("gateway-command")

    def argv(port: int, _: int | None) -> list[str]:
        return [sys.executable, "-m", "twofold", "gateway", "--upstream", upstream.target,
                "--port", str(port)]  # fmt: skip

    server = spawn(argv, tmp)
    yield server
    server.stop()


def test_a_message_past_the_gateways_limit_is_refused_as_it_is_announced(gateway: Server) -> None:
    with raw_upgrade(gateway.port) as sock:
        sock.settimeout(10)
        # A masked text frame announcing 8 MiB, and nothing of it.
        sock.sendall(b"\x81\xff" + struct.pack("!Q", 8 << 20) + os.urandom(4))
        assert close_code(sock) == 1009
