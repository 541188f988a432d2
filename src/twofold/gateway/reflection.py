"""The upstream's schema read over gRPC server reflection (v1, else v1alpha).

The two versions have the same messages on different paths, so one set of
message classes serves both. Every answer is checked: a reflection that
times out, is missing, or returns files that do not parse is a
:class:`~twofold.gateway.descriptors.SchemaError` with a sentence, not a crash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2 as pb

from twofold.gateway.descriptors import Schema, SchemaError, all_services

PATHS = (
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
)


async def from_reflection(
    channel: grpc.aio.Channel, services: Sequence[str] = (), wait: float = 10.0
) -> Schema:
    """The schema of every service the upstream lists (or of ``services``)."""
    tried = []
    for path in PATHS:
        try:
            return await asyncio.wait_for(_read(channel, path, services), wait)
        except _Failed as exc:
            if exc.code is grpc.StatusCode.UNAVAILABLE:
                raise SchemaError(f"server reflection failed: UNAVAILABLE {exc.details}") from None
            # UNIMPLEMENTED: not this version. grpcio may also report a call the
            # server refused at once as INTERNAL ("error from Core"), racing
            # its request: either way, this version cannot be read.
            tried.append(f"{path.split('/')[1]}: {exc.code.name}")
        except TimeoutError:
            raise SchemaError(f"server reflection did not answer within {wait:g}s") from None
    raise SchemaError(f"the upstream offers no server reflection ({'; '.join(tried)})")


class _Failed(Exception):
    """The reflection call's own status (not what a write that raced it said)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self.code = code
        self.details = details


async def _read(channel: grpc.aio.Channel, path: str, services: Sequence[str]) -> Schema:
    stub = channel.stream_stream(
        path,
        request_serializer=pb.ServerReflectionRequest.SerializeToString,
        response_deserializer=pb.ServerReflectionResponse.FromString,
    )

    async def ask(**request: Any) -> Any:
        # One call per question, its one request given up front: writing to a
        # call the server already ended (UNIMPLEMENTED) would race its status.
        # wait_for_ready: an upstream starting beside the gateway is waited for,
        # up to the reflection timeout, instead of failing the start-up at once.
        call = stub(iter([pb.ServerReflectionRequest(**request)]), wait_for_ready=True)
        try:
            answer = await call.read()
        except grpc.aio.AioRpcError as exc:
            raise _Failed(exc.code(), exc.details() or "") from None
        finally:
            call.cancel()
        if answer is grpc.aio.EOF:
            raise _Failed(await call.code(), await call.details() or "")
        if answer.HasField("error_response"):
            err = answer.error_response
            raise SchemaError(f"server reflection: {err.error_message or err.error_code}")
        return answer

    if not services:
        listed = await ask(list_services="")
        names = [s.name for s in listed.list_services_response.service]
        services = [n for n in names if not n.startswith("grpc.")]
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}

    def take(raw: Sequence[bytes]) -> None:
        for data in raw:
            proto = descriptor_pb2.FileDescriptorProto()
            try:
                proto.ParseFromString(data)
            except Exception:
                raise SchemaError("server reflection sent a file that does not parse") from None
            files.setdefault(proto.name, proto)

    for name in services:
        found = await ask(file_containing_symbol=name)
        take(found.file_descriptor_response.file_descriptor_proto)
    # A server may send only the file asked for: fetch missing imports by name.
    missing = _missing(files)
    while missing:
        for name in missing:
            found = await ask(file_by_filename=name)
            take(found.file_descriptor_response.file_descriptor_proto)
            if name not in files:
                raise SchemaError(f"server reflection does not know {name}")
        missing = _missing(files)
    return Schema(files, tuple(services) or all_services(files.values()))


def _missing(files: dict[str, descriptor_pb2.FileDescriptorProto]) -> list[str]:
    return sorted({d for f in files.values() for d in f.dependency if d not in files})
