"""``twofold serve``'s server limits hold on native gRPC too: as grpcio's options, and
in Envoy's configuration on the one port (``--server pyvoy``)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from tests.e2e.grpc_app import Text, service
from tests.e2e.server import start
from twofold.protobuf import Schema

TARGET = "tests.e2e.grpc_app:app"


@pytest.mark.parametrize("chosen", [(), ("--server", "pyvoy")])
def test_metadata_over_the_header_limit_is_refused(tmp_path: Path, chosen: tuple[str, ...]) -> None:
    server = start(TARGET, tmp_path, None, *chosen, "--max-header-bytes", "4096")
    method = service.methods["EchoMetadata"]
    schema = Schema(service)
    try:
        with grpc.insecure_channel(server.grpc_target) as channel:
            echo = channel.unary_unary(
                method.path,
                request_serializer=schema.codec(method.input_type).encode,
                response_deserializer=schema.codec(method.output_type).decode,
            )
            small = echo(method.input_type(name="x-a"), metadata=[("x-a", "a" * 1000)], timeout=10)
            assert small == Text("grpc " + "a" * 1000)
            with pytest.raises(grpc.RpcError) as info:
                echo(method.input_type(name="x-a"), metadata=[("x-a", "a" * 6000)], timeout=10)
            if chosen:
                # Envoy resets a stream whose header block is over the limit
                # (RST_STREAM, RFC 9113 §8.2.3's stream error): never reaches the App.
                assert info.value.code() == grpc.StatusCode.INTERNAL
                assert "RST_STREAM" in str(info.value.details())
            else:
                assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        server.stop()
