"""The server's own gRPC services on the one port: health and reflection.

Served by the App through the native gRPC wire (:mod:`twofold.wires.grpc`),
beside its services, as grpcio's server carries them on its port:

- ``grpc.health.v1.Health`` (``Check``, ``Watch``): SERVING for ``""`` and
  each service while the App's :class:`~twofold.server.health.Readiness`
  says ready, NOT_SERVING while it starts or drains; an unknown service is
  NOT_FOUND (``Check``) or SERVICE_UNKNOWN (``Watch``).
- ``grpc.reflection.v1.ServerReflection`` and its older ``v1alpha`` twin
  (the same messages; grpcurl and ``buf curl`` ask for v1 first): the
  descriptors of the App's schema, health's and reflection's own.

Like ``/healthz``, they skip the interceptors: no credentials, not counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from twofold.core.asgi import ASGIApp, Receive, Scope, Send
from twofold.core.code import Code
from twofold.core.context import Context
from twofold.core.errors import Error
from twofold.core.method import Method, StreamKind
from twofold.core.table import MethodTable
from twofold.protobuf import descriptors
from twofold.server.health import Readiness
from twofold.wires.grpc import GrpcProtocol

HEALTH = "grpc.health.v1.Health"
REFLECTION = ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection")
SERVING: int = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING: int = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN: int = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
WATCH_INTERVAL = 1.0  # seconds between looks at the readiness, for Watch


class GrpcServices:
    """Health and reflection for one App, as exact-path ASGI endpoints."""

    def __init__(
        self,
        protocol: GrpcProtocol,
        readiness: Readiness,
        services: Iterable[str],
    ) -> None:
        self.protocol = protocol
        self.readiness = readiness
        self.services = list(dict.fromkeys(services))
        self._pool: descriptor_pool.DescriptorPool | None = None
        self._empty = MethodTable([])  # no gates, no observers

    def endpoints(self) -> dict[str, ASGIApp]:
        methods = [
            Method(HEALTH, "Check", bytes, bytes, self._check),
            Method(HEALTH, "Watch", bytes, bytes, self._watch, kind=StreamKind.SERVER),
            *(
                Method(
                    name, "ServerReflectionInfo", bytes, bytes, self._reflect, kind=StreamKind.BIDI
                )
                for name in REFLECTION
            ),
        ]
        return {method.path: self._endpoint(method) for method in methods}

    def _endpoint(self, method: Method) -> ASGIApp:
        protocol, empty = self.protocol, self._empty

        async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
            await protocol.serve_with(empty, method, scope, receive, send)

        return endpoint

    # Health.

    def _status(self, service: str) -> int:
        if service and service not in self.services:
            return SERVICE_UNKNOWN
        return SERVING if self.readiness.ready else NOT_SERVING

    async def _check(self, request: bytes, ctx: Context) -> bytes:
        service = health_pb2.HealthCheckRequest.FromString(request).service
        status = self._status(service)
        if status == SERVICE_UNKNOWN:
            raise Error(Code.NOT_FOUND, f"unknown service {service!r}")
        answer: bytes = health_pb2.HealthCheckResponse(status=status).SerializeToString()
        return answer

    async def _watch(self, request: bytes, ctx: Context) -> AsyncIterator[bytes]:
        service = health_pb2.HealthCheckRequest.FromString(request).service
        return self._changes(service)

    async def _changes(self, service: str) -> AsyncIterator[bytes]:
        # The status now, then each change, until the client goes away.
        last = None
        while True:
            status = self._status(service)
            if status != last:
                last = status
                yield health_pb2.HealthCheckResponse(status=status).SerializeToString()
            await asyncio.sleep(WATCH_INTERVAL)

    # Reflection.

    @property
    def pool(self) -> descriptor_pool.DescriptorPool:
        if self._pool is None:
            # Built on first use: most servers are never reflected upon.
            self._pool = descriptors.pool([*self.protocol.schema.descriptors, *_own_files()])
        return self._pool

    async def _reflect(self, requests: AsyncIterator[bytes], ctx: Context) -> AsyncIterator[bytes]:
        return self._answers(requests)

    async def _answers(self, requests: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for raw in requests:
            request = reflection_pb2.ServerReflectionRequest.FromString(raw)
            yield self._answer(request).SerializeToString()

    def _answer(self, request: Any) -> Any:
        response = reflection_pb2.ServerReflectionResponse(original_request=request)
        kind = request.WhichOneof("message_request")
        try:
            if kind == "list_services":
                names = sorted([*self.services, HEALTH, *REFLECTION])
                response.list_services_response.service.extend(
                    reflection_pb2.ServiceResponse(name=n) for n in names
                )
            elif kind == "file_by_filename":
                self._files_of(response, self.pool.FindFileByName(request.file_by_filename))
            elif kind == "file_containing_symbol":
                found = self.pool.FindFileContainingSymbol(request.file_containing_symbol)
                self._files_of(response, found)
            elif kind == "file_containing_extension":
                ext = request.file_containing_extension
                message = self.pool.FindMessageTypeByName(ext.containing_type)
                extension = self.pool.FindExtensionByNumber(message, ext.extension_number)
                self._files_of(response, self.pool.FindFileContainingSymbol(extension.full_name))
            elif kind == "all_extension_numbers_of_type":
                message = self.pool.FindMessageTypeByName(request.all_extension_numbers_of_type)
                numbers = sorted(e.number for e in self.pool.FindAllExtensions(message))
                answer = response.all_extension_numbers_response
                answer.base_type_name = message.full_name
                answer.extension_number.extend(numbers)
            else:
                response.error_response.error_code = Code.INVALID_ARGUMENT.value
                response.error_response.error_message = "no request"
        except KeyError:
            response.error_response.error_code = Code.NOT_FOUND.value
            response.error_response.error_message = "not found"
        return response

    @staticmethod
    def _files_of(response: Any, file: Any) -> None:
        """The file and everything it imports, as reflection answers a file request."""
        seen: dict[str, Any] = {}
        todo = [file]
        while todo:
            current = todo.pop()
            if current.name not in seen:
                seen[current.name] = current
                todo.extend(current.dependencies)
        for found in seen.values():
            proto = descriptor_pb2.FileDescriptorProto()
            found.CopyToProto(proto)
            response.file_descriptor_response.file_descriptor_proto.append(
                proto.SerializeToString()
            )


def _own_files() -> list[descriptor_pb2.FileDescriptorProto]:
    """health.proto and reflection.proto, v1alpha and v1 (its copy in another package)."""
    files = []
    for module in (health_pb2, reflection_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        files.append(proto)
    v1 = descriptor_pb2.FileDescriptorProto()
    v1.CopyFrom(files[-1])
    v1.name = "grpc/reflection/v1/reflection.proto"
    v1.package = "grpc.reflection.v1"
    v1.ClearField("options")  # v1alpha's Java and Go package names
    old, new = ".grpc.reflection.v1alpha.", ".grpc.reflection.v1."
    for message in v1.message_type:
        for field in message.field:
            if field.HasField("type_name"):  # set only on message fields
                field.type_name = field.type_name.replace(old, new)
    for method in v1.service[0].method:
        method.input_type = method.input_type.replace(old, new)
        method.output_type = method.output_type.replace(old, new)
    files.append(v1)
    return files
