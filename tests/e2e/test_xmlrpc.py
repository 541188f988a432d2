"""The XML-RPC wire against the real catalog: Python's own ``xmlrpc.client``, the
npm ``xmlrpc`` package under Node, and hostile bodies (bombs, entities, DTDs,
deep nesting, bad UTF-8, JSON declared as XML) that get a fault or an HTTP
error, change nothing, and leave the server serving."""

from __future__ import annotations

import json
import shutil
import xmlrpc.client
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.programs import node_json
from tests.e2e.server import ROOT, Server
from tests.e2e.test_bad_input import MiB, unchanged
from tests.tokens import ADMIN

__all__ = ["unchanged"]  # the fixture, imported so pytest finds it here
NODE_CLIENT = Path(__file__).parent / "node" / "xmlrpc_client.mjs"
XML = {"content-type": "text/xml"}
NEW = {"product": {"name": "Over XML-RPC", "price": "3.10", "category": "xmlrpc"}}


class _Bearer(xmlrpc.client.Transport):
    def send_headers(self, connection: Any, headers: Any) -> None:
        super().send_headers(connection, headers)
        connection.putheader("Authorization", f"Bearer {ADMIN}")


def proxy(catalog: Server, token: bool = True) -> xmlrpc.client.ServerProxy:
    transport = _Bearer() if token else None
    return xmlrpc.client.ServerProxy(
        f"{catalog.url}/RPC2", transport=transport, use_builtin_types=True
    )


def fault(call: Any, *args: Any) -> tuple[int, str]:
    with pytest.raises(xmlrpc.client.Fault) as caught:
        call(*args)
    return caught.value.faultCode, caught.value.faultString


def test_python_xmlrpc_client_creates_reads_and_gets_coded_faults(catalog: Server) -> None:
    with proxy(catalog) as rpc:
        made = rpc.CreateProduct(NEW)
        assert (made["name"], made["price"], made["tags"]) == ("Over XML-RPC", "3.10", [])
        assert rpc.GetProduct(made["id"]) == made  # by position
        assert getattr(rpc, "catalog.v1.CatalogService/GetProduct")({"id": made["id"]}) == made
        assert fault(rpc.GetProduct, 987654321) == (
            5,
            "NOT_FOUND: product 987654321 does not exist",
        )
        code, message = fault(rpc.CreateProduct, {"product": {"name": "x", "price": "1e2"}})
        assert code == 3 and message.startswith("INVALID_ARGUMENT: invalid product.price")
        code, message = fault(rpc.NoSuchMethod)
        assert code == 12 and "no method NoSuchMethod" in message
        # Server streaming has no XML-RPC form.
        assert fault(rpc.WatchPrices, {})[0] == 12


def test_credentials_are_checked_before_params(catalog: Server, unchanged: None) -> None:
    with proxy(catalog, token=False) as rpc:
        # Params that would not even validate: the missing token is what is reported.
        code, message = fault(rpc.CreateProduct, {"product": {"price": "not a price"}})
        assert code == 16 and message.startswith("UNAUTHENTICATED")


def test_system_methods(catalog: Server) -> None:
    with proxy(catalog) as rpc:
        names = rpc.system.listMethods()
        assert {"GetProduct", "catalog.v1.CatalogService/GetProduct", "system.multicall"} <= set(
            names
        )
        assert rpc.system.methodHelp("GetProduct")
        assert fault(rpc.system.methodHelp, "Nope")[0] == 5
        made = rpc.CreateProduct(NEW)
        batch = xmlrpc.client.MultiCall(rpc)
        batch.GetProduct(made["id"])
        batch.GetProduct(987654321)
        batch.system.multicall([])
        first, missing, nested = batch().results
        assert first == [made]
        assert missing["faultCode"] == 5 and nested["faultCode"] == 3


def test_an_i8_from_a_client_is_read(catalog: Server) -> None:
    # xmlrpc.client refuses to send past i4; other clients send <i8>.
    body = (
        b"<?xml version='1.0'?><methodCall><methodName>GetProduct</methodName><params>"
        b"<param><value><i8>8589934592</i8></value></param></params></methodCall>"
    )
    r = httpx.post(f"{catalog.url}/RPC2", content=body, headers=XML)
    assert r.status_code == 200 and r.headers["content-type"] == "text/xml"
    assert b"<int>5</int>" in r.content and b"8589934592" in r.content


