"""``twofold serve --server pyvoy``: every wire on one port, driven by clients nobody here wrote.

connect-es under Node (Connect, gRPC and gRPC-Web over HTTP/2, and the
kinds HTTP/1.1 carries), ``buf curl`` (all four kinds on each of the three
protocols, the API learnt from reflection), grpcio's generic calls (all four
kinds), httpx and
curl over HTTP/1.1 and h2c, and, with ``--tls-cert/--tls-key``, httpx,
grpcio, curl and ``buf curl`` over TLS with ALPN h2, and ``websockets`` over
wss. The service is tests/e2e/grpc_app.py.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from tests.e2e import grpc_app, grpc_stubs
from tests.e2e.certificates import self_signed
from tests.e2e.grpc_app import Number, Text
from tests.e2e.programs import node_json
from tests.e2e.server import ROOT, Server, spawn, start
from twofold.protobuf import Schema

TARGET = "tests.e2e.grpc_app:app"
NODE_MODULES = ROOT / "node_modules"
PLUGIN = NODE_MODULES / ".bin" / "protoc-gen-es"
BUF = NODE_MODULES / ".bin" / "buf"
CLIENT = Path(__file__).parent / "node" / "streams_client.mjs"
SCHEMA = Schema(grpc_app.app.table)
METHODS = {m.name: m for m in grpc_app.app.table}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    served = start(TARGET, tmp_path_factory.mktemp("one-port"), None, "--server", "pyvoy")
    yield served
    served.stop()


def call(channel: grpc.Channel, kind: str, name: str) -> Any:
    method = METHODS[name]
    return getattr(channel, kind)(
        method.path,
        request_serializer=SCHEMA.codec(method.input_type).encode,
        response_deserializer=SCHEMA.codec(method.output_type).decode,
    )


def test_grpcio_every_kind(server: Server) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        echo = call(channel, "unary_unary", "EchoMetadata")
        answer, outcome = echo.with_call(
            METHODS["EchoMetadata"].input_type(name="x-who"), metadata=(("x-who", "ada"),)
        )
        assert answer == Text("grpc ada")
        assert ("x-echo", "ada") in tuple(outcome.initial_metadata())
        count = call(channel, "unary_stream", "Count")
        assert list(count(METHODS["Count"].input_type(n=3))) == [Number(0), Number(1), Number(2)]
        total = call(channel, "stream_unary", "Total")
        assert total(iter([Number(1), Number(2), Number(3)])) == Number(6)
        double = call(channel, "stream_stream", "Double")
        assert list(double(iter([Number(1), Number(2)]))) == [Number(2), Number(4)]
        with pytest.raises(grpc.RpcError) as info:
            list(count(METHODS["Count"].input_type(n=-1)))
        assert info.value.code() is grpc.StatusCode.OUT_OF_RANGE


def test_grpcio_deadline_and_cancel(server: Server) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        sleep = call(channel, "unary_unary", "Sleep")
        with pytest.raises(grpc.RpcError) as info:
            sleep(METHODS["Sleep"].input_type(seconds=30.0), timeout=0.3)
        assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        future = sleep.future(METHODS["Sleep"].input_type(seconds=30.0))
        # Not a timing assertion: the call must reach the handler before it is cancelled.
        subprocess.run(["sleep", "0.5"], check=True)
        future.cancel()
        assert future.cancelled()
    # The handler saw both ends (the served process prints them: tests/e2e/grpc_app.py).
    for _ in range(100):
        if server.output().count("sleep cancelled") >= 2:
            break
        subprocess.run(["sleep", "0.05"], check=True)
    assert server.output().count("sleep cancelled") >= 2, server.output()


@pytest.mark.parametrize("http2", [False, True])
def test_rest_connect_and_grpc_web_on_http1_and_h2c(server: Server, http2: bool) -> None:
    with httpx.Client(base_url=server.url, http1=not http2, http2=http2) as client:
        r = client.post(
            METHODS["Whoami"].path, content=b"{}", headers={"content-type": "application/json"}
        )
        assert r.status_code == 200 and "n" in r.json()
        assert r.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
        assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
        r = client.post(
            METHODS["Whoami"].path,
            content=b"\x00\x00\x00\x00\x00",
            headers={"content-type": "application/grpc-web"},
        )
        assert r.status_code == 200 and r.content.endswith(b"grpc-status: 0\r\n")


def buf_curl(
    server: Server, *args: str, cacert: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``buf curl`` over h2c, or over TLS (ALPN) trusting ``cacert``."""
    if not BUF.exists():
        pytest.fail("buf is not installed: run `npm ci` (make test does)")
    transport = ["--http2-prior-knowledge"] if cacert is None else ["--cacert", str(cacert)]
    return subprocess.run(
        [str(BUF), "curl", *transport, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "BUF_CACHE_DIR": str(server.log.parent / "buf-cache")},
        check=False,
    )


def messages(text: str) -> list[Any]:
    """``buf curl``'s answers: JSON objects one after another."""
    decoder, out, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        item, at = decoder.raw_decode(text, at)
        out.append(item)
        while at < len(text) and text[at].isspace():
            at += 1
    return out


