"""The ceiling of gRPC on ``twofold serve --server pyvoy``: a constant answer.

Every request is answered as a unary gRPC call that succeeded, with the
bytes the benchmark App's GetProduct sends (headers, one length-prefixed
message, trailers with ``grpc-status: 0``) and no framework at all, so
what it costs is pyvoy's ASGI bridge, Envoy and the supervisor's wrapper
(:class:`twofold.server.envoy_app.Controlled`): the floor under Twofold's
own gRPC path on that server. It reads the request body to its end, as any
gRPC server must before its status, and then answers with the fewest sends
pyvoy allows: a start with ``trailers``, the body (ended), the trailers.

The loader of ``twofold serve`` asks for an App inside what it serves: the
benchmark App is that, and is never called.
"""

from __future__ import annotations

from typing import Any

from bench import wire
from bench.apps import twofold_app
from bench.apps.catalog import PRODUCTS

ANSWER = wire.grpc_frame(wire.product(PRODUCTS[42]))
HEADERS = [(b"content-type", b"application/grpc"), (b"grpc-accept-encoding", b"gzip")]
TRAILERS = [(b"grpc-status", b"0")]


class Constant:
    def __init__(self, app: Any) -> None:
        self.app = app  # found by the loader; the lifespan goes to it

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        while (await receive()).get("more_body", False):
            pass
        await send(
            {"type": "http.response.start", "status": 200, "headers": HEADERS, "trailers": True}
        )
        # pyvoy (1.3) wants the body ended (more_body false) before the trailers.
        await send({"type": "http.response.body", "body": ANSWER, "more_body": False})
        await send({"type": "http.response.trailers", "headers": TRAILERS, "more_trailers": False})


app = Constant(twofold_app.app)