@pytest.mark.skipif(
    shutil.which("node") is None or not (ROOT / "node_modules" / "xmlrpc").exists(),
    reason="needs node and `npm ci` (make does both)",
)
def test_the_npm_xmlrpc_client(catalog: Server) -> None:
    got = node_json(NODE_CLIENT, catalog.url, ADMIN)
    assert "CreateProduct" in got["methods"]["value"]
    made = got["made"]["value"]
    assert (made["name"], made["price"], made["tags"]) == ("From npm", "2.25", ["a", "b"])
    assert got["got"]["value"] == made
    assert got["missing"]["fault"]["code"] == 5
    assert got["big"]["fault"]["code"] == 5  # 2**40 reached the server as an id
    first, unknown = got["multi"]["value"]
    assert first == [made] and unknown["faultCode"] == 12


BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    b"<methodCall><methodName>CreateProduct</methodName><params><param><value>"
    b"<string>&lol2;</string></value></param></params></methodCall>"
)
XXE = (
    b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<methodCall><methodName>&x;</methodName></methodCall>"
)
DTD_ONLY = b'<!DOCTYPE methodCall SYSTEM "http://127.0.0.1:9/x.dtd"><methodCall/>'
DEEP = (
    b"<methodCall><methodName>CreateProduct</methodName><params><param>"
    + b"<value><array><data>" * 10_000
    + b"</data></array></value>" * 10_000
    + b"</param></params></methodCall>"
)
CREATE_CALL = (
    b"<methodCall><methodName>CreateProduct</methodName><params><param><value><struct>"
    b"<member><name>product</name><value><struct><member><name>name</name>"
    b"<value>\xff\xfe bad</value></member></struct></value></member>"
    b"</struct></value></param></params></methodCall>"
)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param(BOMB, "DTD", id="billion-laughs"),
        pytest.param(XXE, "DTD", id="external-entity"),
        pytest.param(DTD_ONLY, "DTD", id="dtd"),
        pytest.param(DEEP, "nested deeper", id="10k-deep"),
        pytest.param(CREATE_CALL, "not well-formed", id="invalid-utf8"),
        pytest.param(json.dumps(NEW).encode(), "not well-formed", id="json-as-xml"),
        pytest.param(b"<methodResponse/>", "not an XML-RPC call", id="not-a-call"),
        pytest.param(
            b"<methodCall><methodName>GetProduct</methodName><params><param>"
            b"<value><int>x</int></value></param></params></methodCall>",
            "not a valid int",
            id="bad-int",
        ),
    ],
)
def test_hostile_bodies_get_a_fault_and_write_nothing(
    catalog: Server, unchanged: None, body: bytes, words: str
) -> None:
    headers = {**XML, "authorization": f"Bearer {ADMIN}"}
    r = httpx.post(f"{catalog.url}/RPC2", content=body, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    with pytest.raises(xmlrpc.client.Fault) as caught:
        xmlrpc.client.loads(r.content)
    assert caught.value.faultCode == 3 and words in caught.value.faultString


def test_hostile_bodies_fault_codes(catalog: Server) -> None:
    with pytest.raises(xmlrpc.client.Fault) as caught:
        xmlrpc.client.loads(httpx.post(f"{catalog.url}/RPC2", content=XXE, headers=XML).content)
    assert caught.value.faultCode == 3 and "DTD" in caught.value.faultString


def test_http_level_refusals(catalog: Server, unchanged: None) -> None:
    url = f"{catalog.url}/RPC2"
    as_json = httpx.post(url, json=NEW, headers={"authorization": f"Bearer {ADMIN}"})
    assert as_json.status_code == 415 and as_json.headers["accept-post"] == "text/xml"
    assert httpx.get(url).status_code == 405
    huge = b"<methodCall><methodName>" + b"A" * (2 * MiB) + b"</methodName></methodCall>"
    too_big = httpx.post(url, content=huge, headers=XML)
    assert too_big.status_code == 413
    with pytest.raises(xmlrpc.client.Fault) as caught:
        xmlrpc.client.loads(too_big.content)
    assert caught.value.faultCode == 8
    with proxy(catalog) as rpc:
        assert rpc.system.listMethods()  # still serving