@pytest.mark.parametrize("protocol", ["grpc", "connect", "grpcweb"])
def test_buf_curl_every_kind(server: Server, protocol: str) -> None:
    """buf curl learns the methods from reflection on the one port, then calls each kind."""

    def call(name: str, data: str) -> list[Any]:
        done = buf_curl(server, "--protocol", protocol, "-d", data, server.url + METHODS[name].path)
        assert done.returncode == 0, done.stderr
        return messages(done.stdout)

    assert call("EchoMetadata", '{"name": "user-agent"}')[0]["text"].startswith(
        f"{protocol.replace('grpcweb', 'grpc-web')} "
    )
    # int64 is a JSON string; proto3 JSON leaves the zero value out.
    assert call("Count", '{"n": 3}') == [{}, {"n": "1"}, {"n": "2"}]
    assert call("Total", '{"n": 1} {"n": 2} {"n": 3}') == [{"n": "6"}]
    assert call("Double", '{"n": 1} {"n": 2}') == [{"n": "2"}, {"n": "4"}]


def test_buf_curl_lists_methods_by_reflection(server: Server) -> None:
    listed = buf_curl(server, "--protocol", "grpc", "--list-methods", server.url)
    assert listed.returncode == 0, listed.stderr
    methods = listed.stdout.split()
    assert {m.path.lstrip("/") for m in grpc_app.app.table} <= set(methods)
    assert "grpc.health.v1.Health/Check" in methods


def test_curl_http2_prior_knowledge(server: Server) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("no curl")
    out = subprocess.run(
        [curl, "-sS", "--http2-prior-knowledge", "-w", "\n%{http_version}", server.url + "/readyz"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert out.split() == ["ready", "2"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``twofold proto``, then protoc with protoc-gen-es: the service as ES modules."""
    if shutil.which("node") is None or not PLUGIN.exists():
        pytest.fail("needs node and `npm ci` (make test does both)")
    tmp = tmp_path_factory.mktemp("connect-es-streams")
    return grpc_stubs.generate_es(tmp, TARGET, "streams/v1/streams.proto")


def test_connect_es_every_kind_on_every_wire(server: Server, generated: Path) -> None:
    results = node_json(CLIENT, generated, server.url)
    duplex = {"client": 10, "bidi": [2, 4, 6]}
    for name, protocol in [
        ("connect-json-h2", "connect"),
        ("connect-binary-h2", "connect"),
        ("grpc-h2", "grpc"),
        ("grpc-web-h2", "grpc-web"),
    ]:
        expected = {"unary": f"{protocol} ada", "server": [0, 1, 2], "error": "OutOfRange"}
        assert results[name] == {**expected, **duplex}, name
    for name, protocol in [("connect-json-h1", "connect"), ("grpc-web-h1", "grpc-web")]:
        expected = {"unary": f"{protocol} ada", "server": [0, 1, 2], "error": "OutOfRange"}
        assert results[name] == expected, name


def test_tls_with_alpn_h2(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)

    def argv(port: int, _: int | None) -> list[str]:
        return [
            sys.executable, "-m", "twofold", "serve", TARGET, "--server", "pyvoy",
            "--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key),
        ]  # fmt: skip

    served = spawn(argv, tmp_path, tls=cert)
    try:
        url, trusted = served.url, ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=url, http2=True, verify=trusted) as client:
            r = client.get("/readyz")
            assert (r.status_code, r.http_version) == (200, "HTTP/2")  # ALPN chose h2
        with httpx.Client(base_url=url, verify=trusted) as client:
            assert client.get("/readyz").http_version == "HTTP/1.1"
        # A page of the server's own origin opens a WebSocket over TLS: the App
        # sees the edge's scheme (wss), not the internal hop's.
        own = f"https://127.0.0.1:{served.port}"
        wss = f"wss://127.0.0.1:{served.port}/jsonrpc"
        with ws_connect(wss, ssl=trusted, origin=own) as ws:  # type: ignore[arg-type]
            ws.send(json.dumps({"jsonrpc": "2.0", "method": "Whoami", "params": {}, "id": 1}))
            assert "n" in json.loads(ws.recv(timeout=10))["result"]
        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with grpc.secure_channel(f"127.0.0.1:{served.port}", credentials) as channel:
            double = call(channel, "stream_stream", "Double")
            assert list(double(iter([Number(5)]))) == [Number(10)]
        curl = shutil.which("curl")
        if curl is not None:
            done = subprocess.run(
                [curl, "-sS", "--cacert", str(cert), "-w", "\n%{http_version}", url + "/readyz"],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert done.stdout.splitlines()[-1] == "2"  # curl offers h2 by ALPN over TLS
        for protocol in ("grpc", "connect", "grpcweb"):
            path = url + METHODS["Double"].path
            done = buf_curl(served, "--protocol", protocol, "-d", '{"n": 4}', path, cacert=cert)
            assert done.returncode == 0, (protocol, done.stderr)
            assert messages(done.stdout) == [{"n": "8"}], protocol
    finally:
        served.stop()
