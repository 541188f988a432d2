"""``twofold serve --workers N``: ``/metrics`` on any worker reports the whole server."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.grpc_app import service
from tests.e2e.server import Server, start
from tests.e2e.supervised_app import Number, workers
from tests.e2e.test_grpc_serve import call
from tests.e2e.test_supervision import TARGET, two_workers, wait_for
from twofold.protobuf import Schema

SCHEMA = Schema(workers)
WHERE = workers.methods["Where"]
WHOAMI = service.methods["Whoami"].full_name
LOCAL = [("grpc.use_local_subchannel_pool", 1)]  # each channel a connection of its own


def samples(server: Server, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples with ``labels``, as one scrape of /metrics reports it."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


class Stream:
    """One ``Where`` stream on a connection of its own, read in a thread."""

    def __init__(self, server: Server) -> None:
        self.channel = grpc.insecure_channel(server.grpc_target, options=LOCAL)
        stream = self.channel.unary_stream(
            WHERE.path,
            request_serializer=SCHEMA.codec(WHERE.input_type).encode,
            response_deserializer=SCHEMA.codec(WHERE.output_type).decode,
        )
        self.call: Iterator[Number] = stream(WHERE.input_type(interval=0.2), timeout=120)
        self.pid = next(self.call).n
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        try:
            for _ in self.call:
                pass
        except grpc.RpcError:
            pass

    def close(self) -> None:
        self.call.cancel()  # type: ignore[attr-defined]
        self.reader.join(timeout=10)
        self.channel.close()


def test_metrics_on_any_worker_report_every_worker(tmp_path: Path) -> None:
    server = start(TARGET, tmp_path, {"TMPDIR": str(tmp_path)}, "--workers", "2")
    streams: list[Stream] = []
    spare: list[Stream] = []
    try:
        pids = two_workers(server)
        (directory,) = tmp_path.glob("twofold-metrics-*")
        # Two streams on each worker: connections land where the kernel puts them.
        while len(streams) < 4:
            stream = Stream(server)
            on_it = [s for s in streams if s.pid == stream.pid]
            (streams if len(on_it) < 2 else spare).append(stream)
        for stream in spare:
            stream.close()
        assert {s.pid for s in streams} == set(pids)
        answered: list[int] = []
        while set(answered) != set(pids) or len(answered) < 6:  # some on each worker
            with grpc.insecure_channel(server.grpc_target, options=LOCAL) as channel:
                answered.append(call(channel, "Whoami").n)
        unary = len(answered)
        where = {"protocol": "grpc", "method": WHERE.full_name}
        whoami = {"protocol": "grpc", "code": "ok", "method": WHOAMI}
        for _ in range(8):  # scrapes spread over both workers too
            assert samples(server, "twofold_calls_in_flight", **where) == 4
            assert samples(server, "twofold_calls_total", **whoami) == unary
            timed = samples(server, "twofold_call_duration_seconds_count", method=WHOAMI)
            assert timed == unary

        # A worker killed with its streams: they leave the gauge, its counts stay.
        os.kill(streams[0].pid, signal.SIGKILL)
        wait_for(
            lambda: samples(server, "twofold_calls_in_flight", **where) == 2,
            "the dead worker's streams leave the gauge",
        )
        for _ in range(4):
            assert samples(server, "twofold_calls_in_flight", **where) == 2
            assert samples(server, "twofold_calls_total", **whoami) == unary
    finally:
        for stream in streams:
            stream.close()
        server.stop()
    assert server.process.returncode == 0
    assert not directory.exists()  # the supervisor's own directory goes with it
