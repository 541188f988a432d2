"""A Go client from the exported ``.proto`` calls the running catalog over native gRPC.

protoc-gen-go and protoc-gen-go-grpc generate the package from ``twofold
proto``; ``go build`` compiles the docs' program (docs_src/other_languages/go)
against Debian's grpc-go and protobuf-go sources in /usr/share/gocode, in
GOPATH mode with no module proxy, so the build is offline. scripts/ensure-go
(part of ``make test``) installs the packages; without them the test skips
and says which are missing. Debian has no connect-go, so no Connect client.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.grpc_stubs import CATALOG, GOOGLEAPIS_INCLUDE, export
from tests.e2e.programs import run
from tests.e2e.server import ROOT, Server
from tests.tokens import ADMIN
from tests.tools import GO_CACHE

PROGRAM = ROOT / "docs_src" / "other_languages" / "go" / "main.go"
# The import path the generated package gets (protoc-gen-go's M option): the
# exported .proto names no go_package, as it knows nothing of Go layouts.
GO_PACKAGE = "twofold.example/catalog/v1"
GO_TOOLS = ("go", "gofmt", "protoc", "protoc-gen-go", "protoc-gen-go-grpc")
GOCODE = Path("/usr/share/gocode/src")
GO_SOURCES = ("google.golang.org/grpc", "google.golang.org/protobuf", "google.golang.org/genproto")
MISSING_ID = 987654321


def _missing() -> list[str]:
    missing = [name for name in GO_TOOLS if shutil.which(name) is None]
    return missing + [src for src in GO_SOURCES if not (GOCODE / src).is_dir()]


@pytest.fixture(scope="session")
def go_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The docs' Go program, built once per session: its path."""
    missing = _missing()
    if missing:
        pytest.skip(f"scripts/ensure-go could not install {', '.join(missing)} (needs root)")
    out = tmp_path_factory.mktemp("go")
    gopath = out / "gopath"
    proto = export(CATALOG, out / "proto")
    (gopath / "src").mkdir(parents=True)
    mapping = f"Mcatalog/v1/catalog.proto={GO_PACKAGE};catalogv1"
    run(
        "protoc",
        f"-I{proto}",
        f"-I{GOOGLEAPIS_INCLUDE}",  # google/api/annotations.proto; protoc has google/protobuf
        f"--go_out={gopath / 'src'}",
        f"--go_opt={mapping}",
        f"--go-grpc_out={gopath / 'src'}",
        f"--go-grpc_opt={mapping}",
        "catalog/v1/catalog.proto",
        cwd=out,
    )
    program = gopath / "src" / "twofold.example" / "client"
    program.mkdir(parents=True)
    shutil.copy(PROGRAM, program)
    env = {
        **os.environ,
        # GOPATH mode: imports resolve in our tree, then in Debian's sources;
        # no go.mod, no module cache, and GOPROXY=off so nothing is fetched.
        "GO111MODULE": "off",
        "GOPATH": f"{gopath}{os.pathsep}{GOCODE.parent}",
        "GOPROXY": "off",
        "GOFLAGS": "",
        "GOCACHE": str(GO_CACHE),
    }
    assert run("gofmt", "-l", PROGRAM).stdout == "", "gofmt would change the program"
    run("go", "vet", ".", cwd=program, env=env)
    run("go", "build", "-o", out / "catalog-client", ".", cwd=program, env=env)
    return out / "catalog-client"


def test_go_grpc_client_calls_the_catalog(go_client: Path, catalog: Server) -> None:
    out = json.loads(run(go_client, catalog.grpc_target, ADMIN).stdout)
    product_id = out["created"]["id"]
    assert out["created"]["name"] == "Kettle" and out["created"]["category"].startswith("go-")
    got = out["got"]
    assert got["etag"] and got["updated"].endswith("Z")
    assert {k: got[k] for k in ("id", "name", "price", "tags")} == {
        "id": product_id,
        "name": "Kettle",
        "price": "24.50",
        "tags": ["kitchen"],
    }
    assert out["listed"] == [product_id]
    assert out["missing"] == {
        "code": "NotFound",
        "message": f"product {MISSING_ID} does not exist",
    }
    assert out["notFound"] is True
    # WatchPrices' first message: one of the program's price changes to its product.
    change = out["change"]
    assert change["product_id"] == product_id
    assert change["old_price"] != change["new_price"]
    # The program's prices count up by a cent from 25.00 until the stream has one.
    assert re.fullmatch(r"2[5-9]\.[0-9]{2}", change["new_price"]), change


def test_go_client_without_a_token_is_refused(go_client: Path, catalog: Server) -> None:
    result = subprocess.run(
        [str(go_client), catalog.grpc_target, "not-a-token"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("CreateProduct: rpc error: code = Unauthenticated")
