"""A refused message gets one violation per bad field, in document order, on every wire.

msgspec stops at the first field it cannot accept; the slow path after it
(twofold.core.violations) lists them all. Each wire carries the same list
its own way: REST's problem ``violations``, JSON-RPC's ``error.data
.violations``, and google.rpc.BadRequest in Connect's details and gRPC's
``grpc-status-details-bin``. The binary wires are sent protobuf bytes
written with the upb message class, which knows nothing of our constraints.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
import xmlrpc.client
from decimal import Decimal
from typing import Annotated, Any

import grpc
import msgspec
import pytest
from google.rpc import error_details_pb2, status_pb2
from msgspec import Meta

from tests.conftest import run
from twofold import App, Bounds, Service
from twofold.http import xmlmessage, xmlparse, xmlrpcvalue
from twofold.http.envelope import frame
from twofold.testing.parity import AsyncWires
from twofold.testing.parity.answers import grpc_web_answer


class Dimensions(msgspec.Struct):
    width_mm: Annotated[int, Meta(ge=1)]


class Draft(msgspec.Struct):
    name: Annotated[str, Meta(min_length=1)]
    quantity: Annotated[int, Meta(ge=1, le=100)]
    price: Annotated[Decimal, Bounds(ge=0, le=1000, places=2)]
    tags: list[Annotated[str, Meta(max_length=5)]] = []
    dimensions: Dimensions | None = None


service = Service("violations.v1")


@service.procedure(http=("POST", "/drafts"))
async def submit(draft: Draft) -> Draft:
    return draft


APP = App(service)
PRICE_RULE = r"^[0-9]{1,4}(\.[0-9]{1,2})?$"
BAD = {
    "name": "",
    "quantity": 0,
    "price": "-1.005",
    "tags": ["ok", "far too long"],
    "dimensions": {"width_mm": 0},
}
# In document order: the order the fields were sent (and numbered).
EXPECTED = [
    ("draft.name", "Expected `str` of length >= 1"),
    ("draft.quantity", "Expected `int` >= 1"),
    ("draft.price", f"Expected a decimal string matching {PRICE_RULE}"),
    ("draft.tags[1]", "Expected `str` of length <= 5"),
    ("draft.dimensions.width_mm", "Expected `int` >= 1"),
]


def proto(wires: AsyncWires, draft: dict[str, Any]) -> bytes:
    """``draft`` as protobuf bytes, whatever its values: upb does not check Meta."""
    message = wires.schema.message_class(wires.methods["Submit"].input_type)()
    target = message.draft
    for key, value in draft.items():
        if key == "tags":
            target.tags.extend(value)
        elif key == "dimensions":
            target.dimensions.SetInParent()
            target.dimensions.width_mm = value["width_mm"]
        else:
            setattr(target, key, value)
    data: bytes = message.SerializeToString()
    return data


def bad_request(status_bin: bytes) -> list[tuple[str, str]]:
    status = status_pb2.Status.FromString(status_bin)
    found = error_details_pb2.BadRequest()
    assert status.code == 3 and status.details[0].Unpack(found)
    return [(v.field, v.description) for v in found.field_violations]


async def violations(
    wires: AsyncWires, protocol: str, draft: dict[str, Any]
) -> list[tuple[str, str]]:
    """What ``protocol`` answers to Submit(draft): the (field, description) list."""
    http = wires.http
    path = wires.methods["Submit"].path
    if protocol == "rest":
        r = await http.post("/drafts", json={"draft": draft})
        assert r.status_code == 400
        problem = r.json()
        return [(v["field"], v["description"]) for v in problem["violations"]]
    if protocol == "rest-xml":
        body = xmlmessage.document({"draft": draft}, "SubmitRequest")
        headers = {"content-type": "application/xml", "accept": "application/xml"}
        r = await http.post("/drafts", content=body, headers=headers)
        assert r.status_code == 400
        ns = "{urn:ietf:rfc:7807}"
        found = ET.fromstring(r.content).iterfind(f"{ns}violations/{ns}i")
        return [
            (i.findtext(f"{ns}field") or "", i.findtext(f"{ns}description") or "") for i in found
        ]
    if protocol == "jsonrpc":
        body = {"jsonrpc": "2.0", "id": 1, "method": "Submit", "params": {"draft": draft}}
        error = (await http.post("/jsonrpc", json=body)).json()["error"]
        assert error["code"] == -32602
        return [(v["field"], v["description"]) for v in error["data"]["violations"]]
    if protocol == "xmlrpc":
        body = xmlrpc.client.dumps(({"draft": draft},), "Submit").encode()
        r = await http.post("/RPC2", content=body, headers={"content-type": "text/xml"})
        fault = xmlrpcvalue.read(xmlparse.parse(r.content).find("fault/value"))  # type: ignore[arg-type]
        assert fault["faultCode"] == 3 and fault["code"] == "invalid_argument"
        return [(v["field"], v["description"]) for v in fault["violations"]]
    if protocol == "connect":
        r = await http.post(path, json={"draft": draft})
        assert r.status_code == 400
        (detail,) = r.json()["details"]
        assert detail["type"] == "google.rpc.BadRequest"
        found = error_details_pb2.BadRequest.FromString(
            base64.b64decode(detail["value"] + "=" * (-len(detail["value"]) % 4))
        )
        return [(v.field, v.description) for v in found.field_violations]
    data = proto(wires, draft)
    if protocol == "connect-proto":
        headers = {"content-type": "application/proto"}
        r = await http.post(path, content=data, headers=headers)
        assert r.status_code == 400
        return [
            (v["field"], v["description"])
            for v in r.json()["details"][0]["debug"]["fieldViolations"]
        ]
    if protocol == "grpc-web":
        headers = {"content-type": "application/grpc-web+proto"}
        _, trailers = grpc_web_answer(await http.post(path, content=frame(data), headers=headers))
        raw = trailers["grpc-status-details-bin"]
        return bad_request(base64.b64decode(raw + "=" * (-len(raw) % 4)))
    assert protocol == "grpc"
    call = wires.channel.unary_unary(path)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(data)
    trailing = dict(refused.value.trailing_metadata() or ())
    return bad_request(trailing["grpc-status-details-bin"])


def test_every_bad_field_is_a_violation_in_document_order(protocol: str) -> None:
    async def scenario(wires: AsyncWires) -> None:
        assert await violations(wires, protocol, BAD) == EXPECTED

    run(APP, scenario)


@pytest.mark.parametrize(
    ("price", "description"),
    [
        ("1000.01", "Expected a decimal <= 1000"),  # the pattern admits it, the bound does not
        ("-0", f"Expected a decimal string matching {PRICE_RULE}"),  # no sign when ge=0
        ("1.001", f"Expected a decimal string matching {PRICE_RULE}"),  # 2 places
    ],
)
def test_bounds_are_enforced_on_every_wire(protocol: str, price: str, description: str) -> None:
    async def scenario(wires: AsyncWires) -> None:
        draft = {"name": "n", "quantity": 1, "price": price}
        assert await violations(wires, protocol, draft) == [("draft.price", description)]
        ok = await wires.call(protocol, "Submit", {"draft": {**draft, "price": "1000"}}, {})
        assert ok.code is None and ok.output["price"] == "1000"

    run(APP, scenario)


def test_valid_input_is_unchanged() -> None:
    from twofold.core.numbers import Decoder

    body = b'{"name": "n", "quantity": 2.0, "price": "9.99", "tags": ["a"]}'
    assert Decoder(Draft).decode(body) == Draft("n", 2, Decimal("9.99"), ["a"])
