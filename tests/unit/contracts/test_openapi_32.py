"""OpenAPI 3.2: valid by the 3.2 validator, itemSchema for event streams, tags as a
tree; the served document, the /docs page beside it, the CLI and `twofold check`."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import httpx
import msgspec
import pytest
from openapi_schema_validator import OAS32Validator
from openapi_spec_validator.validation import OpenAPIV31SpecValidator, OpenAPIV32SpecValidator
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from docs_src.openapi import departures
from examples.catalog import app as catalog
from tests.cli import twofold
from twofold import App, DefinitionError, Options, Service
from twofold.compat import openapi as compat
from twofold.contracts import openapi

STREAM = "/products:watchPrices"


def event_stream(doc: dict[str, Any], path: str) -> dict[str, Any]:
    content: dict[str, Any] = doc["paths"][path]["get"]["responses"]["200"]["content"]
    return content["text/event-stream"]


def test_the_catalog_is_valid_openapi_3_2_and_3_1_stays_the_default() -> None:
    document = catalog.openapi_document("3.2")
    OpenAPIV32SpecValidator(document).validate()
    assert document["openapi"] == "3.2.0"
    default = catalog.openapi
    OpenAPIV31SpecValidator(default).validate()
    assert default["openapi"] == "3.1.0" and catalog.options.openapi_version == "3.1"
    # The same event, said each version's way: 3.1 tools read `schema` as one event.
    assert event_stream(document, STREAM) == {"itemSchema": event_stream(default, STREAM)["schema"]}
    # Nothing else differs but the version and the tags.
    for doc in (document, default):
        for item in doc["paths"].values():
            for op in item.values():
                for answer in op["responses"].values():
                    answer.get("content", {}).pop("text/event-stream", None)
    assert {k: v for k, v in document.items() if k not in ("openapi", "tags")} == {
        k: v for k, v in default.items() if k not in ("openapi", "tags")
    }


def test_the_validator_knows_3_2_and_refuses_what_3_2_does_not_allow() -> None:
    document = catalog.openapi_document("3.2")
    wrong_kind = copy.deepcopy(document)
    wrong_kind["tags"][0]["kind"] = 5
    with pytest.raises(OpenAPIValidationError, match="is not of type 'string'"):
        OpenAPIV32SpecValidator(wrong_kind).validate()
    older = catalog.openapi_document("3.1")
    event_stream(older, STREAM)["itemSchema"] = event_stream(older, STREAM).pop("schema")
    with pytest.raises(OpenAPIValidationError, match="itemSchema"):
        OpenAPIV31SpecValidator(older).validate()  # which is why 3.1 keeps `schema`


def test_tags_form_a_tree_under_each_service() -> None:
    tags = catalog.openapi_document("3.2")["tags"]
    names = [t["name"] for t in tags]
    assert len(set(names)) == len(names)
    service = tags[0]
    assert service == {
        "name": "catalog.v1.CatalogService",
        "summary": "CatalogService",
        "description": service["description"],
        "kind": "nav",
    }
    children = {t["name"]: t["parent"] for t in tags if "parent" in t}
    assert children == dict.fromkeys(["products", "users", "orders"], service["name"])
    assert all(t["kind"] == "nav" for t in tags)


class Out(msgspec.Struct):
    n: int


def test_a_tag_two_services_share_has_no_parent() -> None:
    billing, reports = Service("billing.v1"), Service("reports.v1")

    @billing.resource("items").get
    async def get_bill(id: int) -> Out:
        return Out(id)

    @reports.resource("items").create
    async def create_line(line: Out) -> Out:
        return line

    @reports.resource("pdfs").get
    async def get_pdf(id: int) -> Out:
        return Out(id)

    document = App([billing, reports]).openapi_document("3.2")
    OpenAPIV32SpecValidator(document).validate()
    assert document["tags"] == [
        {"name": "items", "kind": "nav"},
        {"name": "reports.v1.ReportsService", "summary": "ReportsService", "kind": "nav"},
        {"name": "pdfs", "parent": "reports.v1.ReportsService", "kind": "nav"},
    ]


def test_a_version_nobody_writes_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"openapi_version='3\.0'\): choose one of '3\.1'"):
        App(Service("x.v1"), options=Options(openapi_version="3.0"))
    with pytest.raises(ValueError, match=r"OpenAPI '4\.0' cannot be written"):
        catalog.openapi_document("4.0")


def test_the_served_3_2_document_and_its_events_and_the_docs_page_beside_it() -> None:
    app = departures.app
    document = app.openapi
    OpenAPIV32SpecValidator(document).validate()
    item = event_stream(document, "/departures:watch")["itemSchema"]
    # Resolve "#/components/..." from beside the item schema.
    events = OAS32Validator({**item, "components": document["components"]})
    # contentSchema is an annotation (JSON Schema 2020-12): what a reader
    # checks the decoded data against itself.
    content = item["else"]["properties"]["data"]["contentSchema"]
    messages = OAS32Validator({**content, "components": document["components"]})

    async def main() -> None:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/openapi.json")).json() == document
            page = (await client.get("/docs")).text
            # Swagger UI 5 renders 3.1 only: the page reads a 3.1 rendition.
            assert 'data-openapi="docs/openapi-3.1.json"' in page
            rendition = (await client.get("/docs/openapi-3.1.json")).json()
            assert rendition == app.openapi_document("3.1")
            stream = await client.get("/departures:watch", headers={"accept": "text/event-stream"})
            seen = 0
            for block in stream.text.strip().split("\n\n"):
                event: dict[str, Any] = dict(line.split(": ", 1) for line in block.splitlines())
                if "retry" in event:  # SSE parsers read retry as a number of milliseconds
                    event["retry"] = int(event["retry"])
                events.validate(event)
                messages.validate(json.loads(event["data"]))
                seen += 1
            assert seen == len(departures.TRAINS)
            assert not events.is_valid({"event": "message"})  # no data
            assert not messages.is_valid({"id": "one", "destination": "Lyon", "platform": 3})

    asyncio.run(main())


def test_a_3_1_app_serves_no_second_document() -> None:
    async def main() -> None:
        transport = httpx.ASGITransport(catalog)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert 'data-openapi="openapi.json"' in (await client.get("/docs")).text
            assert (await client.get("/docs/openapi-3.1.json")).status_code == 404

    asyncio.run(main())


def test_the_cli_writes_either_version() -> None:
    target = "docs_src.openapi.service:app"
    done = twofold("openapi", target, "--openapi-version", "3.2")
    assert done.returncode == 0, done.stderr
    OpenAPIV32SpecValidator(json.loads(done.stdout)).validate()
    # The App's own setting is the default, and the flag overrides it.
    served = twofold("openapi", "docs_src.openapi.departures:app")
    assert json.loads(served.stdout)["openapi"] == "3.2.0"
    older = twofold("openapi", "docs_src.openapi.departures:app", "--openapi-version", "3.1")
    assert json.loads(older.stdout)["openapi"] == "3.1.0"
    wrong = twofold("openapi", target, "--openapi-version", "3.3")
    assert wrong.returncode == 2 and "invalid choice: '3.3'" in wrong.stderr


def test_check_compares_a_stream_across_versions() -> None:
    old, new = catalog.openapi_document("3.1"), catalog.openapi_document("3.2")
    assert compat.diff(old, new) == []
    widened = copy.deepcopy(new)
    event_stream(widened, STREAM)["itemSchema"]["properties"]["event"]["enum"].append("ping")
    # A new kind of event old clients do not know: found, old 3.1 against new 3.2.
    (finding,) = compat.diff(old, widened)
    assert finding.rule == "RESPONSE_ENUM_VALUE_ADDED" and "text/event-stream" in finding.location


def test_the_module_constants() -> None:
    assert openapi.VERSIONS == {"3.1": "3.1.0", "3.2": "3.2.0"}
    assert openapi.OPENAPI_VERSION == "3.1.0"
