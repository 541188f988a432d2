"""Health over HTTP: ``/healthz`` (the process answers) and ``/readyz`` (send it traffic).

Liveness is deliberately trivial: a 200 means the event loop runs and the
App routes, nothing more. Checking a database there would make an
orchestrator restart every replica when the database blips, which cures
nothing. Readiness is the one that says "not now":

- before the ASGI lifespan has finished starting (the pool is not open yet);
- from the moment the server is told to stop (SIGTERM), while calls in
  flight finish, so a load balancer takes the replica out before its
  listener goes away;
- while a part the server runs beside the App is not serving (under
  ``twofold serve``, the native gRPC server until its health is SERVING).
"""

from __future__ import annotations

from twofold.core.asgi import ASGIApp, Receive, Scope, Send
from twofold.http.body import respond

TEXT = b"text/plain; charset=utf-8"
NO_STORE = (b"cache-control", b"no-store")


class Readiness:
    """Whether this App should receive traffic, and if not, why not.

    The App owns one :class:`Readiness`; the App's lifespan flips ``started``
    and whoever runs the App (:mod:`twofold.server.serving`) flips the rest.
    Both answers skip the interceptors (no credentials, no rate limit, not
    counted as API calls) and say ``Cache-Control: no-store``: a cached "ready"
    is a lie a proxy tells on the server's behalf.
    """

    def __init__(self) -> None:
        self.started = False
        self.draining = False
        self._parts: dict[str, bool] = {}

    def require(self, part: str) -> None:
        """Count ``part`` (say ``"grpc"``) as not ready until :meth:`set` says it is."""
        self._parts[part] = False

    def set(self, part: str, ready: bool) -> None:
        self._parts[part] = ready

    def drain(self) -> None:
        """Stopping: not ready from now on, whatever else says."""
        self.draining = True

    @property
    def ready(self) -> bool:
        return self.started and not self.draining and all(self._parts.values())

    def reasons(self) -> list[str]:
        """Why not ready, in the order an operator would look; empty when ready."""
        reasons = []
        if self.draining:
            reasons.append("draining")
        elif not self.started:
            reasons.append("starting")
        reasons.extend(f"{part} not serving" for part, ok in self._parts.items() if not ok)
        return reasons


def endpoints(healthz: str | None, readyz: str | None, readiness: Readiness) -> dict[str, ASGIApp]:
    """The exact-path endpoints answering ``healthz`` and ``readyz`` (None: not served)."""

    async def alive(scope: Scope, receive: Receive, send: Send) -> None:
        await _answer(scope, send, 200, b"ok\n")

    async def ready(scope: Scope, receive: Receive, send: Send) -> None:
        reasons = readiness.reasons()
        if reasons:
            await _answer(scope, send, 503, f"not ready: {', '.join(reasons)}\n".encode())
        else:
            await _answer(scope, send, 200, b"ready\n")

    served: dict[str, ASGIApp] = {}
    if healthz:
        served[healthz] = alive
    if readyz:
        served[readyz] = ready
    return served


async def _answer(scope: Scope, send: Send, status: int, body: bytes) -> None:
    verb = scope["method"]
    if verb not in ("GET", "HEAD"):
        await respond(send, 405, headers=[(b"allow", b"GET, HEAD"), NO_STORE])
        return
    # HEAD: the same status and length as GET, no body; a prober need not read one.
    headers = [(b"content-type", TEXT), NO_STORE, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body if verb == "GET" else b""})


def openapi_paths(healthz: str | None, readyz: str | None) -> dict[str, object]:
    """The two paths as OpenAPI path items, for an App that asks to document them."""
    text = {"text/plain": {"schema": {"type": "string"}}}

    def item(operation_id: str, summary: str, unavailable: str | None) -> dict[str, object]:
        responses: dict[str, object] = {"200": {"description": "OK", "content": text}}
        if unavailable:
            responses["503"] = {"description": unavailable, "content": text}
        return {
            "get": {
                "operationId": operation_id,
                "summary": summary,
                "tags": ["health"],
                "security": [],
                "responses": responses,
            }
        }

    paths: dict[str, object] = {}
    if healthz:
        paths[healthz] = item("healthz", "Liveness: the process answers", None)
    if readyz:
        paths[readyz] = item(
            "readyz",
            "Readiness: send this instance traffic",
            "Not ready: starting, draining after SIGTERM, or a part not serving",
        )
    return paths
