"""Files over ``twofold serve``: uploads raw and as multipart (curl and httpx),
downloads with ranges, ETags and 304, and the bad input of issue 16 refused
with 400/413/416 and nothing stored."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import Server, start

TARGET = "docs_src.files.app:app"
LIMIT = 4 << 20  # the example's Options(max_upload_size=...)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("archive")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, archive: Path) -> Iterator[Server]:
    env = {"ARCHIVE_DIR": str(archive)}
    running = start(TARGET, tmp_path_factory.mktemp("files"), env, "--no-grpc")
    yield running
    running.stop()


def curl(*args: str) -> tuple[int, dict[str, str], bytes]:
    """Run curl; its status, headers (last response) and body."""
    done = subprocess.run(
        ["curl", "-sS", "-D", "-", "--max-time", "30", *args],
        capture_output=True,
        check=True,
    )
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    while head.split(b" ", 2)[1].startswith(b"1"):  # 100 Continue, then the answer
        head, _, body = body.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def test_curl_multipart_upload_then_ranges(server: Server, tmp_path: Path) -> None:
    data = bytes(range(256)) * 40  # 10240 bytes
    path = tmp_path / "report.bin"
    path.write_bytes(data)
    url = f"{server.url}/documents/report"
    status, _, body = curl("-X", "PUT", "-F", f"file=@{path};type=application/pdf", url)
    assert status == 200, body
    assert b'"size":10240' in body and b'"filename":"report.bin"' in body
    status, headers, body = curl(url)
    assert status == 200 and body == data
    assert headers["content-type"] == "application/pdf"
    assert headers["content-disposition"] == 'attachment; filename="report.bin"'
    assert headers["accept-ranges"] == "bytes"
    status, headers, body = curl("-r", "100-199", url)
    assert status == 206 and body == data[100:200]
    assert headers["content-range"] == "bytes 100-199/10240"
    status, headers, body = curl("-r", "-10", url)
    assert status == 206 and body == data[-10:]
    # Several ranges are answered as one span covering them all.
    status, headers, body = curl("-r", "0-9,20-29", url)
    assert status == 206 and body == data[:30]
    assert headers["content-range"] == "bytes 0-29/10240"
    status, headers, body = curl("-r", "20000-", url)
    assert status == 416 and headers["content-range"] == "bytes */10240"
    assert b'"code":"out_of_range"' in body


def test_curl_raw_upload_keeps_media_type_and_name(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"plain notes")
    url = f"{server.url}/documents/notes"
    status, _, body = curl(
        "-X", "PUT", "--data-binary", f"@{path}", "-H", "Content-Type: text/plain",
        "-H", "Content-Disposition: attachment; filename*=UTF-8''na%C3%AFve.txt", url,
    )  # fmt: skip
    assert status == 200, body
    status, headers, body = curl(url)
    assert body == b"plain notes" and headers["content-type"] == "text/plain"
    assert headers["content-disposition"] == (
        "attachment; filename=\"na_ve.txt\"; filename*=UTF-8''na%C3%AFve.txt"
    )


def test_etag_answers_304_and_if_range(server_http: httpx.Client) -> None:
    assert server_http.put("/documents/e", content=b"0123456789").status_code == 200
    first = server_http.get("/documents/e")
    tag = first.headers["etag"]
    assert server_http.get("/documents/e", headers={"if-none-match": tag}).status_code == 304
    ranged = server_http.get("/documents/e", headers={"range": "bytes=2-3", "if-range": tag})
    assert ranged.status_code == 206 and ranged.content == b"23"
    stale = server_http.get("/documents/e", headers={"range": "bytes=2-3", "if-range": '"old"'})
    assert stale.status_code == 200 and stale.content == b"0123456789"
    # A file changes, so does its tag.
    server_http.put("/documents/e", content=b"changed")
    assert server_http.get("/documents/e", headers={"if-none-match": tag}).status_code == 200


def test_the_rpc_wires_carry_the_file_as_bytes(server_http: httpx.Client) -> None:
    sent = {"name": "rpc", "file": {"data": base64.b64encode(b"\x00\x01rpc").decode(),
                                    "content_type": "image/png", "filename": "r.png"}}  # fmt: skip
    r = server_http.post("/docs.v1.DocsService/PutDocument", json=sent)
    assert r.status_code == 200 and int(r.json()["size"]) == 5  # int64: a string in proto3 JSON
    r = server_http.post("/docs.v1.DocsService/GetDocument", json={"name": "rpc"})
    assert base64.b64decode(r.json()["data"]) == b"\x00\x01rpc"
    download = server_http.get("/documents/rpc")
    assert download.content == b"\x00\x01rpc" and download.headers["content-type"] == "image/png"


@pytest.mark.parametrize(
    ("content_type", "body", "status", "what"),
    [
        ("multipart/form-data", b"--x\r\n\r\n--x--\r\n", 400, "without a boundary"),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="file"; filename="../../etc/passwd"'
            b"\r\n\r\nroot\r\n--x--\r\n",
            400,
            "may not contain a path",
        ),
        (
            "multipart/form-data; boundary=x",
            b"--x\r\nContent-Disposition: form-data\r\n\r\nnameless\r\n--x--\r\n",
            400,
            "with a name",
        ),
        (
            "multipart/form-data; boundary=x",
            b"".join(
                b'--x\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nv\r\n' % i
                for i in range(100)
            )
            + b"--x--\r\n",
            413,
            "at most 16 parts",
        ),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="other"\r\n\r\nv\r\n--x--\r\n',
            400,
            "no part named 'file'",
        ),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="file"\r\n\r\ncut short',
            400,
            "ends before",
        ),
    ],
)
def test_bad_multipart_is_refused_and_nothing_is_stored(
    server_http: httpx.Client, content_type: str, body: bytes, status: int, what: str
) -> None:
    r = server_http.put("/documents/bad", content=body, headers={"content-type": content_type})
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert what in r.json()["detail"]
    assert server_http.get("/documents/bad").status_code == 404


def test_a_huge_part_is_413_and_nothing_is_stored(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "huge.bin"
    path.write_bytes(b"\x00" * (LIMIT + 1))
    url = f"{server.url}/documents/huge"
    status, _, body = curl("-X", "PUT", "-F", f"file=@{path}", url)
    assert status == 413 and b"larger than" in body
    status, _, body = curl("-X", "PUT", "--data-binary", f"@{path}",
                           "-H", "Content-Type: application/octet-stream", url)  # fmt: skip
    assert status == 413
    assert curl(url)[0] == 404


def test_a_huge_chunked_upload_is_cut_off(server_http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
        for _ in range(LIMIT // 65536 + 2):
            yield b"\x00" * 65536

    r = server_http.put(
        "/documents/chunked",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert r.status_code == 413
    assert server_http.get("/documents/chunked").status_code == 404


def test_many_ranges_never_crash(server_http: httpx.Client) -> None:
    server_http.put("/documents/r", content=b"x" * 1000)
    many = "bytes=" + ",".join(f"{i}-{i}" for i in range(0, 1000, 2))
    r = server_http.get("/documents/r", headers={"range": many})
    assert r.status_code == 416 and "at most" not in r.text
    for junk in ("bytes=abc", "bytes=5-2", "items=0-1", "bytes=", "bytes=-"):
        r = server_http.get("/documents/r", headers={"range": junk})
        assert r.status_code == 200 and len(r.content) == 1000, junk


def test_json_bodies_keep_their_limit(server_http: httpx.Client) -> None:
    # The upload limit is 4 MiB; a JSON body over 1 MiB is still refused.
    big = {"file": {"data": base64.b64encode(b"\x00" * (1 << 20)).decode()}}
    r = server_http.put("/documents/json", json=big)
    assert r.status_code == 413


def test_curl_streams_an_upload_to_disk(server: Server, archive: Path, tmp_path: Path) -> None:
    data = os.urandom(6 << 20)  # over the App's 4 MiB, under the method's 8
    path = tmp_path / "photo.raw"
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    url = f"{server.url}/archives/"
    status, _, body = curl("-X", "PUT", "-F", f"upload=@{path};type=image/x-raw", url + "formed")
    assert status == 200, body
    assert json.loads(body) == {"name": "formed", "size": len(data), "sha256": digest,
                                "content_type": "image/x-raw", "filename": "photo.raw"}  # fmt: skip
    status, _, body = curl("-X", "PUT", "--data-binary", f"@{path}",
                           "-H", "Content-Type: image/x-raw", url + "raw")  # fmt: skip
    assert status == 200 and json.loads(body)["sha256"] == digest, body
    assert (archive / "formed").read_bytes() == data == (archive / "raw").read_bytes()
    # Back as a stream from disk: whole, ranged, conditional, HEAD.
    status, headers, body = curl(url + "formed")
    assert status == 200 and body == data and headers["content-length"] == str(len(data))
    status, headers, body = curl("-r", "1000-1999", url + "formed")
    assert status == 206 and body == data[1000:2000]
    assert headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    status, _, _ = curl("-H", f"If-None-Match: {headers['etag']}", url + "formed")
    assert status == 304
    status, headers, _ = curl("-I", url + "formed")  # -I: curl reads no body
    assert status == 200 and headers["content-length"] == str(len(data))
    assert curl(url + "nothing")[0] == 404


def test_a_streamed_upload_over_the_limit_keeps_nothing(
    server: Server, archive: Path, tmp_path: Path
) -> None:
    path = tmp_path / "huge.bin"
    path.write_bytes(b"\x00" * ((8 << 20) + 1))  # over @upload_limit(8 << 20), not the App's
    url = f"{server.url}/archives/huge"
    # Chunked: no Content-Length to refuse up front, so the handler's loop raises.
    for form in (["-F", f"upload=@{path}"], ["--data-binary", f"@{path}"]):
        status, _, body = curl("-X", "PUT", "-H", "Transfer-Encoding: chunked", *form, url)
        assert status == 413 and b"larger than 8388608" in body, body
    assert sorted(p.name for p in archive.iterdir() if "huge" in p.name) == []


def test_the_docs_client_sends_an_archive_from_disk(
    server: Server, archive: Path, tmp_path: Path
) -> None:
    from docs_src.files.client import send_archive

    data = os.urandom(1 << 20)
    path = tmp_path / "backup.tar"
    path.write_bytes(data)
    got = asyncio.run(send_archive(server.url, "backup", path))
    assert got.size == len(data) and got.filename == "backup.tar"
    assert got.content_type == "application/x-tar"
    assert (archive / "backup").read_bytes() == data


def test_the_rest_client_reads_a_download_as_a_file(server: Server, tmp_path: Path) -> None:
    from docs_src.files.app import service
    from docs_src.files.client import send_archive
    from twofold import Client

    data = os.urandom(300_000)
    path = tmp_path / "d.tar"
    path.write_bytes(data)
    asyncio.run(send_archive(server.url, "fetched", path))
    with Client(service, server.url, protocol="rest") as client:
        got = client.get_archive(name="fetched")  # streamed by the server
        assert got.data == data and got.filename == "fetched.bin"
        assert got.content_type == "application/octet-stream" and got.etag.startswith('"')
        # The same method over Connect: the stream gathered into one message.
        with Client(service, server.url, protocol="connect") as connect:
            assert connect.get_archive(name="fetched").data == data
