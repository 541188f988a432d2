"""The parity callers over the protobuf wires: Connect with ``application/proto``
and gRPC-Web. Requests are built from the test's JSON payload by the protobuf
runtime's own ``json_format`` (not by Twofold), answers read by Twofold's codec
into the output type, and errors taken from each protocol's own error channel.
"""

from __future__ import annotations

import base64
import functools
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from examples.catalog import service
from tests.e2e.callers import Caller, Outcome
from tests.parity import grpc_web_answer
from twofold import Code
from twofold.core.code import HTTP_STATUS
from twofold.http.envelope import frame
from twofold.protobuf import Schema


@functools.cache
def schema() -> Schema:
    return Schema(service)


def encode(tp: type[Any], payload: dict[str, Any]) -> bytes:
    """Protobuf bytes for a JSON payload, as a protobuf client would send them.

    A value protobuf cannot hold ("forty-two" for an int64) is sent as what a
    confused client would put on the wire: the text, length-delimited, under
    that field's number, so the server sees a field of the wrong wire type.
    """
    cls = schema().message_class(tp)
    good: dict[str, Any] = {}
    bad: list[tuple[int, bytes]] = []
    for key, value in payload.items():
        try:
            json_format.ParseDict({key: value}, cls())
            good[key] = value
        except json_format.ParseError:
            number = cls.DESCRIPTOR.fields_by_name[key].number
            bad.append((number, str(value).encode()))
    message: Message = json_format.ParseDict(good, cls())
    raw = message.SerializeToString()
    for number, text in bad:
        raw += bytes([number << 3 | 2, len(text)]) + text
    return raw


def violations(details: list[Any]) -> list[str]:
    out = []
    for detail in details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            out.extend(v.field for v in bad.field_violations)
    return out


class ConnectProtoCaller(Caller):
    name = "connect-proto"

    def __call__(self, rpc: str, payload: dict[str, Any] | None = None) -> Outcome:
        method = self.methods[rpc]
        response = self.client.post(
            method.path,
            content=encode(method.input_type, payload or {}),
            headers={"content-type": "application/proto", "connect-protocol-version": "1"},
        )
        if response.status_code == 200:
            assert response.headers["content-type"] == "application/proto"
            data = schema().codec(method.output_type).decode(response.content)
            return Outcome(200, data)
        assert response.headers["content-type"] == "application/json", response.text
        error = response.json()
        fields = []
        for d in error.get("details", []):
            if d["type"] == "google.rpc.BadRequest":
                raw = base64.b64decode(d["value"] + "=" * (-len(d["value"]) % 4))
                bad = error_details_pb2.BadRequest.FromString(raw)
                fields.extend(v.field for v in bad.field_violations)
        return Outcome(response.status_code, code=error["code"], violations=fields)


class GrpcWebCaller(Caller):
    name = "grpc-web"

    def __call__(self, rpc: str, payload: dict[str, Any] | None = None) -> Outcome:
        method = self.methods[rpc]
        response = self.client.post(
            method.path,
            content=frame(encode(method.input_type, payload or {})),
            headers={"content-type": "application/grpc-web+proto", "x-grpc-web": "1"},
        )
        assert response.status_code == 200, response.text
        messages, trailers = grpc_web_answer(response)
        status = int(trailers["grpc-status"])
        if status == 0:
            (message,) = messages
            return Outcome(200, schema().codec(method.output_type).decode(message))
        code = Code(status)
        fields: list[str] = []
        details = trailers.get("grpc-status-details-bin")
        if details:
            decoded = status_pb2.Status.FromString(
                base64.b64decode(details + "=" * (-len(details) % 4))
            )
            assert decoded.code == status
            fields = violations(list(decoded.details))
        return Outcome(HTTP_STATUS[code], code=code.wire_name, violations=fields)


PROTO_CALLERS: dict[str, type[Caller]] = {c.name: c for c in (ConnectProtoCaller, GrpcWebCaller)}
