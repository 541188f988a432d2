"""A served app stopped by SIGTERM while calls are open on it, as
test_one_port_stop.py (pyvoy's Envoys) and test_supervision.py (uvicorn's
workers) both stop one: each call in a thread of its own, the signal sent
once every call is open, then the calls and the server awaited.

The calls here are the Ticks stream of tests/e2e/grpc_app.py, which never
ends by itself: how it ends is the server's doing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Mapping
from typing import Any

import grpc
import httpx

from tests.e2e.grpc_app import service
from tests.e2e.server import WAIT, Server
from tests.e2e.test_grpc_serve import SCHEMA
from twofold.http.envelope import frame
from twofold.testing.parity.answers import envelopes

TICKS = service.methods["Ticks"]
TICKS_REQUEST = SCHEMA.codec(TICKS.input_type).encode(TICKS.input_type(interval=0.2))
CONNECT_TICKS = ("application/connect+json", b'{"interval":0.2}')
GRPC_WEB_TICKS = ("application/grpc-web+proto", TICKS_REQUEST)

Call = Callable[[threading.Barrier], Any]
"""A call that passes the barrier once it is open, then returns how it ended."""


def sigterm_during(server: Server, calls: Mapping[str, Call]) -> tuple[int, dict[str, Any]]:
    """Run each call in a thread; once all are open, SIGTERM the server. The
    server's exit status, and what each call returned, by name."""
    ends: dict[str, Any] = {}
    opened = threading.Barrier(len(calls) + 1)  # the calls and this thread

    def run(name: str, call: Call) -> None:
        ends[name] = call(opened)

    threads = [threading.Thread(target=run, args=item) for item in calls.items()]
    for thread in threads:
        thread.start()
    opened.wait(timeout=WAIT)
    server.process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(timeout=WAIT)
    return server.process.wait(timeout=WAIT), ends


def grpc_ticks(server: Server, opened: threading.Barrier) -> grpc.StatusCode:
    """Ticks over native gRPC (grpcio): open once the first tick came; the status it ended with."""
    with grpc.insecure_channel(server.grpc_target) as channel:
        stream = channel.unary_stream(
            TICKS.path,
            request_serializer=lambda m: m,
            response_deserializer=SCHEMA.codec(TICKS.output_type).decode,
        )
        answers = stream(TICKS_REQUEST, timeout=60)
        next(answers)
        opened.wait()
        try:
            list(answers)
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def http_ticks(
    server: Server, content_type: str, body: bytes, opened: threading.Barrier
) -> tuple[int, bytes]:
    """Ticks over Connect or gRPC-Web (httpx): open once the first bytes came;
    the last envelope, (flags, data), which says how the stream ended."""
    url = f"{server.url}{TICKS.path}"
    headers = {"content-type": content_type}
    with httpx.stream("POST", url, content=frame(body), headers=headers, timeout=60) as r:
        chunks = r.iter_raw()
        first = next(chunks)
        opened.wait()
        flags, data = envelopes(first + b"".join(chunks))[-1]
    return flags, data
