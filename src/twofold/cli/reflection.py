"""Method types from gRPC server reflection, for ``twofold call`` over the binary wires.

A running ``twofold serve`` answers ``grpc.reflection.v1alpha`` on its gRPC
port with the descriptors of its schema; from them this module builds
protobuf message classes at run time (no ``.proto``, no protoc), so that a
JSON message typed on the command line can go out as protobuf on gRPC,
gRPC-Web or Connect's binary codec, and each answer comes back as JSON.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError, Message
from grpc_reflection.v1alpha import reflection_pb2

from twofold.cli.methods import Methods
from twofold.client.channels import failure
from twofold.client.codecs import Codecs, MessageCodec
from twofold.client.grpcwire import address, metadata
from twofold.client.rpc import Rpc
from twofold.core.code import Code
from twofold.core.errors import Error
from twofold.core.method import StreamKind

_INFO = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
_KINDS = {
    (False, False): StreamKind.UNARY,
    (False, True): StreamKind.SERVER,
    (True, False): StreamKind.CLIENT,
    (True, True): StreamKind.BIDI,
}


class Reflected(Methods):
    """The methods a server's reflection describes, with codecs built from the descriptors.

    Messages handed to the calls are protobuf message objects: :meth:`message`
    parses the user's JSON into one (proto3 JSON, strictly: an unknown field
    is refused before anything is sent), :meth:`output` prints one back with
    the original field names and every field, as Twofold's Connect JSON does.
    """

    def __init__(self, pool: descriptor_pool.DescriptorPool, services: list[str]) -> None:
        self.pool = pool
        self.rpcs: list[Rpc[Any, Any]] = []
        for name in services:
            service = pool.FindServiceByName(name)
            for method in service.methods:
                kind = _KINDS[(method.client_streaming, method.server_streaming)]
                self.rpcs.append(Rpc(service.full_name, method.name, dict, dict, kind=kind))
        self.described = DescribedCodecs(pool)
        self.codecs = self.described

    def message(self, rpc: Rpc[Any, Any], value: Any) -> Message:
        cls = self.described.classes(rpc)[0]
        try:
            message: Message = json_format.ParseDict(value, cls())
        except json_format.ParseError as exc:
            raise Error(Code.INVALID_ARGUMENT, f"{rpc.name}: {exc}") from None
        return message

    def output(self, rpc: Rpc[Any, Any], value: Message) -> Any:
        return json_format.MessageToDict(
            value, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )


class DescribedCodecs(Codecs):
    """Codecs of message objects whose classes come from descriptors."""

    def __init__(self, pool: descriptor_pool.DescriptorPool) -> None:
        super().__init__([], [])
        self._pool = pool

    def classes(self, rpc: Rpc[Any, Any]) -> tuple[type[Message], type[Message]]:
        method = self._pool.FindMethodByName(f"{rpc.service}.{rpc.name}")
        return (
            message_factory.GetMessageClass(method.input_type),
            message_factory.GetMessageClass(method.output_type),
        )

    def proto(self, rpc: Rpc[Any, Any]) -> MessageCodec:
        output = self.classes(rpc)[1]

        def decode(data: bytes) -> Message:
            try:
                return output.FromString(data)
            except DecodeError as exc:
                raise Error(Code.INTERNAL, f"not a {output.DESCRIPTOR.full_name}: {exc}") from None

        return MessageCodec(_serialized, decode)

    def json(self, rpc: Rpc[Any, Any]) -> MessageCodec:
        output = self.classes(rpc)[1]

        def decode(data: bytes) -> Message:
            try:
                return json_format.Parse(data, output(), ignore_unknown_fields=True)
            except json_format.ParseError as exc:
                raise Error(Code.INTERNAL, str(exc)) from None

        return MessageCodec(_json, decode)


def _serialized(message: Message) -> bytes:
    return message.SerializeToString()


def _json(message: Message) -> bytes:
    text = json_format.MessageToJson(message, preserving_proto_field_name=True, indent=None)
    return text.encode()


def reflect(target: str, headers: Mapping[str, str], deadline: float | None) -> Reflected:
    """Ask the gRPC server at ``target`` (``host:port`` or an http(s) URL) for its
    services and their files; a coded error when it cannot tell."""
    try:
        host, secure = address(target)
    except ValueError as exc:
        raise Error(Code.INVALID_ARGUMENT, str(exc)) from None
    channel = (
        grpc.secure_channel(host, grpc.ssl_channel_credentials())
        if secure
        else grpc.insecure_channel(host)
    )
    with channel:
        asker = _Asker(channel, metadata(headers), deadline)
        listed = asker.ask(reflection_pb2.ServerReflectionRequest(list_services=""))
        services = [s.name for s in listed.list_services_response.service]
        files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
        for name in services:
            asker.files(reflection_pb2.ServerReflectionRequest(file_containing_symbol=name), files)
        pool = descriptor_pool.DescriptorPool()
        added: set[str] = set()
        for name in list(files):
            _add(name, files, pool, added, asker)
    return Reflected(pool, services)


class _Asker:
    """One reflection question per call, each within the command's deadline."""

    def __init__(self, channel: grpc.Channel, sent: Any, deadline: float | None) -> None:
        self._call = channel.stream_stream(
            _INFO,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        self._metadata = sent
        self._deadline = deadline

    def ask(self, request: Any) -> Any:
        timeout = None if self._deadline is None else max(0.001, self._deadline - time.monotonic())
        try:
            answers = list(self._call(iter([request]), timeout=timeout, metadata=self._metadata))
        except grpc.RpcError as exc:
            error = failure(exc).error
            raise Error(error.code, f"server reflection failed: {error.message}") from None
        if len(answers) != 1:
            raise Error(Code.INTERNAL, f"server reflection answered {len(answers)} messages")
        answer = answers[0]
        if answer.HasField("error_response"):
            problem = answer.error_response
            code = Code(problem.error_code) if 0 < problem.error_code <= 16 else Code.UNKNOWN
            raise Error(code, f"server reflection: {problem.error_message}")
        return answer

    def files(self, request: Any, into: dict[str, descriptor_pb2.FileDescriptorProto]) -> None:
        for raw in self.ask(request).file_descriptor_response.file_descriptor_proto:
            proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
            into.setdefault(proto.name, proto)


def _add(
    name: str,
    files: dict[str, descriptor_pb2.FileDescriptorProto],
    pool: descriptor_pool.DescriptorPool,
    added: set[str],
    asker: _Asker,
) -> None:
    """Add a file after its dependencies (asked for when the server left one out)."""
    if name in added:
        return
    added.add(name)
    if name not in files:
        asker.files(reflection_pb2.ServerReflectionRequest(file_by_filename=name), files)
    proto = files[name]
    for dependency in _dependencies(proto):
        _add(dependency, files, pool, added, asker)
    pool.Add(proto)


def _dependencies(proto: descriptor_pb2.FileDescriptorProto) -> Iterator[str]:
    yield from proto.dependency
