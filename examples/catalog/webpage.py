"""The catalog's web page at ``/ui``: static files from ``ui/``, no CDN.

``ui/app.js`` is built from ``ui/src`` by ``scripts/build-ui`` and committed,
so serving the page needs no Node (docs/ui.md).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from twofold.core.asgi import ASGIApp, Receive, Scope, Send

UI = Path(__file__).parent / "ui"
PREFIX = "/ui"
FILES = {
    "": ("page.html", b"text/html; charset=utf-8"),
    "/": ("page.html", b"text/html; charset=utf-8"),
    "/app.js": ("app.js", b"text/javascript; charset=utf-8"),
    "/style.css": ("style.css", b"text/css; charset=utf-8"),
    "/favicon.svg": ("favicon.svg", b"image/svg+xml"),
}
# Everything the page loads comes from this origin, and no inline script or
# style runs: an injected tag would be refused by the browser.
POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class WebPage:
    """ASGI middleware: ``GET /ui`` and its files, every other request to ``app``.

    The files are read once, when the App is built; each answer carries a
    strong ETag and ``Cache-Control: no-cache``, so a browser revalidates and
    gets 304 until the catalog is upgraded.
    """

    def __init__(self, app: ASGIApp, directory: Path = UI) -> None:
        self.app = app
        self.files: dict[str, tuple[bytes, bytes, bytes]] = {}
        for suffix, (name, media_type) in FILES.items():
            body = (directory / name).read_bytes()
            tag = b'"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"'
            self.files[PREFIX + suffix] = (body, media_type, tag)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self.files.get(scope["path"]) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        body, media_type, tag = found
        headers = [
            (b"content-security-policy", POLICY),
            (b"x-content-type-options", b"nosniff"),
            (b"cache-control", b"no-cache"),
            (b"etag", tag),
        ]
        if scope["method"] not in ("GET", "HEAD"):
            headers.append((b"allow", b"GET, HEAD"))
            await _answer(send, 405, headers, b"")
            return
        if tag in _request_tags(scope):
            await _answer(send, 304, headers, b"")
            return
        headers.append((b"content-type", media_type))
        await _answer(send, 200, headers, b"" if scope["method"] == "HEAD" else body, len(body))


def _request_tags(scope: Scope) -> list[bytes]:
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            return [t.strip() for t in value.split(b",")]
    return []


async def _answer(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes, length: int = 0
) -> None:
    if status == 200:
        headers.append((b"content-length", b"%d" % length))
    elif status == 405:
        headers.append((b"content-length", b"0"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
