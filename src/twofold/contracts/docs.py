"""The interactive API page: Swagger UI, served by the app itself.

Every file comes from the ``swagger-ui-bundle-v2`` package (Swagger UI 5, the
first major version that renders OpenAPI 3.1), so the page works with no
internet and leaks no request to a CDN. The asset paths carry the Swagger UI
version and a hash of our start-up script, so they can be cached for a year:
an upgrade changes the path, never the bytes behind one.

Every link in the page is relative, so the page still works when a proxy
serves the app under a path prefix.
"""

from __future__ import annotations

import hashlib
import html
import importlib
import logging
import posixpath
from collections.abc import Callable
from functools import cache
from pathlib import Path

from twofold.core.asgi import ASGIApp, Receive, Scope, Send
from twofold.http.body import header, respond
from twofold.http.negotiation import accepts_gzip, compress

logger = logging.getLogger("twofold")

IMMUTABLE = b"public, max-age=31536000, immutable"
JS = b"text/javascript; charset=utf-8"
CSS = b"text/css; charset=utf-8"
HTML = b"text/html; charset=utf-8"
# Script only from here, and no requests but to this origin: the OpenAPI
# document and "Try it out". Swagger UI sets inline styles and draws icons
# from data: URIs.
CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'"
)

# The page's one piece of our own script, a file so that the CSP can forbid
# inline script. validatorUrl is off: the default badge sends the document
# to validator.swagger.io.
INIT_JS = b"""\
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapi,
    domNode: root,
    deepLinking: true,
    displayRequestDuration: true,
    filter: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
"""

# The files the page needs from the package, with their content types.
_VENDORED = {
    "swagger-ui-bundle.js": JS,
    "swagger-ui-bundle.js.map": b"application/json",
    "swagger-ui.css": CSS,
    "swagger-ui.css.map": b"application/json",
    "favicon-32x32.png": b"image/png",
}

PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi="{openapi}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/init.js"></script>
</body>
</html>
"""


class _Asset:
    """One file, read (and gzipped, if text) on first request, then kept."""

    def __init__(self, content_type: bytes, load: Callable[[], bytes]) -> None:
        self.content_type = content_type
        self._load = load
        self._plain: bytes | None = None
        self._gzipped: bytes | None = None

    def body(self, gzip_ok: bool) -> tuple[bytes, bool]:
        if self._plain is None:
            self._plain = self._load()
        if not gzip_ok or self.content_type == b"image/png":
            return self._plain, False
        if self._gzipped is None:
            self._gzipped = compress(self._plain)
        return self._gzipped, True


@cache
def _bundle() -> tuple[str, dict[str, _Asset]]:
    """The version tag of the asset paths, and the assets, shared by every App."""
    package = importlib.import_module("swagger_ui_bundle")
    root = Path(str(package.swagger_ui_path))
    version = root.name.removeprefix("swagger-ui-")
    if not version.split(".")[0].isdigit() or int(version.split(".")[0]) < 5:
        # The old swagger-ui-bundle installs the same module and may have
        # overwritten ours; Swagger UI 4 shows an error for OpenAPI 3.1.
        logger.warning(
            "Swagger UI %s cannot render OpenAPI 3.1: install swagger-ui-bundle-v2", version
        )
    assets = {name: _Asset(ct, (root / name).read_bytes) for name, ct in _VENDORED.items()}
    assets["init.js"] = _Asset(JS, lambda: INIT_JS)
    tag = f"{version}-{hashlib.sha256(INIT_JS).hexdigest()[:8]}"
    return tag, assets


def endpoints(docs_path: str, openapi_path: str, title: str) -> dict[str, ASGIApp]:
    """The page at ``docs_path`` and each of its assets at its own exact path."""
    tag, assets = _bundle()
    base = f"{docs_path.rstrip('/')}/{tag}"
    # Relative to the page's directory: /docs links to "docs/<tag>/..." and
    # "openapi.json", which resolve right under any prefix.
    here = posixpath.dirname(docs_path)
    page = PAGE.format(
        title=html.escape(title),
        assets=html.escape(posixpath.relpath(base, here)),
        openapi=html.escape(posixpath.relpath(openapi_path, here)),
    ).encode()
    out: dict[str, ASGIApp] = {docs_path: _serve(_Asset(HTML, lambda: page), b"no-cache")}
    for name, asset in assets.items():
        out[f"{base}/{name}"] = _serve(asset, IMMUTABLE)
    return out


def _serve(asset: _Asset, cache_control: bytes) -> ASGIApp:
    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        verb = scope["method"]
        if verb not in ("GET", "HEAD"):
            await respond(send, 405, headers=[(b"allow", b"GET, HEAD")])
            return
        body, gzipped = asset.body(accepts_gzip(header(scope, b"accept-encoding")))
        headers = [
            (b"content-type", asset.content_type),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", cache_control),
            (b"vary", b"accept-encoding"),
            (b"x-content-type-options", b"nosniff"),
        ]
        if gzipped:
            headers.append((b"content-encoding", b"gzip"))
        if asset.content_type == HTML:
            headers.append((b"content-security-policy", CSP))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if verb == "HEAD" else body})

    return endpoint
