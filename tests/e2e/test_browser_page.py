"""The catalog's web page (/ui) in Debian's headless Chromium, driven by
playwright-core from npm (tests/e2e/node/catalog_page.mjs), against a real
catalog: what the page writes is there over REST, what gRPC changes the page
shows live. ``scripts/ensure-chromium`` (make test) installs the browser."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import httpx
import pytest

from examples.catalog.webpage import UI
from tests.e2e.server import ROOT, Server
from tests.tokens import ADMIN

CHROMIUM = Path("/usr/bin/chromium")
DRIVER = Path(__file__).parent / "node" / "catalog_page.mjs"
NODE_MODULES = ROOT / "node_modules"
REFUSED = (
    "console: Failed to load resource: the server responded with a status of 412 "
    "(Precondition Failed)"
)
needs_node = pytest.mark.skipif(
    shutil.which("node") is None or not (NODE_MODULES / "playwright-core").exists(),
    reason="needs node and `npm ci` (make does both)",
)


class Page:
    """The driver process: one JSON command in, one JSON answer out."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process

    def __call__(self, command: str, **args: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"command": command, **args}) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], 90)
        assert ready, f"the browser driver did not answer {command!r}"
        answer: dict[str, Any] = json.loads(self.process.stdout.readline() or "null")
        assert answer is not None, "the browser driver exited"
        assert answer.pop("ok"), f"{command}: {answer['error']}"
        return answer


@pytest.fixture
def page(catalog: Server, tmp_path: Path) -> Iterator[Page]:
    if not CHROMIUM.exists():
        # As root, `make test` installs it: missing then is a broken setup.
        if os.geteuid() == 0:
            pytest.fail("Chromium is not installed: run scripts/ensure-chromium (make test does)")
        pytest.skip("Chromium is not installed and this is not root: run scripts/ensure-chromium")
    process = subprocess.Popen(
        ["node", str(DRIVER), catalog.url, str(tmp_path / "profile")],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield Page(process)
    finally:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()  # the driver closes the browser and exits
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


@needs_node
def test_the_page_writes_over_rest_and_shows_grpc_changes_live(
    page: Page, http: httpx.Client, stubs: tuple[ModuleType, ModuleType], channel: grpc.Channel
) -> None:
    assert page("open") == {"title": "Product catalog"}
    page("token", token=ADMIN)
    category = f"browser-{uuid.uuid4().hex[:8]}"
    assert page("filter", category=category) == {"rows": 0}

    created = page("create", name="Desk lamp", category=category, price="35.00")
    assert created["status"].startswith("Created product"), created
    listed = http.get("/products", params={"category": category}).json()["products"]
    assert [(p["id"], p["name"], p["price"]) for p in listed] == [
        (created["id"], "Desk lamp", "35.00")
    ]

    # Edited in the page, with If-Match: the etag the page holds is current.
    assert page("editPrice", id=created["id"], price="32.50")["status"].startswith("Saved")
    assert http.get(f"/products/{created['id']}").json()["price"] == "32.50"

    pb2, pb2_grpc = stubs
    pb2_grpc.CatalogServiceStub(channel).UpdateProduct(
        pb2.UpdateProductRequest(id=created["id"], product=pb2.ProductPatch(price="29.90")),
        timeout=10,
    )
    # Shown within 2 s on an idle machine (SSE, woken by the write); the bound
    # is looser so that a loaded CI machine does not turn latency into a failure.
    page("waitPrice", id=created["id"], price="29.90", timeout=10_000)
    # The live change brought the new etag too: the next edit is not refused.
    assert page("editPrice", id=created["id"], price="27.00")["status"].startswith("Saved")

    page("waitChange", id=created["id"], price="27.00")  # the page's own edit, live
    assert page("errors") == {"errors": []}
    # Renamed over REST: no price event, so the page's etag is stale now, and
    # If-Match makes the catalog refuse its edit (412) rather than lose the rename.
    http.patch(f"/products/{created['id']}", json={"name": "Desk lamp, brass"}).raise_for_status()
    refused = page("editPrice", id=created["id"], price="1.00")["status"]
    assert refused.startswith("Someone changed this product meanwhile"), refused
    assert http.get(f"/products/{created['id']}").json()["price"] == "27.00"
    assert page("price", id=created["id"]) == {"price": "27.00"}  # shown as it is now

    # GenerateReport, through connect-web, counts the new category.
    assert category in page("report", category=category)["categories"]
    # Chromium logs every 4xx answer; the refused edit's is the only error.
    assert page("errors") == {"errors": [REFUSED]}


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.styles = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))
        self.styles += tag == "style" or any(name == "style" for name, _ in attrs)

    def handle_data(self, data: str) -> None:
        if self.lasttag == "script" and data.strip():
            self.scripts.append({"inline": data})


def test_the_page_runs_under_a_strict_content_security_policy(catalog: Server) -> None:
    page = httpx.get(f"{catalog.url}/ui")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy
    parsed = _Scripts()
    parsed.feed(page.text)
    assert parsed.scripts == [{"type": "module", "src": "/ui/app.js"}]
    assert parsed.styles == 0
    assert not re.search(r"\son[a-z]+=", page.text)  # no inline event handlers


def test_the_page_files_revalidate_and_refuse_writes(catalog: Server) -> None:
    with httpx.Client(base_url=catalog.url) as client:
        script = client.get("/ui/app.js")
        assert script.headers["content-type"] == "text/javascript; charset=utf-8"
        assert script.headers["cache-control"] == "no-cache"
        again = client.get("/ui/app.js", headers={"if-none-match": script.headers["etag"]})
        assert (again.status_code, again.content) == (304, b"")
        head = client.head("/ui/style.css")
        assert (head.status_code, head.content) == (200, b"")
        assert head.headers["content-length"] == str(len((UI / "style.css").read_bytes()))
        posted = client.post("/ui", content=b"x")
        assert (posted.status_code, posted.headers["allow"]) == (405, "GET, HEAD")
        # Everything else still reaches the catalog.
        assert client.get("/ui/missing.js").status_code == 404
        assert client.get("/products").status_code == 200


@needs_node
def test_the_committed_bundle_is_what_its_sources_build(tmp_path: Path) -> None:
    built = tmp_path / "app.js"
    subprocess.run(["node", str(UI / "build.mjs"), str(built)], cwd=ROOT, check=True, timeout=120)
    assert built.read_bytes() == (UI / "app.js").read_bytes(), (
        "examples/catalog/ui/app.js is stale: run scripts/build-ui"
    )
