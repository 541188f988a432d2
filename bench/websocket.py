"""``python -m bench.websocket``: the JSON-RPC WebSocket connection's own cost per message.

An App's WebSocket endpoint is driven in process, as a server would drive it
(``websocket.connect``, then ``websocket.receive`` messages; a ``send`` that
counts the answers), with no socket: the cost of the connection loop
(:mod:`twofold.wires.websocket_connection`) and the handler's call, per
subscription message and per unary call. ``--instructions`` counts them
exactly instead: the run goes twice under ``valgrind --tool=cachegrind``
(``--messages`` and four times as many), and the difference of the totals
over the difference of the counts is one message, start-up cancelled out.

    python -m bench.websocket
    python -m bench.websocket --instructions
    python -m bench.websocket --instructions --src ../other-tree/src   # compare a tree
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec

from twofold import App, Service

KINDS = ("stream", "unary")


service = Service("bench.v1")


class Tick(msgspec.Struct):
    n: int


@service.procedure
async def ticks(count: int) -> AsyncIterator[Tick]:
    for i in range(count):
        yield Tick(i)


@service.procedure
async def ping(n: int) -> Tick:
    return Tick(n)


def _app() -> App:
    return App([service])


async def _run(app: Any, kind: str, n: int) -> float:
    """CPU seconds to get ``n`` answers of ``kind`` over one connection."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    answered = 0
    done = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        nonlocal answered
        if message["type"] == "websocket.send":
            answered += 1
            if answered == n + 1:  # the stream's id, or one warm-up call, first
                done.set()

    scope = {
        "type": "websocket",
        "path": "/jsonrpc",
        "headers": [],
        "client": ("127.0.0.1", 1),
        "scheme": "ws",
        "subprotocols": [],
        "query_string": b"",
        "asgi": {"version": "3.0"},
    }
    inbox.put_nowait({"type": "websocket.connect"})
    task = asyncio.ensure_future(app(scope, inbox.get, send))
    start = time.process_time()
    if kind == "stream":
        text = f'{{"jsonrpc":"2.0","id":0,"method":"Ticks","params":{{"count":{n}}}}}'
        inbox.put_nowait({"type": "websocket.receive", "text": text})
    else:
        for i in range(n + 1):
            text = f'{{"jsonrpc":"2.0","id":{i},"method":"Ping","params":{{"n":1}}}}'
            inbox.put_nowait({"type": "websocket.receive", "text": text})
    await done.wait()
    elapsed = time.process_time() - start
    inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await task
    return elapsed


def _instructions(kind: str, n: int, src: str | None) -> int:
    """The instruction total of a whole process answering ``n`` messages of ``kind``."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--instructions needs valgrind")
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cachegrind.out"
        cmd = [valgrind, "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}"]
        cmd += [sys.executable, "-m", "bench.websocket", "--once", kind, "--messages", str(n)]
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        match = re.search(r"^summary: (\d+)", out.read_text(), re.M)
        if match is None:
            raise RuntimeError(f"no summary in {out}")
        return int(match.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.websocket", description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--src", help="the twofold source tree to measure (PYTHONPATH first)")
    parser.add_argument("--once", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.once:
        asyncio.run(_run(_app(), args.once, args.messages))
        return 0
    for kind in KINDS:
        if args.instructions:
            small, large = args.messages, 4 * args.messages
            low = _instructions(kind, small, args.src)
            high = _instructions(kind, large, args.src)
            print(f"{kind}: {(high - low) / (large - small):,.0f} instructions per message")
            continue
        app = _app()
        best = min(asyncio.run(_run(app, kind, args.messages)) for _ in range(5))
        print(f"{kind}: {best / args.messages * 1e6:.1f} µs CPU per message (best of 5)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
