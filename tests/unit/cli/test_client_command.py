"""``twofold call``'s reading of an OpenAPI document: which methods, where, what body."""

from __future__ import annotations

import msgspec
import pytest

from examples.catalog import app as catalog_app
from twofold import App, Code, Error, Idempotency, Service
from twofold.cli.methods import Catalog, UnknownMethod
from twofold.core.method import HttpBinding


class Report(msgspec.Struct):
    lines: list[str]


reports = Service("reports.v1")
billing = Service("billing.v1")


@reports.procedure(http=("POST", "/reports:generate"))
async def generate(kind: str) -> Report:
    return Report([kind])


@reports.procedure(idempotency=Idempotency.NO_SIDE_EFFECTS)
async def status() -> Report:
    return Report([])


@billing.procedure(name="Status")
async def billing_status() -> Report:
    return Report([])


def test_the_catalog_document() -> None:
    catalog = Catalog(catalog_app.openapi)
    assert catalog.services == ["catalog.v1.CatalogService"]
    get = catalog.find("GetProduct")
    assert get.rest == HttpBinding("GET", "/products/{id}")
    assert catalog.service_of(get) == "catalog.v1.CatalogService"
    # A body that is one field of the request: that key's value is the body.
    update = catalog.find("UpdateProduct")
    binding = catalog.binding(update, {"id": 1, "product": {"price": "1.00"}})
    assert (binding.verb, binding.path, binding.body) == ("PATCH", "/products/{id}", "product")
    cancel = catalog.find("CancelOrder")
    assert catalog.binding(cancel, {"user_id": 1, "order_id": 2}).body == "*"
    listing = catalog.find("ListProducts")
    assert catalog.binding(listing, {"category": "x"}).body is None
    with pytest.raises(Error) as info:
        catalog.binding(catalog.find("GenerateReport"), {})
    assert info.value.code is Code.UNIMPLEMENTED


def test_a_procedure_with_a_route_is_one_method() -> None:
    catalog = Catalog(App([reports, billing]).openapi)
    generate_ = catalog.find("Generate")
    assert generate_.service == "reports.v1.ReportsService"
    assert generate_.rest == HttpBinding("POST", "/reports:generate", body="*")
    assert catalog.binding(generate_, {"kind": "daily"}).body == "*"
    with pytest.raises(UnknownMethod, match="ambiguous"):
        catalog.find("Status")
    assert catalog.find("billing.v1.BillingService/Status").service == "billing.v1.BillingService"
    lines = catalog.listing()
    assert [line.split()[0] for line in lines] == ["Generate", "Status", "Status"]
    assert lines[0].split()[1:] == ["POST", "/reports:generate", "reports.v1.ReportsService"]


def test_unknown_methods_and_services() -> None:
    catalog = Catalog(App([reports, billing]).openapi)
    # A usage error (exit status 2) that names the methods meant, not a coded one.
    with pytest.raises(UnknownMethod, match="did you mean Status"):
        catalog.find("Statsu")
    with pytest.raises(UnknownMethod, match="leave METHOD out to list"):
        catalog.find("Nope")
    bare = Catalog({"paths": {"/things": {"get": {"operationId": "ListThings"}}}})
    with pytest.raises(UnknownMethod, match="SERVICE/ListThings"):
        bare.service_of(bare.find("ListThings"))
    assert bare.find("things.v1.Things/ListThings").service == "things.v1.Things"
