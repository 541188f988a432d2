"""``python -m bench.inprocess``: each case's app cost in-process, with no server and no socket.

Every app is called as uvicorn would call it (the same scope, one
``http.request`` message, a ``send`` that keeps the messages), in a loop on
one uvloop event loop, timed in CPU time. What is left is the framework's own cost per request:
routing, decoding, the handler, encoding, and the ASGI messages. It is far
steadier than a load test on a shared machine, so it is the tool for
measuring a change to the hot path; ``--profile`` shows where the time goes.

    python -m bench.inprocess                     # every case, every server
    python -m bench.inprocess rest-get --profile  # cProfile of twofold on rest-get
    python -m bench.inprocess grpc-get            # the App's gRPC wire, as pyvoy calls it

gRPC cases are called as pyvoy calls the App behind ``twofold serve
--server pyvoy`` (:class:`twofold.server.envoy_app.Controlled` around it,
an HTTP/2 scope with the trailers extension, and a ``receive`` that, once
the body is read, answers ``http.disconnect`` only when the response is
complete, as ASGI 2.4 says), beside the constant answer
(bench/apps/grpc_constant.py), the floor of any app there.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bench import stubs
from bench.apps.catalog import STUBS_ENV, load_module, peers_dir
from bench.cases import CASES, PYVOY_CONSTANT, TWOFOLD_PYVOY, Case, Request, Server

Message = dict[str, Any]
ASGIApp = Callable[[dict[str, Any], Any, Any], Coroutine[Any, Any, None]]


def load_app(server: Server) -> ASGIApp:
    """Import a server's ASGI app into this process (as pyvoy's when served so)."""
    if server.argv and "pyvoy" in server.argv:
        from twofold.server.envoy_app import Controlled
        from twofold.server.loader import load_served

        served, inner = load_served(server.app)
        return Controlled(served, inner.readiness)
    if server.name == "connectrpc" and STUBS_ENV not in os.environ:
        os.environ[STUBS_ENV] = str(stubs.generate(peers_dir(), Path(tempfile.mkdtemp()) / "stubs"))
    module, _, attr = server.app.partition(":")
    if server.app_dir == "repo":
        import importlib

        return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
    saved = list(sys.path)  # the peer apps put their directory first: it has a bench.py
    try:
        return getattr(load_module(module, peers_dir() / "apps" / f"{module}.py"), attr)  # type: ignore[no-any-return]
    finally:
        sys.path[:] = saved


def scope_for(case: Case) -> tuple[dict[str, Any], bytes]:
    """uvicorn's (httptools) scope for the case's request, with wrk's request headers."""
    req = case.request
    headers = [(b"host", b"127.0.0.1:8000")]
    headers += [(k.lower().encode(), v.encode()) for k, v in req.headers]
    if req.method != "GET":
        headers.append((b"content-length", str(len(req.body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "root_path": "",
        "headers": headers,
        "state": {},
        "method": req.method,
        "path": req.path,
        "raw_path": req.path.encode(),
        "query_string": b"",
    }
    return scope, req.body


def grpc_scope(case: Case) -> tuple[dict[str, Any], bytes]:
    """pyvoy's scope for the case's gRPC request (HTTP/2, with trailers)."""
    scope, body = scope_for(case)
    scope["http_version"] = "2"
    scope["extensions"] = {"http.response.trailers": {}}
    scope["asgi"] = {"version": "3.0", "spec_version": "2.4"}
    scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
    return scope, body


async def call(app: ASGIApp, scope: dict[str, Any], body: bytes) -> list[Message]:
    """One request through ``app``; the messages it sent."""
    sent: list[Message] = []
    request: Message = {"type": "http.request", "body": body, "more_body": False}
    if scope["http_version"] == "2":
        # Once the body is read, a receive waits for the end of the response.
        done = asyncio.get_running_loop().create_future()
        read = False

        async def receive() -> Message:
            nonlocal read
            if not read:
                read = True
                return request
            await done
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)
            if message["type"] == "http.response.trailers" and not done.done():
                done.set_result(None)

        await app({**scope, "state": {}}, receive, send)
        if not done.done():
            done.set_result(None)
        await asyncio.sleep(0)  # let a task still waiting on receive see the end
        return sent

    async def receive_one() -> Message:
        return request

    async def send_one(message: Message) -> None:
        sent.append(message)

    await app({**scope, "state": {}}, receive_one, send_one)
    return sent


async def timed(app: ASGIApp, scope: dict[str, Any], body: bytes, n: int) -> float:
    """CPU seconds per request over ``n`` requests.

    CPU time, not wall time: on a shared machine other processes take turns
    on our core, and wall time would count their turns as ours.
    """
    t0 = time.thread_time()
    for _ in range(n):
        await call(app, scope, body)
    return (time.thread_time() - t0) / n


async def _lifespan(app: ASGIApp) -> Callable[[], Coroutine[Any, Any, None]]:
    """Run the app's startup; return a coroutine function that shuts it down."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    task = asyncio.create_task(app({"type": "lifespan", "state": {}}, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    await outbox.get()

    async def shutdown() -> None:
        await inbox.put({"type": "lifespan.shutdown"})
        await task

    return shutdown


async def measure(case: Case, server: Server, n: int, repeat: int) -> float:
    """Best of ``repeat`` loops of ``n`` requests, in µs per request."""
    app = load_app(server)
    shutdown = await _lifespan(app)
    scope, body = grpc_scope(case) if case.tool == "h2load" else scope_for(case)
    sent = await call(app, scope, body)
    status = sent[0].get("status")
    if status not in (200, 201):
        raise RuntimeError(f"{server.name} answered {status}: {sent[-1].get('body', b'')[:200]!r}")
    await timed(app, scope, body, n // 5)  # warm-up
    best = min([await timed(app, scope, body, n) for _ in range(repeat)])
    await shutdown()
    return best * 1e6


async def profile(case: Case, server: Server, n: int, top: int) -> None:
    app = load_app(server)
    shutdown = await _lifespan(app)
    scope, body = grpc_scope(case) if case.tool == "h2load" else scope_for(case)
    await timed(app, scope, body, n // 5)
    prof = cProfile.Profile()
    prof.enable()
    await timed(app, scope, body, n)
    prof.disable()
    await shutdown()
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.inprocess", description=__doc__.split("\n")[0]
    )
    p.add_argument("cases", nargs="*", help=f"any of {', '.join(CASES)} (all)")
    p.add_argument("-n", type=int, default=20000, help="requests per timing loop")
    p.add_argument("--repeat", type=int, default=5, help="loops; the best one counts")
    p.add_argument("--servers", help="only these servers, comma-separated")
    p.add_argument("--profile", action="store_true", help="cProfile twofold instead of timing")
    p.add_argument("--top", type=int, default=30, help="functions shown with --profile")
    args = p.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    keep = set(args.servers.split(",")) if args.servers else None
    seen: set[Request] = set()  # grpc-get-one-port is grpc-get's call, in process
    for name in args.cases or list(CASES):
        case = CASES[name]
        servers = case.servers
        if case.tool == "h2load":  # gRPC: the App's wire as pyvoy serves it
            servers = (TWOFOLD_PYVOY, PYVOY_CONSTANT)
            if case.request in seen:
                continue
            seen.add(case.request)
        if args.profile:
            print(f"== {name}: cProfile of twofold, {args.n} requests")
            asyncio.run(profile(case, servers[0], args.n, args.top))
            continue
        results: dict[str, float] = {}
        for server in servers:
            if keep is not None and server.name not in keep:
                continue
            try:
                results[server.name] = asyncio.run(measure(case, server, args.n, args.repeat))
            except Exception as exc:  # a server that cannot answer yet: say so, go on
                print(f"{name:<20} {server.name:<11} not measured: {exc}")
                continue
            line = f"{name:<20} {server.name:<14} {results[server.name]:8.1f} µs/req"
            ours = servers[0].name
            if server.name != ours and ours in results:
                line += f"   {ours} is {results[server.name] / results[ours]:.2f}x faster"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
