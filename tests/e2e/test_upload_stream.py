"""Streamed uploads (twofold.Upload) over ``twofold serve``: a 200 MiB body
hashed with the server's memory flat, credentials before the body, and a
form that turns bad after its file part failing the handler's loop."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import Server, start
from tests.e2e.upload_app import WRITER_KEY
from twofold import AsyncClient, Client, Code, Error, Upload

TARGET = "tests.e2e.upload_app:app"
MiB = 1 << 20
KEY = {"X-API-Key": WRITER_KEY}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start(TARGET, tmp_path_factory.mktemp("uploads"), None)
    yield running
    running.stop()


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (the peak resident set) of a process, in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) * 1024
    return out


def test_a_200_mib_upload_keeps_the_server_memory_flat(
    server: Server, server_http: httpx.Client
) -> None:
    block = bytes(range(256)) * 4096  # 1 MiB
    total = 200
    expected = hashlib.sha256()
    for _ in range(total):
        expected.update(block)

    def body() -> Iterator[bytes]:
        for _ in range(total):
            yield block

    # Warm up first, so that what the first request imports is not counted.
    assert server_http.put("/blobs/warm", content=b"x" * MiB, headers=KEY).status_code == 200
    before = memory(server.process.pid)
    r = server_http.put(
        "/blobs/big", content=body(), headers={**KEY, "content-type": "application/octet-stream"}
    )
    after = memory(server.process.pid)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["size"] == total * MiB and got["sha256"] == expected.hexdigest()
    # The peak resident set grew by far less than the file: it was never held whole.
    growth = after["VmHWM"] - before["VmHWM"]
    assert growth < 32 * MiB, f"peak RSS grew {growth / MiB:.1f} MiB for a 200 MiB upload"
    assert got["chunks"] > total  # the handler saw it in many chunks, not whole


def test_multipart_streams_the_named_part(server_http: httpx.Client) -> None:
    data = b"\x00\xff" * 300_000
    form = (
        b'--b\r\nContent-Disposition: form-data; name="note"\r\n\r\nskipped\r\n'
        b'--b\r\nContent-Disposition: form-data; name="upload"; filename="a.bin"\r\n'
        b"Content-Type: application/x-a\r\n\r\n" + data + b"\r\n--b--\r\n"
    )

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(form), 7001):  # boundaries split across chunks
            yield form[i : i + 7001]

    r = server_http.put(
        "/blobs/form",
        content=chunks(),
        headers={**KEY, "content-type": "multipart/form-data; boundary=b"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()


def test_credentials_are_checked_before_the_body(server_http: httpx.Client) -> None:
    r = server_http.put("/blobs/anonymous", content=b"x" * MiB)
    assert r.status_code == 401
    assert "anonymous" not in server_http.get("/seen", headers=KEY).json()["names"]


@pytest.mark.parametrize(
    ("tail", "status", "what"),
    [
        (b"--b\r\nContent-Disposition: form-data\r\n\r\nv\r\n--b--\r\n", 400, "with a name"),
        (
            b"".join(
                b'--b\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nv\r\n' % i
                for i in range(20)
            )
            + b"--b--\r\n",
            413,
            "at most 16 parts",
        ),
        (b"--b\r\nContent-Disposition: form-da", 400, "ends before"),
    ],
)
def test_a_form_bad_after_its_file_fails_the_handler(
    server_http: httpx.Client, tail: bytes, status: int, what: str
) -> None:
    form = (
        b'--b\r\nContent-Disposition: form-data; name="upload"; filename="a"\r\n\r\n'
        + b"y" * 100_000
        + b"\r\n"
        + tail
    )
    # Even a handler that catches the error and returns gets no success out.
    for path in ("/blobs/late", "/swallowed/late"):
        r = server_http.put(
            path, content=form, headers={**KEY, "content-type": "multipart/form-data; boundary=b"}
        )
        assert r.status_code == status, (path, r.text)
        assert what in r.json()["detail"]


def test_refused_before_the_handler(server_http: httpx.Client) -> None:
    bad = [
        ("multipart/form-data", b"--b--\r\n", 400, "without a boundary"),
        (
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="upload"; filename="../x"\r\n\r\n'
            b"y\r\n--b--\r\n",
            400,
            "may not contain a path",
        ),
    ]
    for content_type, body, status, what in bad:
        r = server_http.put(
            "/blobs/refused", content=body, headers={**KEY, "content-type": content_type}
        )
        assert r.status_code == status and what in r.json()["detail"], r.text
    assert "refused" not in server_http.get("/seen", headers=KEY).json()["names"]


def test_a_declared_size_over_the_limit_is_413_unread(
    server: Server, server_http: httpx.Client
) -> None:
    # Headers only: 300 MiB declared, none sent; the answer comes without waiting for them.
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            b"PUT /blobs/declared HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n"
            b"Content-Length: %d\r\n\r\n" % (WRITER_KEY.encode(), 300 * MiB)
        )
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert "declared" not in server_http.get("/seen", headers=KEY).json()["names"]


def test_rpc_wires_carry_an_upload_as_one_message(server_http: httpx.Client) -> None:
    sent = {"name": "rpc", "upload": {"data": base64.b64encode(b"hello").decode(),
                                      "filename": "h.txt"}}  # fmt: skip
    r = server_http.post("/blobs.v1.BlobsService/PutBlob", json=sent, headers=KEY)
    assert r.status_code == 200, r.text
    assert r.json()["sha256"] == hashlib.sha256(b"hello").hexdigest()


def test_a_200_mib_streamed_download_keeps_the_server_memory_flat(
    server: Server, server_http: httpx.Client
) -> None:
    before = memory(server.process.pid)
    size = 0
    digest = hashlib.sha256()
    with server_http.stream("GET", "/generated/200") as r:
        assert r.status_code == 200
        # No size given: chunked, and no ranges offered.
        assert r.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in r.headers and "accept-ranges" not in r.headers
        assert r.headers["content-disposition"] == 'attachment; filename="generated.bin"'
        for chunk in r.iter_bytes():
            size += len(chunk)
            digest.update(chunk)
    after = memory(server.process.pid)
    growth = after["VmHWM"] - before["VmHWM"]
    assert growth < 32 * MiB, f"peak RSS grew {growth / MiB:.1f} MiB for a 200 MiB download"
    block = bytes(range(256)) * 4096
    expected = hashlib.sha256()
    for _ in range(200):
        expected.update(block)
    assert size == 200 * MiB and digest.hexdigest() == expected.hexdigest()


def test_a_streamed_download_of_known_size_takes_ranges_and_head(server_http: httpx.Client) -> None:
    block = bytes(range(256)) * 4096
    r = server_http.get(
        "/generated/2", params={"declared": "true"}, headers={"range": "bytes=1048570-1048585"}
    )
    assert r.status_code == 206, r.text
    assert r.headers["content-range"] == f"bytes 1048570-1048585/{2 * MiB}"
    assert r.content == (block + block)[1048570:1048586]
    head = server_http.head("/generated/2", params={"declared": "true"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(2 * MiB)
    # Without a size the Range is ignored: the whole file, 200.
    r = server_http.get("/generated/1", headers={"range": "bytes=0-9"})
    assert r.status_code == 200 and len(r.content) == MiB


def test_a_stream_that_breaks_its_size_drops_the_connection(
    server: Server, server_http: httpx.Client
) -> None:
    # Content-Length went out first: a stream 5 bytes short, or one running
    # past its size, is a dropped connection, never another file taken as whole.
    for lie in (5, -5):
        logged = len(server.log.read_text())
        with pytest.raises(httpx.RemoteProtocolError):
            server_http.get("/generated/1", params={"declared": "true", "lie": lie})
        # The server says why (the handler's stream is at fault), and no more.
        log = server.log.read_text()[logged:]
        assert "BrokenStream: the file's stream gave" in log
        assert "Expected ASGI message" not in log
    assert server_http.get("/generated/1", params={"declared": "true"}).status_code == 200


def test_rpc_wires_gather_a_streamed_download(server_http: httpx.Client) -> None:
    r = server_http.post("/blobs.v1.BlobsService/GetGenerated", json={"mib": 1}, headers=KEY)
    assert r.status_code == 200, r.text
    assert base64.b64decode(r.json()["data"]) == bytes(range(256)) * 4096


def _chunks(n: int) -> Iterator[bytes]:
    for i in range(n):
        yield bytes([i % 256]) * 100_000


def _expected(n: int) -> str:
    return hashlib.sha256(b"".join(_chunks(n))).hexdigest()


@pytest.mark.parametrize("protocol", ["rest", "connect", "connect-proto", "jsonrpc", "grpc"])
def test_the_client_sends_an_upload_from_a_generator(server: Server, protocol: str) -> None:
    from tests.e2e.upload_app import service

    # Off REST an Upload is one message, under max_body_size (1 MiB): 500 kB there.
    n = 30 if protocol == "rest" else 5
    target = server.grpc_target if protocol == "grpc" else server.url
    with Client(service, target, protocol=protocol, headers=KEY) as client:
        upload = Upload.of(_chunks(n), content_type="application/x-a", filename="a.bin")
        got = client.put_blob(name=f"client-{protocol}", upload=upload)
    assert got.size == n * 100_000 and got.sha256 == _expected(n)
    # Over REST the body streamed: the handler saw many chunks, not one message.
    assert (got.chunks > 1) is (protocol == "rest")


@pytest.mark.parametrize("protocol", ["rest", "connect"])
def test_the_async_client_sends_an_upload_from_an_async_iterator(
    server: Server, protocol: str
) -> None:
    from tests.e2e.upload_app import service

    n = 30 if protocol == "rest" else 5

    async def chunks() -> AsyncIterator[bytes]:
        for chunk in _chunks(n):
            yield chunk

    async def call() -> Any:
        async with AsyncClient(service, server.url, protocol=protocol, headers=KEY) as client:
            return await client.put_blob(name="async", upload=Upload.of(chunks()))

    got = asyncio.run(call())
    assert got.size == n * 100_000 and got.sha256 == _expected(n)


@pytest.mark.parametrize("protocol", ["rest", "connect"])
def test_the_client_uploads_a_file_from_its_path(
    server: Server, protocol: str, tmp_path: Path
) -> None:
    from tests.e2e.upload_app import service

    n = 30 if protocol == "rest" else 5  # one message under the body limit elsewhere
    path = tmp_path / "backup.tar"
    path.write_bytes(b"".join(_chunks(n)))
    with Client(service, server.url, protocol=protocol, headers=KEY) as client:
        got = client.put_blob(name=f"path-{protocol}", upload=Upload.from_path(path))
    assert got.size == n * 100_000 and got.sha256 == _expected(n)
    # Its type from its name, its name as the filename; over REST read in chunks.
    assert (got.content_type, got.filename) == ("application/x-tar", "backup.tar")
    assert (got.chunks > 1) is (protocol == "rest")
    named = Upload.from_path(path, content_type="application/x-b", filename="b.bin")
    assert (named.content_type, named.filename) == ("application/x-b", "b.bin")
    # A file that is not there fails before any request is made.
    with pytest.raises(FileNotFoundError):
        Upload.from_path(tmp_path / "missing.tar")


def test_a_streamed_upload_refused_is_not_retried_empty(server: Server) -> None:
    from tests.e2e.upload_app import service

    # 413 from the limit would be final anyway; a 401 (no key) is what is checked
    # here: the error comes back, the generator is read at most once.
    with Client(service, server.url, protocol="rest") as client, pytest.raises(Error) as caught:
        client.put_blob(name="nokey", upload=Upload.of(_chunks(3)))
    assert caught.value.code is Code.UNAUTHENTICATED


def test_grpc_gathers_a_streamed_download(server: Server) -> None:
    from tests.e2e.upload_app import service

    with Client(service, server.grpc_target, protocol="grpc") as client:
        got = client.get_generated(mib=1)
    assert got.data == bytes(range(256)) * 4096 and got.filename == "generated.bin"


def test_a_client_gone_mid_upload_is_no_server_error(
    server: Server, server_http: httpx.Client
) -> None:
    logged = len(server.log.read_text())
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            b"PUT /blobs/gone HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n"
            b"Content-Length: %d\r\n\r\n" % (WRITER_KEY.encode(), 64 * MiB)
        )
        sock.sendall(b"x" * MiB)
    # The handler ran and saw its loop fail; the server logs no traceback for it.
    for _ in range(200):
        if "gone" in server_http.get("/seen", headers=KEY).json()["names"]:
            break
        time.sleep(0.05)
    assert "gone" in server_http.get("/seen", headers=KEY).json()["names"]
    assert server_http.put("/blobs/after", content=b"ok", headers=KEY).status_code == 200
    assert "Traceback" not in server.log.read_text()[logged:]
