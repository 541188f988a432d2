"""The catalog over REST from the client openapi-python-client generated.

``openapi-python-client generate`` wrote the package ``catalog_client`` from
the catalog's OpenAPI document; this program imports only it (httpx and
attrs underneath), none of Twofold:

    python rest_client.py BASE_URL TOKEN

It prints what it saw as JSON (tests/e2e/test_other_languages.py judges it).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from catalog_client import AuthenticatedClient
from catalog_client.api.products import create_product, get_product, list_products
from catalog_client.models import ListProductsResponse, NewProduct, Problem, Product


def call_catalog(base_url: str, token: str) -> dict[str, Any]:
    category = f"python-{time.time_ns()}"
    with AuthenticatedClient(base_url=base_url, token=token) as client:
        new = NewProduct(name="Kettle", price="24.50", category=category, tags=["kitchen"])
        created = create_product.sync_detailed(client=client, body=new)
        product = created.parsed
        if not isinstance(product, Product):
            raise SystemExit(f"CreateProduct: {created.status_code} {created.content!r}")

        got = get_product.sync(client=client, id=product.id)
        page = list_products.sync(client=client, category=category, page_size=10)
        assert isinstance(got, Product) and isinstance(page, ListProductsResponse)

        # An error is a value, not an exception: the problem document (RFC 9457).
        missing = get_product.sync_detailed(client=client, id=987654321)
        problem = missing.parsed
        assert isinstance(problem, Problem)

    return {
        "created": {
            "status": created.status_code,
            "location": created.headers["location"],
            "id": product.id,
        },
        "got": got.to_dict(),
        "listed": [p.id for p in page.products],
        "missing": {
            "status": missing.status_code,
            "code": problem.code.value,
            "detail": problem.detail,
        },
    }


if __name__ == "__main__":
    print(json.dumps(call_catalog(*sys.argv[1:3])))
