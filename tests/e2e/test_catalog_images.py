"""The catalog's product images over ``twofold serve``: uploaded with curl
(multipart and raw), downloaded with ranges and 304, stored in the database
(SQLite, migration 0004), credentials checked before the body is read."""

from __future__ import annotations

import base64
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import Server, start
from twofold.interceptors.bearer import DEVELOPMENT_SECRET, issue

# The smallest PNG there is, near enough: the signature and a few bytes.
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("images")
    env = {"CATALOG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'catalog.db'}"}
    running = start("examples.catalog:app", tmp, env, "--no-grpc")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def auth() -> dict[str, str]:
    token = issue(DEVELOPMENT_SECRET, "1", ["products:write"], expires_in=600)
    return {"authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def product(server: Server, auth: dict[str, str]) -> int:
    new = {"name": "Mug", "price": "9.50", "category": "Kitchen"}
    r = httpx.post(f"{server.url}/products", json=new, headers=auth, timeout=10)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "30", "-w", "\n%{http_code}", *args],
        capture_output=True,
        check=True,
    )


def status_of(done: subprocess.CompletedProcess[bytes]) -> int:
    return int(done.stdout.rsplit(b"\n", 1)[1])


def test_upload_with_curl_then_download_with_ranges(
    server: Server, auth: dict[str, str], product: int, tmp_path: Path
) -> None:
    path = tmp_path / "mug.png"
    path.write_bytes(PNG)
    url = f"{server.url}/products/{product}/image"
    bearer = f"Authorization: {auth['authorization']}"
    done = curl("-X", "PUT", "-H", bearer, "-F", f"image=@{path};type=image/png", url)
    assert status_of(done) == 200, done.stdout
    r = httpx.get(url)
    assert r.status_code == 200 and r.content == PNG
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"] == 'attachment; filename="mug.png"'
    tag = r.headers["etag"]
    assert httpx.get(url, headers={"if-none-match": tag}).status_code == 304
    part = httpx.get(url, headers={"range": "bytes=0-7"})
    assert part.status_code == 206 and part.content == PNG[:8]
    assert httpx.get(url, headers={"range": "bytes=9999-"}).status_code == 416
    # Raw, the media type in Content-Type; the tag follows the bytes.
    done = curl("-X", "PUT", "-H", bearer, "-H", "Content-Type: image/webp",
                "--data-binary", "RIFF0000WEBP", url)  # fmt: skip
    assert status_of(done) == 200
    r = httpx.get(url, headers={"if-none-match": tag})
    assert r.status_code == 200 and r.content == b"RIFF0000WEBP"
    assert r.headers["content-type"] == "image/webp"


def test_the_rpc_wires_carry_the_image(server: Server, auth: dict[str, str], product: int) -> None:
    sent = {
        "id": product,
        "image": {"data": base64.b64encode(PNG).decode(), "contentType": "image/png"},
    }
    r = httpx.post(
        f"{server.url}/catalog.v1.CatalogService/PutProductImage", json=sent, headers=auth
    )
    assert r.status_code == 200, r.text
    r = httpx.post(f"{server.url}/catalog.v1.CatalogService/GetProductImage", json={"id": product})
    assert base64.b64decode(r.json()["data"]) == PNG


def test_refused_uploads_store_nothing(server: Server, auth: dict[str, str]) -> None:
    new = {"name": "Plate", "price": "4.00", "category": "Kitchen"}
    plate = httpx.post(f"{server.url}/products", json=new, headers=auth).json()["id"]
    url = f"{server.url}/products/{plate}/image"
    cases = [
        ({"content-type": "text/plain"}, b"not an image", 400),
        ({"content-type": "multipart/form-data"}, b"--x--", 400),
        ({"content-type": "multipart/form-data; boundary=x"},
         b'--x\r\nContent-Disposition: form-data; name="image"; filename="../up.png"\r\n'
         b"Content-Type: image/png\r\n\r\nPNG\r\n--x--\r\n", 400),
    ]  # fmt: skip
    for headers, body, status in cases:
        r = httpx.put(url, content=body, headers={**auth, **headers})
        assert r.status_code == status, r.text
    assert httpx.put(f"{server.url}/products/999999/image", content=PNG,
                     headers={**auth, "content-type": "image/png"}).status_code == 404  # fmt: skip
    assert httpx.get(url).status_code == 404


def test_credentials_before_the_body(server: Server, product: int) -> None:
    # The anonymous upload says it will send 8 MiB and sends none of it: the
    # answer comes anyway, so the server did not wait to read the body.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            f"PUT /products/{product}/image HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: image/png\r\nContent-Length: 8388608\r\n\r\n".encode()
        )
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    r = httpx.put(f"{server.url}/products/{product}/image", content=b"x",
                  headers={"content-type": "image/png"})  # fmt: skip
    assert r.status_code == 401


def test_an_image_over_8_mib_is_413_and_stores_nothing(
    server: Server, auth: dict[str, str]
) -> None:
    new = {"name": "Poster", "price": "12.00", "category": "Wall"}
    poster = httpx.post(f"{server.url}/products", json=new, headers=auth).json()["id"]
    url = f"{server.url}/products/{poster}/image"

    def chunks() -> Iterator[bytes]:
        yield PNG
        for _ in range(9):  # 9 MiB, chunked: no Content-Length to refuse up front
            yield b"\x00" * (1 << 20)

    r = httpx.put(url, content=chunks(), headers={**auth, "content-type": "image/png"}, timeout=60)
    assert r.status_code == 413 and "larger than 8388608" in r.json()["detail"], r.text
    assert httpx.get(url).status_code == 404


def test_if_match_replaces_only_the_image_it_names(server: Server, auth: dict[str, str]) -> None:
    new = {"name": "Bowl", "price": "6.00", "category": "Kitchen"}
    bowl = httpx.post(f"{server.url}/products", json=new, headers=auth).json()["id"]
    url = f"{server.url}/products/{bowl}/image"
    png = {**auth, "content-type": "image/png"}
    # No image yet: If-Match names none that exists.
    assert httpx.put(url, content=PNG, headers={**png, "if-match": '"abc"'}).status_code == 412
    assert httpx.put(url, content=PNG, headers=png).status_code == 200
    tag = httpx.get(url).headers["etag"]
    r = httpx.put(url, content=PNG + b"1", headers={**png, "if-match": tag})
    assert r.status_code == 200, r.text
    # The tag named the image just replaced: stale now, refused, nothing written.
    r = httpx.put(url, content=PNG + b"2", headers={**png, "if-match": tag})
    assert r.status_code == 412, r.text
    assert httpx.get(url).content == PNG + b"1"
