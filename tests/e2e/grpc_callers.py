"""The parity caller over native gRPC, through stubs protoc generated from our ``.proto``.

A request is built from the test's payload with protobuf's own
``json_format.ParseDict`` into the generated message class, and sent by the
generated stub. A value the field's protobuf type cannot hold (``"forty-two"``
for an int64) is sent as a client with a mismatched ``.proto`` would send
it: as a string at that field's number. The server's parser skips a field
of the wrong wire type, so the field reads as absent, and validation names
it. Errors are read from the status and its ``grpc-status-details-bin``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from tests.e2e.callers import Caller, Outcome
from twofold import Code, Service
from twofold.core.code import HTTP_STATUS
from twofold.protobuf import Schema
from twofold.protobuf.binary import tag, varint

DETAILS_KEY = "grpc-status-details-bin"


def status_of(error: grpc.RpcError) -> Any:
    """The google.rpc.Status of a failed call, checked against its status line."""
    metadata = dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
    status = status_pb2.Status.FromString(metadata[DETAILS_KEY])
    assert status.code == error.code().value[0]  # type: ignore[attr-defined]
    assert status.message == error.details()  # type: ignore[attr-defined]
    return status


def violations(status: Any) -> list[str]:
    fields = []
    for detail in status.details:
        if detail.type_url == "type.googleapis.com/google.rpc.BadRequest":
            bad = error_details_pb2.BadRequest.FromString(detail.value)
            fields += [v.field for v in bad.field_violations]
    return fields


class GrpcCaller(Caller):
    name = "grpc"

    def __init__(
        self, channel: grpc.Channel, stubs: tuple[ModuleType, ModuleType], service: Service
    ) -> None:
        self.methods = service.methods
        pb2, pb2_grpc = stubs
        self.service = pb2.DESCRIPTOR.services_by_name["CatalogService"]
        self.pb2 = pb2
        self.stub = pb2_grpc.CatalogServiceStub(channel)
        # Only to compare outputs as typed values, as the other callers do.
        self.schema = Schema(service)

    def __call__(self, rpc: str, payload: dict[str, Any] | None = None) -> Outcome:
        request = self._request(rpc, payload or {})
        try:
            response = getattr(self.stub, rpc)(request, timeout=10)
        except grpc.RpcError as exc:
            status = status_of(exc)
            code = Code(status.code)
            return Outcome(HTTP_STATUS[code], code=code.wire_name, violations=violations(status))
        output = self.methods[rpc].output_type
        return Outcome(200, self.schema.codec(output).decode(response.SerializeToString()))

    def _request(self, rpc: str, payload: dict[str, Any]) -> Any:
        descriptor = self.service.methods_by_name[rpc].input_type
        message = getattr(self.pb2, descriptor.name)()
        for key, value in payload.items():
            try:
                json_format.ParseDict({key: value}, message)
            except json_format.ParseError:
                field = descriptor.fields_by_name[key]
                data = str(value).encode()
                message.MergeFromString(tag(field.number, 2) + varint(len(data)) + data)
        return message
