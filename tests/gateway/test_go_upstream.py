"""The gateway in front of a Go upstream (grpc-go), its schema read by server reflection.

The Greeter of docs_src/gateway/greeter.proto, written in Go
(tests/gateway/go/main.go), built offline in GOPATH mode against Debian's
grpc-go and genproto sources, as tests/e2e/test_go_client.py builds its
client; scripts/ensure-go installs them, and without them the test skips
and says which are missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.grpc_stubs import GOOGLEAPIS_INCLUDE
from tests.e2e.server import ROOT, Server, spawn
from tests.tools import GO_CACHE

PROGRAM = Path(__file__).with_name("go") / "main.go"
PROTO = ROOT / "docs_src" / "gateway" / "greeter.proto"
GO_PACKAGE = "twofold.example/greeter/v1"
GO_TOOLS = ("go", "gofmt", "protoc", "protoc-gen-go", "protoc-gen-go-grpc")
GOCODE = Path("/usr/share/gocode/src")
GO_SOURCES = ("google.golang.org/grpc", "google.golang.org/protobuf", "google.golang.org/genproto")


def _missing() -> list[str]:
    missing = [name for name in GO_TOOLS if shutil.which(name) is None]
    return missing + [src for src in GO_SOURCES if not (GOCODE / src).is_dir()]


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args[0]}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def go_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    missing = _missing()
    if missing:
        pytest.skip(f"scripts/ensure-go could not install {', '.join(missing)} (needs root)")
    out = tmp_path_factory.mktemp("go-upstream")
    src = out / "gopath" / "src"
    src.mkdir(parents=True)
    mapping = f"Mgreeter.proto={GO_PACKAGE};greeterv1"
    _run(
        "protoc",
        f"-I{PROTO.parent}",
        f"-I{GOOGLEAPIS_INCLUDE}",
        f"--go_out={src}",
        f"--go_opt={mapping}",
        f"--go-grpc_out={src}",
        f"--go-grpc_opt={mapping}",
        "greeter.proto",
        cwd=out,
    )
    program = src / "twofold.example" / "greeter-server"
    program.mkdir(parents=True)
    shutil.copy(PROGRAM, program)
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": f"{out / 'gopath'}{os.pathsep}{GOCODE.parent}",
        "GOPROXY": "off",
        "GOFLAGS": "",
        "GOCACHE": str(GO_CACHE),
    }
    assert _run("gofmt", "-l", PROGRAM, cwd=ROOT) == "", "gofmt would change the program"
    _run("go", "vet", ".", cwd=program, env=env)
    _run("go", "build", "-o", out / "greeter-server", ".", cwd=program, env=env)
    with (
        (out / "server.log").open("w") as log,
        subprocess.Popen(
            [str(out / "greeter-server")], stdout=subprocess.PIPE, stderr=log, text=True
        ) as process,
    ):
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        try:
            yield f"127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(10)


@pytest.fixture(scope="module")
def gateway(go_upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("go-gateway")

    def argv(port: int, _: int | None) -> list[str]:
        # No --proto: the schema comes from grpc-go's reflection.
        return [sys.executable, "-m", "twofold", "gateway", "--upstream", go_upstream,
                "--port", str(port)]  # fmt: skip

    server = spawn(argv, tmp)
    yield server
    server.stop()


def test_rest_to_a_go_upstream(gateway: Server) -> None:
    r = httpx.get(f"{gateway.url}/v1/greetings/Ada")
    assert r.status_code == 200
    assert r.json() == {"message": "Hello from Go, Ada"}


def test_a_go_stream_as_sse(gateway: Server) -> None:
    r = httpx.get(f"{gateway.url}/v1/greetings/Ada:stream?times=2")
    assert r.headers["content-type"] == "text/event-stream"
    assert r.text == (
        'data: {"message":"Hello #1 from Go, Ada"}\n\ndata: {"message":"Hello #2 from Go, Ada"}\n\n'
    )


def test_go_error_details_as_a_problem(gateway: Server) -> None:
    r = httpx.get(f"{gateway.url}/v1/greetings/%20")
    assert r.status_code == 400
    problem = r.json()
    assert problem["detail"] == "a name, please"
    assert problem["violations"] == [{"field": "name", "description": "must not be blank"}]


def test_connect_and_jsonrpc_to_a_go_upstream(gateway: Server) -> None:
    r = httpx.post(f"{gateway.url}/greeter.v1.Greeter/SayHello", json={"name": "Bo"})
    assert r.json() == {"message": "Hello from Go, Bo"}
    r = httpx.post(
        f"{gateway.url}/jsonrpc",
        json={"jsonrpc": "2.0", "method": "SayHello", "params": {"name": "Cy"}, "id": 7},
    )
    assert r.json() == {"jsonrpc": "2.0", "result": {"message": "Hello from Go, Cy"}, "id": 7}
