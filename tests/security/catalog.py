"""Calls to the catalog that the attacks in this folder share: native gRPC without protoc,
Prometheus samples from /metrics."""

from __future__ import annotations

import functools
from typing import Any

import grpc
import msgspec

from examples.catalog import service
from twofold.protobuf import Schema

WATCH_PRICES = "catalog.v1.CatalogService/WatchPrices"


@functools.cache
def schema() -> Schema:
    return Schema(service)


def grpc_method(channel: grpc.aio.Channel, rpc: str) -> Any:
    """A grpcio multi-callable for one catalog method, coded by Twofold's schema."""
    method = service.methods[rpc]
    kind = "unary_stream" if method.kind.value == "server" else "unary_unary"
    return getattr(channel, kind)(
        method.path,
        request_serializer=schema().codec(method.input_type).encode,
        response_deserializer=schema().codec(method.output_type).decode,
    )


def message(rpc: str, payload: dict[str, Any]) -> Any:
    return msgspec.convert(payload, service.methods[rpc].input_type, strict=False)


def sample(metrics: str, name: str, method: str) -> float:
    """The sum of ``name``'s samples for ``method`` over every protocol."""
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith(name + "{") and f'method="{method}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total
