"""What a type checker sees in a client: mypy --strict, run on real files.

The generated catalog client must pass ``mypy --strict`` and its methods must
return the declared types (``assert_type``); mistakes in calling it must be
reported. The dynamic ``Client`` is honest about what it cannot know: its
methods are ``Callable[..., Any]``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from examples.catalog import service
from twofold.client.generator import generate

ROOT = Path(__file__).resolve().parents[3]

USES = """
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator
from decimal import Decimal
from typing import Any, assert_type

import catalog_client as cc
from twofold import AsyncClient, Client
from twofold.client import Empty


def generated(c: cc.CatalogServiceClient) -> None:
    assert_type(c.get_product(id=1), cc.Product)
    assert_type(c.list_products(page_size=2, category=None), cc.ListProductsResponse)
    new = cc.NewProduct(name="Pen", price=Decimal("1.50"), category="Office")
    assert_type(c.create_product(product=new, timeout=2.0), cc.Product)
    assert_type(c.update_product(id=1, product=cc.ProductPatch(price=Decimal("2"))), cc.Product)
    assert_type(c.delete_product(id=1), Empty)
    assert_type(c.cancel_order(user_id=1, order_id=2).status, cc.OrderStatus)
    assert_type(c.generate_report().categories, list[cc.CategorySummary])
    assert_type(c.invoke(cc.GET_PRODUCT, cc.GetProductRequest(id=1)), cc.Product)
    assert_type(c.call("GetProduct", id=1), Any)
    assert_type(c.watch_prices(category="Office"), Generator[cc.PriceChange, None, None])
    for change in c.watch_prices():
        assert_type(change.new_price, Decimal)
    imports = [cc.ImportProductsRequest(product=new)]
    assert_type(c.import_products(imports, timeout=5.0), cc.ImportSummary)
    stream = c.server_stream(cc.WATCH_PRICES, cc.WatchPricesRequest())
    assert_type(stream, Generator[cc.PriceChange, None, None])
    stream.close()


async def generated_async(c: cc.AsyncCatalogServiceClient) -> None:
    assert_type(await c.get_product(id=1), cc.Product)
    assert_type(await c.list_users(), cc.ListUsersResponse)
    assert_type(c.watch_prices(), AsyncGenerator[cc.PriceChange, None])
    await c.watch_prices().aclose()
    async for change in c.watch_prices(category="Office"):
        assert_type(change, cc.PriceChange)

    async def products() -> AsyncIterator[cc.ImportProductsRequest]:
        product = cc.NewProduct(name="P", price=Decimal(1), category="C")
        yield cc.ImportProductsRequest(product=product)

    assert_type(await c.import_products(products()), cc.ImportSummary)
    assert_type(await c.import_products([]), cc.ImportSummary)


def build() -> None:
    cc.CatalogServiceClient("http://127.0.0.1:8000", protocol="rest", timeout=5.0)
    cc.AsyncCatalogServiceClient("http://127.0.0.1:8000", retry=None)


def dynamic(c: Client, a: AsyncClient) -> None:
    assert_type(c.get_product, Callable[..., Any])
    assert_type(c.call("GetProduct", id=1), Any)
    assert_type(a.get_product, Callable[..., Any])
"""

MISTAKES = """
import catalog_client as cc


def mistakes(c: cc.CatalogServiceClient) -> None:
    c.get_prodcut(id=1)  # E: attr-defined
    c.get_product(id="1")  # E: arg-type
    c.get_product()  # E: call-arg
    user: cc.User = c.get_product(id=1)  # E: assignment
    c.invoke(cc.GET_PRODUCT, cc.GetUserRequest(id=1))  # E: misc
    cc.CatalogServiceClient("http://x", protocol=3)  # E: arg-type
    cc.CatalogServiceClient("http://x", colour="red")  # E: call-arg
    c.import_products(cc.ImportProductsRequest(product=None))  # E: arg-type
    c.import_products([cc.GetProductRequest(id=1)])  # E: list-item
    c.watch_prices(category=1)  # E: arg-type
"""


def test_generated_client_is_strictly_typed(tmp_path: Path) -> None:
    (tmp_path / "catalog_client.py").write_text(generate([service]))
    (tmp_path / "uses.py").write_text(USES)
    (tmp_path / "mistakes.py").write_text(MISTAKES)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--show-error-codes",
            "--cache-dir",
            str(ROOT / ".mypy_cache" / "client-typing"),
            "catalog_client.py",
            "uses.py",
            "mistakes.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    reported = {
        (m["file"], int(m["line"]), m["code"])
        for m in re.finditer(
            r"^(?P<file>[\w.]+):(?P<line>\d+): error: .*\[(?P<code>[\w-]+)\]$",
            result.stdout,
            re.M,
        )
    }
    expected = {
        ("mistakes.py", n, m.group(1))
        for n, line in enumerate(MISTAKES.splitlines(), 1)
        if (m := re.search(r"# E: ([\w-]+)$", line))
    }
    assert reported == expected, result.stdout + result.stderr
