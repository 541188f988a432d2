"""REST in XML against the real catalog: negotiation by Accept, XML bodies on
every write, ETags per representation, problem+xml, and hostile bodies (bombs,
entities, DTDs, deep nesting, huge text, bad UTF-8, JSON declared as XML and
the reverse) answered with a problem, nothing written, the server unaffected."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import pytest

from examples.catalog.models import ListProductsResponse, Product, User
from tests.e2e.test_bad_input import MiB, unchanged

__all__ = ["unchanged"]  # the fixture, imported so pytest finds it here
XML = {"accept": "application/xml"}
SEND_XML = {"content-type": "application/xml", "accept": "application/xml"}
NS = "{urn:ietf:rfc:7807}"
NEW = (
    b"<NewProduct><name>Over REST XML</name><price>4.20</price>"
    b"<category>xml</category><tags>a</tags><tags>b &amp; c</tags></NewProduct>"
)


def problem_xml(r: httpx.Response, status: int, code: str) -> ET.Element:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+xml"
    doc = ET.fromstring(r.content)
    assert doc.tag == f"{NS}problem"
    assert doc.findtext(f"{NS}status") == str(status)
    assert doc.findtext(f"{NS}code") == code
    return doc


def violations(doc: ET.Element) -> list[tuple[str, str]]:
    found = doc.find(f"{NS}violations")
    assert found is not None
    return [(v.findtext(f"{NS}field") or "", v.findtext(f"{NS}description") or "") for v in found]


def test_create_read_update_in_xml(http: httpx.Client) -> None:
    made = http.post("/products", content=NEW, headers=SEND_XML)
    assert made.status_code == 201, made.text
    assert made.headers["content-type"] == "application/xml"
    product = msgspec.convert(_fields(made.content, "Product"), Product, strict=False)
    assert (product.name, product.price, product.tags) == (
        "Over REST XML",
        Decimal("4.20"),
        ["a", "b & c"],
    )
    location = made.headers["location"]

    as_json = http.get(location)
    as_xml = http.get(location, headers=XML)
    assert as_json.headers["content-type"] == "application/json"
    assert as_xml.headers["content-type"] == "application/xml"
    assert msgspec.convert(as_json.json(), Product) == msgspec.convert(
        _fields(as_xml.content, "Product"), Product, strict=False
    )
    # Two representations, two strong tags; each revalidates only itself.
    json_tag, xml_tag = as_json.headers["etag"], as_xml.headers["etag"]
    assert xml_tag == json_tag[:-1] + '-xml"'
    assert "Accept" in as_xml.headers["vary"] and "Accept" in as_json.headers["vary"]
    assert http.get(location, headers={**XML, "if-none-match": xml_tag}).status_code == 304
    assert http.get(location, headers={**XML, "if-none-match": json_tag}).status_code == 200
    assert http.get(location, headers={"if-none-match": xml_tag}).status_code == 200

    # If-Match takes the XML tag as it does the JSON one.
    patch = b"<ProductPatch><price>5.00</price></ProductPatch>"
    changed = http.patch(location, content=patch, headers={**SEND_XML, "if-match": xml_tag})
    assert changed.status_code == 200, changed.text
    assert _fields(changed.content, "Product")["price"] == "5.00"
    stale = http.patch(location, content=patch, headers={**SEND_XML, "if-match": xml_tag})
    problem_xml(stale, 412, "aborted")
    # A JSON client reads what the XML one wrote.
    assert http.get(location).json()["price"] == "5.00"


def test_lists_users_and_orders_read_the_same_in_both(http: httpx.Client) -> None:
    listed = http.get("/products?page_size=3", headers=XML)
    assert listed.status_code == 200
    root = ET.fromstring(listed.content)
    assert root.tag == "ListProductsResponse"
    as_json = msgspec.convert(http.get("/products?page_size=3").json(), ListProductsResponse)
    products = [msgspec.convert(_children(p), Product, strict=False) for p in root.iter("products")]
    assert products == as_json.products
    assert root.findtext("next_page_token", "") == as_json.next_page_token

    user = http.post(
        "/users",
        content=b"<NewUser><name>Xml User</name><email>xml@example.com</email></NewUser>",
        headers=SEND_XML,
    )
    assert user.status_code == 201, user.text
    got = http.get(user.headers["location"], headers=XML)
    assert msgspec.convert(_fields(got.content, "User"), User, strict=False).name == "Xml User"


def test_negotiation_by_q_values(http: httpx.Client) -> None:
    for accept, expected in [
        ("application/xml", "application/xml"),
        ("text/xml", "application/xml"),
        ("application/json;q=0.5, application/xml", "application/xml"),
        ("application/xml;q=0.5, application/json", "application/json"),
        ("application/xml, application/json", "application/json"),  # a tie: JSON
        ("*/*", "application/json"),
        ("text/html,application/xml;q=0.9,*/*;q=0.8", "application/xml"),
    ]:
        r = http.get("/products?page_size=1", headers={"accept": accept})
        assert r.headers["content-type"] == expected, accept
    refused = http.get("/products", headers={"accept": "application/xml;q=0, text/plain"})
    assert refused.status_code == 406


def test_problems_in_xml_for_a_client_that_prefers_it(http: httpx.Client) -> None:
    doc = problem_xml(http.get("/products/987654321", headers=XML), 404, "not_found")
    assert doc.findtext(f"{NS}type") == "about:blank"
    assert doc.findtext(f"{NS}instance") == "/products/987654321"
    problem_xml(http.get("/no/such/route", headers=XML), 404, "not_found")
    # Credentials before the body, in XML too.
    r = httpx.post(
        str(http.base_url.join("/products")),
        content=b"<NewProduct><price>x</price></NewProduct>",
        headers=SEND_XML,
    )
    problem_xml(r, 401, "unauthenticated")


@pytest.mark.usefixtures("unchanged")
class TestBadXml:
    def post(self, http: httpx.Client, body: bytes, **headers: str) -> httpx.Response:
        return http.post("/products", content=body, headers={**SEND_XML, **headers})

    def test_every_violation_is_reported(self, http: httpx.Client) -> None:
        body = (
            b"<NewProduct><name>1</name><name>2</name><price>1e2</price><bogus>x</bogus>"
            b"</NewProduct>"
        )
        doc = problem_xml(self.post(http, body), 400, "invalid_argument")
        assert violations(doc) == [
            ("product.name", "Expected `str`, got `array`"),
            ("product.price", "Expected a decimal string matching ^[0-9]{1,9}(\\.[0-9]{1,2})?$"),
            ("product.bogus", "unknown field"),
            ("product.category", "required field is missing"),
        ]

    def test_wrong_root_and_wrong_types(self, http: httpx.Client) -> None:
        doc = problem_xml(
            self.post(http, b"<Product><name>x</name></Product>"), 400, "invalid_argument"
        )
        assert violations(doc) == [("product", "expected the root element <NewProduct>")]
        order = http.post(
            "/users/1/orders",
            content=b"<NewOrder><product_id>one</product_id><quantity>2.5</quantity></NewOrder>",
            headers=SEND_XML,
        )
        fields = [f for f, _ in violations(problem_xml(order, 400, "invalid_argument"))]
        assert fields == ["order.product_id", "order.quantity"]

    @pytest.mark.parametrize(
        "body",
        [
            # Billion laughs, an external entity, a bare DTD.
            b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><NewProduct><name>&b;</name>'
            b"</NewProduct>",
            b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b"<NewProduct><name>&x;</name></NewProduct>",
            b'<!DOCTYPE NewProduct SYSTEM "http://127.0.0.1:1/x.dtd"><NewProduct/>',
            b"<a>" * 10_000 + b"</a>" * 10_000,
            b"<NewProduct><name>\xff\xfe</name></NewProduct>",
            b'{"name": "json declared as xml", "price": "1.00", "category": "x"}',
            b"<NewProduct><name>unclosed</NewProduct>",
        ],
        ids=["bomb", "external-entity", "dtd", "deep", "bad-utf8", "json-as-xml", "malformed"],
    )
    def test_hostile_bodies_are_400(self, http: httpx.Client, body: bytes) -> None:
        doc = problem_xml(self.post(http, body), 400, "invalid_argument")
        assert (doc.findtext(f"{NS}detail") or "").startswith("malformed XML body")

    def test_xml_declared_as_json_is_malformed_json(self, http: httpx.Client) -> None:
        r = self.post(http, NEW, **{"content-type": "application/json"})
        problem_xml(r, 400, "invalid_argument")

    def test_huge_text_node_is_413(self, http: httpx.Client) -> None:
        body = b"<NewProduct><name>" + b"x" * (MiB + 10) + b"</name></NewProduct>"
        problem_xml(self.post(http, body), 413, "resource_exhausted")

    def test_other_media_types_are_415_naming_both(self, http: httpx.Client) -> None:
        r = self.post(http, b"name=x", **{"content-type": "text/plain"})
        problem_xml(r, 415, "invalid_argument")
        assert r.headers["accept-post"] == "application/json, application/xml"

    def test_an_answer_xml_cannot_carry_is_refused_before_the_write(
        self, http: httpx.Client
    ) -> None:
        # Found by schemathesis: a control character echoed into the answer.
        new = {"name": "bell \u0001", "price": "1.00", "category": "x"}
        r = http.post("/products", json=new, headers={"accept": "application/xml"})
        problem_xml(r, 406, "invalid_argument")

    def test_the_server_still_serves(self, http: httpx.Client) -> None:
        self.post(http, b"<a>" * 10_000 + b"</a>" * 10_000)
        assert http.get("/products?page_size=1", headers=XML).status_code == 200


def _fields(body: bytes, root: str) -> dict[str, Any]:
    element = ET.fromstring(body)
    assert element.tag == root
    return _children(element)


def _children(element: ET.Element) -> dict[str, Any]:
    out: dict[str, Any] = {"tags": []} if element.tag in ("Product", "products") else {}
    for child in element:
        if child.tag == "tags":
            out["tags"].append(child.text or "")
        else:
            out[child.tag] = child.text or ""
    return out
