"""Where the schema comes from: .proto files, a descriptor set, server reflection;
and ``twofold gateway`` as a process, with its OpenAPI document."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate

from tests.e2e.server import ROOT, Server, free_port, spawn
from tests.gateway.reflection import reflect
from tests.gateway.upstream import PROTO, Upstream, descriptor_set, running
from twofold.gateway import SchemaError, from_descriptor_set, from_proto_files


def test_three_sources_give_the_same_methods(upstream: Upstream) -> None:
    from_files = from_proto_files([str(PROTO)])
    from_set = from_descriptor_set(descriptor_set())
    reflected = reflect(upstream.target)
    names = [sorted(m.full_name for m in s.methods()) for s in (from_files, from_set, reflected)]  # type: ignore[attr-defined]
    assert names[0] == names[1] == names[2]
    assert "library.v1.Library.WatchBooks" in names[0]


def test_no_reflection_is_a_clear_error() -> None:
    with running(reflect=False) as up, pytest.raises(SchemaError, match="no server reflection"):
        reflect(up.target)


def test_nothing_listening_is_a_clear_error() -> None:
    with pytest.raises(SchemaError, match="reflection"):
        reflect(f"127.0.0.1:{free_port()}", wait=2.0)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ('syntax = "proto3"; message {', "could not compile"),
        (
            'syntax = "proto3"; import "google/api/annotations.proto";\n'
            "message M { int64 id = 1; }\n"
            "service S { rpc Get(M) returns (M) {"
            ' option (google.api.http) = {get: "/v1/{nope}"}; } }',
            "binds nope, no scalar field",
        ),
        (
            'syntax = "proto3"; import "google/api/annotations.proto";\n'
            "message M { int64 id = 1; }\n"
            "service S { rpc Get(M) returns (M) {"
            ' option (google.api.http) = {get: "v1/x"}; } }',
            "starts with '/'",
        ),
    ],
)
def test_a_bad_proto_is_a_clear_error(source: str, message: str, tmp_path: Path) -> None:
    from twofold.gateway import Gateway

    path = tmp_path / "bad.proto"
    path.write_text(source)
    with pytest.raises(SchemaError, match=message):
        Gateway(from_proto_files([str(path)]), "127.0.0.1:1")


def test_a_bad_descriptor_set_is_a_clear_error() -> None:
    with pytest.raises(SchemaError, match="not a serialized FileDescriptorSet"):
        from_descriptor_set(b"\xff\xff\xff")


def _gateway(tmp: Path, *args: str) -> Server:
    def argv(port: int, _: int | None) -> list[str]:
        return [sys.executable, "-m", "twofold", "gateway", *args, "--port", str(port)]

    return spawn(argv, tmp)


@pytest.mark.parametrize("source", ["reflection", "proto", "descriptor-set"])
def test_the_command_serves(source: str, upstream: Upstream, tmp_path: Path) -> None:
    args = ["--upstream", upstream.target]
    if source == "proto":
        args += ["--proto", str(PROTO)]
    elif source == "descriptor-set":
        (tmp_path / "set.pb").write_bytes(descriptor_set())
        args += ["--descriptor-set", str(tmp_path / "set.pb")]
    server = _gateway(tmp_path, *args)
    try:
        r = httpx.get(f"{server.url}/v1/shelves/6")
        assert r.json() == {"id": "6", "theme": "theme 6"}
        spec = httpx.get(f"{server.url}/openapi.json").json()
        validate(spec)
        assert httpx.get(f"{server.url}/docs").status_code == 200
    finally:
        server.stop()


def test_the_command_prints_openapi(upstream: Upstream) -> None:
    # From the .proto: reflection carries no comments (grpcio's sends no source info).
    args = ["--upstream", upstream.target, "--proto", str(PROTO), "--openapi"]
    done = subprocess.run(
        [sys.executable, "-m", "twofold", "gateway", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    spec = json.loads(done.stdout)
    validate(spec)
    get = spec["paths"]["/v1/{name}"]["get"]
    assert get["operationId"] == "GetBook"
    assert get["summary"] == "Get one book by its resource name."
    book = spec["components"]["schemas"]["library.v1.Book"]
    assert book["required"] == ["title"]
    assert book["properties"]["createTime"]["readOnly"] is True
    assert book["properties"]["pages"]["format"] == "int64"
    assert book["description"] == "A book on a shelf."
    assert "/library.v1.Library/Echo" in spec["paths"]  # no HTTP rule: its Connect path
    watch = spec["paths"]["/v1/{parent}/books:watch"]["get"]
    assert "text/event-stream" in watch["responses"]["200"]["content"]


def test_the_command_fails_in_one_line_without_reflection(tmp_path: Path) -> None:
    with running(reflect=False) as up:
        done = subprocess.run(
            [sys.executable, "-m", "twofold", "gateway", "--upstream", up.target, "--openapi"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert done.stderr.startswith("twofold: error: the upstream offers no server reflection")
    assert "Traceback" not in done.stderr


def test_the_command_takes_cors_origins(upstream: Upstream, tmp_path: Path) -> None:
    page = "https://app.example.com"
    server = _gateway(tmp_path, "--upstream", upstream.target, "--cors-origin", page)
    try:
        r = httpx.get(f"{server.url}/v1/shelves/6", headers={"origin": page})
        assert r.headers["access-control-allow-origin"] == page
    finally:
        server.stop()
