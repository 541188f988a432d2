"""Clients that other people's generators wrote from our contracts call the running catalog.

From the exported OpenAPI document: a Python package by openapi-python-client
(checked by ``mypy --strict``), and TypeScript types by openapi-typescript for
openapi-fetch. From the exported ``.proto``: grpcio-tools' Python stubs, and
TypeScript by protoc-gen-es for connect-es (every transport and streaming are
in tests/e2e/test_node_clients.py). The TypeScript is checked by ``tsc
--strict``. Each program is the one docs/other-languages.md shows, and each
creates, gets and lists a product and reads one error. The tools are pinned
(tools/requirements.txt, package.json) and run with no network but the
catalog on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.e2e import grpc_stubs
from tests.e2e.programs import node_json, run
from tests.e2e.server import ROOT, Server
from tests.tokens import ADMIN
from tests.tools import tool

PROGRAMS = ROOT / "docs_src" / "other_languages"
NODE_MODULES = ROOT / "node_modules"
TYPESCRIPT = [
    PROGRAMS / "rest_client.ts",
    PROGRAMS / "rpc_client.ts",
    Path(__file__).parent / "node" / "client_mistakes.ts",
]
MISSING_ID = 987654321  # the programs ask for this product to get an error


def _node_bin(name: str) -> Path:
    """A program of node_modules; a failure, not a skip, when missing (make installs it)."""
    path = NODE_MODULES / ".bin" / name
    if shutil.which("node") is None or not path.exists():
        pytest.fail(f"node or {path} is missing: run `npm ci` (part of `make test`)", pytrace=False)
    return path


@pytest.fixture(scope="module")
def openapi_document(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("openapi") / "openapi.json"
    run(sys.executable, "-m", "twofold", "openapi", "examples.catalog:app", "-o", path)
    return path


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _without_xml(node: Any) -> Any:
    """An OpenAPI document without its XML media types (every ``content`` map's)."""
    if isinstance(node, dict):
        return {
            k: _without_xml(v)
            for k, v in node.items()
            if not (isinstance(k, str) and k.endswith("xml") and "/" in k)
        }
    if isinstance(node, list):
        return [_without_xml(v) for v in node]
    return node


@pytest.fixture(scope="module")
def python_client(openapi_document: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """openapi-python-client's ``catalog_client`` package, in a directory of its own."""
    out = tmp_path_factory.mktemp("openapi-python-client")
    # Its default post hooks run `ruff check --fix` and `ruff format` on what it
    # wrote, and warn when ruff is not on PATH: the project's ruff is beside python.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    # It speaks JSON only: it warns about any other media type, and given XML
    # beside JSON it sends JSON labelled XML. It is handed the document's JSON,
    # without the XML representations (docs/xml.md) that mirror it.
    document = out / "openapi-json-only.json"
    document.write_text(json.dumps(_without_xml(json.loads(openapi_document.read_text()))))
    generated = run(
        tool("openapi-python-client"),
        "generate",
        "--path",
        document,
        "--meta",
        "none",
        "--output-path",
        "catalog_client",
        "--fail-on-warning",
        cwd=out,
        env={**os.environ, "PATH": path},
    )
    # It reports what it skipped (an endpoint, a content type, a schema) on
    # stderr, and exits 0 unless --fail-on-warning: our document must cause none.
    assert generated.stderr == ""
    assert generated.stdout.split() == ["Generating", "catalog_client"]
    # The docs' program beside the package, as a user would keep it.
    shutil.copy(PROGRAMS / "rest_client.py", out)
    return out


def test_openapi_python_client_generates_every_operation(
    python_client: Path, openapi_document: Path
) -> None:
    document = json.loads(openapi_document.read_text())
    operations = {
        _snake(operation["operationId"])
        for item in document["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    }
    modules = (python_client / "catalog_client" / "api").rglob("*.py")
    assert {m.stem for m in modules} - {"__init__"} == operations


def test_openapi_python_client_program_typechecks(python_client: Path) -> None:
    """mypy --strict on the docs' program, against the types of the generated package.

    Only the program's own errors count (imports are followed silently): the
    generator's code is its business, and ruff's fixes (its post hooks) turn
    a few of its ``*args: Any`` into ``*args: object``, which mypy rejects.
    """
    cache = python_client / ".mypy_cache"
    run(
        sys.executable,
        "-m",
        "mypy",
        "--strict",
        "--follow-imports=silent",
        "--cache-dir",
        cache,
        "rest_client.py",
        cwd=python_client,
    )


def _judge(out: dict[str, Any], prefix: str) -> None:
    """What a program saw, from REST: a 201 with Location, the same product back, a list
    of its one product, and a typed 404 problem."""
    product_id = out["created"]["id"]
    assert out["created"] == {
        "status": 201,
        "location": f"/products/{product_id}",
        "id": product_id,
    }
    got = out["got"]
    assert got["category"].startswith(prefix) and got["etag"]
    assert {k: got[k] for k in ("id", "name", "price", "tags")} == {
        "id": product_id,
        "name": "Kettle",
        "price": "24.50",
        "tags": ["kitchen"],
    }
    assert out["listed"] == [product_id]
    assert out["missing"] == {
        "status": 404,
        "code": "not_found",
        "detail": f"product {MISSING_ID} does not exist",
    }


def test_openapi_python_client_calls_the_catalog(python_client: Path, catalog: Server) -> None:
    # The tools' own interpreter (httpx, attrs): the program needs nothing of Twofold.
    python = tool("python")
    out = run(python, "rest_client.py", catalog.url, ADMIN, cwd=python_client)
    _judge(json.loads(out.stdout), "python-")


@pytest.fixture(scope="module")
def typescript_build(openapi_document: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The docs' TypeScript programs, compiled by ``tsc --strict`` against the types
    openapi-typescript generated from the OpenAPI document (``catalog.d.ts``) and
    the code protoc-gen-es generated from the ``.proto`` (``gen/``).

    They are compiled with a file of mistakes, each marked ``@ts-expect-error``:
    a type error in a program, or a mistake the types let through, fails the build.
    """
    out = tmp_path_factory.mktemp("typescript")
    generated = run(_node_bin("openapi-typescript"), openapi_document, "-o", out / "catalog.d.ts")
    assert generated.stderr == ""  # its warnings (from Redocly's checks) go there
    _node_bin("protoc-gen-es")  # a clear failure when npm ci has not run
    grpc_stubs.generate_es(out, language="ts")  # TypeScript under out/gen, node_modules beside
    for program in TYPESCRIPT:
        shutil.copy(program, out)
    (out / "package.json").write_text('{"type": "module"}\n')
    run(
        _node_bin("tsc"),
        "--strict",
        "--noEmitOnError",
        # Not re-checking the declarations of node, openapi-fetch and connect-es
        # saves most of tsc's time; every use of them (and of catalog.d.ts) is
        # still checked.
        "--skipLibCheck",
        "--module",
        "nodenext",
        "--target",
        "es2022",
        "--outDir",
        "js",
        *(program.name for program in TYPESCRIPT),
        cwd=out,
    )
    return out / "js"


def test_openapi_fetch_calls_the_catalog(typescript_build: Path, catalog: Server) -> None:
    _judge(node_json(typescript_build / "rest_client.js", catalog.url, ADMIN), "ts-")


def test_connect_es_typescript_calls_the_catalog(typescript_build: Path, catalog: Server) -> None:
    # Every transport and streaming are tests/e2e/test_node_clients.py's; this is
    # the docs' typed program, over Connect.
    out = node_json(typescript_build / "rpc_client.js", catalog.url, ADMIN)
    product_id = out["created"]["id"]  # int64s printed as strings: bigints are not JSON
    assert out["created"]["category"].startswith("connect-")
    assert out["got"] == {"id": product_id, "name": "Kettle", "price": "24.50", "tags": ["kitchen"]}
    assert out["listed"] == [product_id]
    assert out["missing"] == {
        "code": "NotFound",
        "message": f"product {MISSING_ID} does not exist",
    }


def test_grpcio_stubs_call_the_catalog(
    stubs: tuple[ModuleType, ModuleType], catalog: Server
) -> None:
    # `stubs` put catalog.v1.catalog_pb2(_grpc) in sys.modules, where the program finds them.
    from docs_src.other_languages.grpc_client import call_catalog

    out = call_catalog(catalog.grpc_target, ADMIN)
    product_id = out["created"]["id"]
    assert out["created"]["name"] == "Kettle" and out["created"]["category"].startswith("grpc-")
    assert out["same"] is True
    assert out["listed"] == [product_id]
    assert out["missing"] == {
        "code": "NOT_FOUND",
        "details": f"product {MISSING_ID} does not exist",
    }
