"""Server reflection that hangs or lies: the start-up stops with one clear sentence.

A hand-written grpcio server answers grpc.reflection.v1's ServerReflectionInfo
the way a broken upstream might: never, with bytes that are no
FileDescriptorProto, with a file whose import it then denies, or with a file
that does not define the service it listed.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2 as pb

from tests.e2e.server import ROOT
from tests.gateway.reflection import reflect
from twofold.gateway import SchemaError

Answer = Callable[[Any], Any]  # a request -> the response, or None to hang


def _file(name: str, *, dependency: str = "", service: str = "") -> bytes:
    proto = descriptor_pb2.FileDescriptorProto(name=name, package="fake.v1", syntax="proto3")
    proto.message_type.add(name="Thing")
    if dependency:
        proto.dependency.append(dependency)
    if service:
        proto.service.add(name=service)
    return proto.SerializeToString()


def _files(*raw: bytes) -> Any:
    return pb.ServerReflectionResponse(
        file_descriptor_response=pb.FileDescriptorResponse(file_descriptor_proto=list(raw))
    )


def _listing(*names: str) -> Any:
    services = [pb.ServiceResponse(name=n) for n in names]
    return pb.ServerReflectionResponse(
        list_services_response=pb.ListServiceResponse(service=services)
    )


@contextmanager
def reflecting(answer: Answer) -> Iterator[str]:
    """A grpcio server whose only service is a reflection that answers ``answer``."""
    release = threading.Event()

    def info(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        for request in requests:
            response = answer(request)
            if response is None:
                release.wait(30)  # hang until the test is over
                return
            yield response

    handler = grpc.stream_stream_rpc_method_handler(
        info, pb.ServerReflectionRequest.FromString, pb.ServerReflectionResponse.SerializeToString
    )
    service = grpc.method_handlers_generic_handler(
        "grpc.reflection.v1.ServerReflection", {"ServerReflectionInfo": handler}
    )
    server = grpc.server(futures.ThreadPoolExecutor(4), handlers=(service,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        release.set()
        server.stop(None)


def _hangs(request: Any) -> Any:
    return None


def _garbage(request: Any) -> Any:
    if request.HasField("list_services"):
        return _listing("fake.v1.Fake")
    return _files(b"\xff\xff\xff\xff")


def _denies_its_import(request: Any) -> Any:
    if request.HasField("list_services"):
        return _listing("fake.v1.Fake")
    if request.HasField("file_containing_symbol"):
        return _files(_file("fake.proto", dependency="missing.proto", service="Fake"))
    # Asked for missing.proto, it sends another file instead.
    return _files(_file("other.proto"))


def _lists_what_it_does_not_define(request: Any) -> Any:
    if request.HasField("list_services"):
        return _listing("fake.v1.Fake")
    return _files(_file("fake.proto"))  # no service in it


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (_hangs, "did not answer within 1s"),
        (_garbage, "sent a file that does not parse"),
        (_denies_its_import, "does not know missing.proto"),
        (_lists_what_it_does_not_define, "no service fake.v1.Fake in the schema"),
    ],
    ids=["hangs", "garbage", "denies-its-import", "lists-an-undefined-service"],
)
def test_reflection_faults_are_a_schema_error(answer: Answer, message: str) -> None:
    with reflecting(answer) as target, pytest.raises(SchemaError, match=message):
        reflect(target, wait=1.0)


def test_the_command_says_it_in_one_line() -> None:
    with reflecting(_hangs) as target:
        done = subprocess.run(
            [sys.executable, "-m", "twofold", "gateway", "--upstream", target,
             "--reflection-timeout", "1", "--port", "0"],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "twofold: error: server reflection did not answer within 1s"
    ]
