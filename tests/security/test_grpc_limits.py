"""``twofold serve``'s server limits hold on native gRPC too, as grpcio's options."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from tests.e2e.grpc_app import Text, service
from tests.e2e.server import start
from twofold.protobuf import Schema

TARGET = "tests.e2e.grpc_app:app"


def test_metadata_over_the_header_limit_is_refused(tmp_path: Path) -> None:
    server = start(TARGET, tmp_path, None, "--max-header-bytes", "4096")
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
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        server.stop()
