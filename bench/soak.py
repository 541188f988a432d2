"""``python -m bench.soak --minutes 5``: the catalog under a mixed load for minutes.

Starts the example catalog with ``twofold serve`` (HTTP and native gRPC on
ephemeral 127.0.0.1 ports, a new SQLite database in a temporary directory)
and keeps a few clients busy with what production sees: reads, authenticated
writes (and deletes, so the data stays bounded), WatchPrices streams opened
and dropped before or after their first message, bad inputs, tiny
deadlines, over REST, Connect and native gRPC. The server's RSS is sampled
every second.

At the end it prints the outcomes seen, RSS at the end of the warm-up, at
the end and at most, and whether the server's log holds a ``Traceback``.
The exit status is 1 when RSS grew by more than 10% after the warm-up or a
traceback appeared, 2 when the server died. Not a test: its verdict depends
on the machine's load and the run's length; run it before a release, or
after a change to the request path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import msgspec

from twofold.http.envelope import frame
from twofold.interceptors.bearer import DEVELOPMENT_SECRET, issue

REPO = Path(__file__).resolve().parents[1]
SERVICE = "/catalog.v1.CatalogService/"
GROWTH = 1.10  # RSS may end this much above its post-warm-up level
SCOPES = ["products:write", "users:write", "orders:write", "orders:admin"]
TOKEN = issue(DEVELOPMENT_SECRET, "soak", SCOPES, expires_in=86400)
AUTHORIZATION = {"authorization": f"Bearer {TOKEN}"}
CATEGORY = "soak"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    grpc_target: str
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def rss_kib(self) -> int | None:
        """The server process's resident set, from /proc (None once it is gone)."""
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return None


def start(tmp: Path) -> Server:
    """``twofold serve examples.catalog:app`` on free ports, once it answers."""
    env = {
        **os.environ,
        "CATALOG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'catalog.db'}",
        "CATALOG_PAGE_TOKEN_SECRET": "the soak test's page token secret",
        # The soak measures leaks and crashes, not the write limit.
        "CATALOG_WRITE_RATE": "1000000",
        "CATALOG_WRITE_BURST": "1000000",
    }
    env.pop("CATALOG_JWT_SECRET", None)  # the development secret signs TOKEN
    for attempt in range(3):
        port, grpc_port = free_port(), free_port()
        log = tmp / f"server-{attempt}.log"
        command = [
            sys.executable, "-m", "twofold", "serve", "examples.catalog:app",
            "--host", "127.0.0.1", "--port", str(port), "--grpc-port", str(grpc_port),
            "--no-access-log",
        ]  # fmt: skip
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        server = Server(process, f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}", log)
        for _ in range(400):  # 20 s
            if process.poll() is not None:
                break
            try:
                httpx.get(f"{server.url}/openapi.json", timeout=1.0)
                return server
            except httpx.TransportError:
                time.sleep(0.05)
        server.stop()
    raise SystemExit(f"the catalog did not start; its log:\n{log.read_text(errors='replace')}")


class Grpc:
    """Native gRPC calls to the catalog, coded by the schema derived from its types."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        from examples.catalog import service
        from twofold.protobuf import Schema

        self.service = service
        self.schema = Schema(service)
        self.channel = channel

    def message(self, rpc: str, payload: dict[str, Any]) -> Any:
        return msgspec.convert(payload, self.service.methods[rpc].input_type, strict=False)

    def method(self, rpc: str) -> Any:
        method = self.service.methods[rpc]
        kind = "unary_stream" if method.kind.value == "server" else "unary_unary"
        return getattr(self.channel, kind)(
            method.path,
            request_serializer=self.schema.codec(method.input_type).encode,
            response_deserializer=self.schema.codec(method.output_type).decode,
        )

    def raw(self, rpc: str) -> Any:
        """A method that sends bytes as they are: for messages that do not decode."""
        return self.channel.unary_unary(self.service.methods[rpc].path)


Action = Callable[[], Awaitable[str]]


class Load:
    """The clients' actions; each answers the outcome it saw (a status or a code)."""

    def __init__(
        self, http: httpx.AsyncClient, rpc: Grpc, products: list[int], only: list[str]
    ) -> None:
        self.http = http
        self.rpc = rpc
        self.products = products
        self.rng = random.Random(7)
        self.tally: Counter[str] = Counter()
        self.actions: list[tuple[str, int, Action]] = [
            ("rest read", 20, self.rest_read),
            ("rest list", 5, self.rest_list),
            ("connect read", 10, self.connect_read),
            ("grpc read", 10, self.grpc_read),
            ("rest write", 8, self.rest_write),
            ("connect write", 4, self.connect_write),
            ("grpc write", 4, self.grpc_write),
            ("price change", 6, self.price_change),
            ("sse stream", 4, self.sse_stream),
            ("connect stream", 3, self.connect_stream),
            ("grpc stream", 3, self.grpc_stream),
            ("bad input", 6, self.bad_input),
            ("tiny deadline", 5, self.tiny_deadline),
            ("no credentials", 2, self.no_credentials),
        ]
        if only:
            self.actions = [a for a in self.actions if a[0] in only]

    def product(self) -> int:
        return self.rng.choice(self.products)

    def new_product(self) -> dict[str, Any]:
        cents = self.rng.randrange(100, 100_000)
        return {"name": "Soak lamp", "price": f"{cents // 100}.{cents % 100:02d}", "category": "x"}

    async def rest_read(self) -> str:
        return str((await self.http.get(f"/products/{self.product()}")).status_code)

    async def rest_list(self) -> str:
        r = await self.http.get("/products", params={"page_size": 10, "category": CATEGORY})
        token = r.json().get("next_page_token") if r.status_code == 200 else None
        if token:
            r = await self.http.get(
                "/products", params={"page_size": 10, "page_token": token, "category": CATEGORY}
            )
        return str(r.status_code)

    async def connect_read(self) -> str:
        r = await self.http.post(SERVICE + "GetProduct", json={"id": self.product()})
        return str(r.status_code)

    async def grpc_read(self) -> str:
        get = self.rpc.method("GetProduct")
        return await _code(get(self.rpc.message("GetProduct", {"id": self.product()})))

    async def rest_write(self) -> str:
        headers = dict(AUTHORIZATION)
        if self.rng.random() < 0.3:
            headers["idempotency-key"] = f"soak-{self.rng.getrandbits(64):x}"
        r = await self.http.post("/products", json=self.new_product(), headers=headers)
        if r.status_code != 201:
            return str(r.status_code)
        return str(
            (await self.http.delete(r.headers["location"], headers=AUTHORIZATION)).status_code
        )

    async def connect_write(self) -> str:
        body = {"product": self.new_product()}
        r = await self.http.post(SERVICE + "CreateProduct", json=body, headers=AUTHORIZATION)
        if r.status_code != 200:
            return str(r.status_code)
        made = r.json()["id"]
        r = await self.http.post(
            SERVICE + "DeleteProduct", json={"id": made}, headers=AUTHORIZATION
        )
        return str(r.status_code)

    async def grpc_write(self) -> str:
        metadata = tuple(AUTHORIZATION.items())
        create, delete = self.rpc.method("CreateProduct"), self.rpc.method("DeleteProduct")
        request = self.rpc.message("CreateProduct", {"product": self.new_product()})
        try:
            made = await create(request, metadata=metadata)
            await delete(self.rpc.message("DeleteProduct", {"id": made.id}), metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            return str(exc.code().name)
        return "OK"

    async def price_change(self) -> str:
        cents = self.rng.randrange(100, 10_000)
        price = {"price": f"{cents // 100}.{cents % 100:02d}"}
        r = await self.http.patch(f"/products/{self.product()}", json=price, headers=AUTHORIZATION)
        return str(r.status_code)

    async def sse_stream(self) -> str:
        """A watcher that goes away after a while, often before any change came."""
        params = {"category": CATEGORY}
        async with self.http.stream("GET", "/products:watchPrices", params=params) as r:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.rng.uniform(0.05, 1.5)):
                    async for _ in r.aiter_bytes():
                        pass
            return str(r.status_code)

    async def connect_stream(self) -> str:
        content = frame(json.dumps({"category": CATEGORY}).encode())
        headers = {"content-type": "application/connect+json"}
        try:
            async with asyncio.timeout(self.rng.uniform(0.05, 1.5)):
                path = SERVICE + "WatchPrices"
                async with self.http.stream("POST", path, content=content, headers=headers) as r:
                    async for _ in r.aiter_bytes():
                        pass
                    return str(r.status_code)
        except TimeoutError:
            return "dropped"

    async def grpc_stream(self) -> str:
        call = self.rpc.method("WatchPrices")(
            self.rpc.message("WatchPrices", {"category": CATEGORY})
        )
        try:
            async with asyncio.timeout(self.rng.uniform(0.05, 1.5)):
                async for _ in call:
                    pass
        except TimeoutError:
            call.cancel()
            return "dropped"
        except grpc.aio.AioRpcError as exc:
            return str(exc.code().name)
        return "OK"

    async def bad_input(self) -> str:
        choice = self.rng.randrange(6)
        if choice == 0:  # not JSON
            r = await self.http.post("/products", content=b"{", headers=AUTHORIZATION)
        elif choice == 1:  # a price with fractions of a cent, an unknown field
            bad = {"name": "x", "price": "1.001", "category": "x", "colour": "red"}
            r = await self.http.post("/products", json=bad, headers=AUTHORIZATION)
        elif choice == 2:  # a Connect call in a media type nobody serves
            headers = {"content-type": "text/plain"}
            r = await self.http.post(SERVICE + "GetProduct", content=b"42", headers=headers)
        elif choice == 3:  # an over-large body
            big = b'{"name": "' + b"x" * (1 << 20) + b'"}'
            r = await self.http.post("/products", content=big, headers=AUTHORIZATION)
        elif choice == 4:  # no such path
            r = await self.http.get(f"/nothing/{self.rng.getrandbits(32)}")
        else:  # gRPC bytes that are no message
            return await _code(self.rpc.raw("GetProduct")(b"\xff\xff\xff"))
        return str(r.status_code)

    async def tiny_deadline(self) -> str:
        choice = self.rng.randrange(3)
        if choice == 0:
            headers = {"request-timeout": "0.001"}
            return str(
                (await self.http.get(f"/products/{self.product()}", headers=headers)).status_code
            )
        if choice == 1:
            headers = {**AUTHORIZATION, "connect-timeout-ms": "1"}
            body = {"product": self.new_product()}
            r = await self.http.post(SERVICE + "CreateProduct", json=body, headers=headers)
            return str(r.status_code)
        get = self.rpc.method("GetProduct")
        request = self.rpc.message("GetProduct", {"id": self.product()})
        return await _code(get(request, timeout=0.001))

    async def no_credentials(self) -> str:
        forged = {"authorization": "Bearer x.y.z"} if self.rng.random() < 0.5 else {}
        return str(
            (await self.http.post("/products", json=self.new_product(), headers=forged)).status_code
        )

    async def client(self, until: float) -> None:
        names = [name for name, _, _ in self.actions]
        weights = [weight for _, weight, _ in self.actions]
        actions = {name: action for name, _, action in self.actions}
        while time.monotonic() < until:
            name = self.rng.choices(names, weights)[0]
            try:
                outcome = await asyncio.wait_for(actions[name](), 30)
            except (httpx.TransportError, TimeoutError) as exc:
                outcome = type(exc).__name__
            self.tally[f"{name}: {outcome}"] += 1


async def _code(call: Awaitable[Any]) -> str:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return str(exc.code().name)
    return "OK"


async def sample(server: Server, until: float, samples: list[tuple[float, int]]) -> None:
    start = time.monotonic()
    while time.monotonic() < until:
        rss = server.rss_kib()
        if rss is None:
            return
        samples.append((time.monotonic() - start, rss))
        await asyncio.sleep(1.0)


async def soak(
    server: Server, seconds: float, clients: int, only: list[str]
) -> list[tuple[float, int]]:
    limits = httpx.Limits(max_connections=4 * clients)
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30.0, limits=limits) as http,
        grpc.aio.insecure_channel(server.grpc_target) as channel,
    ):
        products = []
        for i in range(20):
            product = {"name": f"Soak {i}", "price": "10.00", "category": CATEGORY}
            r = await http.post("/products", json=product, headers=AUTHORIZATION)
            r.raise_for_status()
            products.append(int(r.json()["id"]))
        load = Load(http, Grpc(channel), products, only)
        until = time.monotonic() + seconds
        samples: list[tuple[float, int]] = []
        await asyncio.gather(
            sample(server, until, samples), *(load.client(until) for _ in range(clients))
        )
    print("outcomes:")
    for key, count in sorted(load.tally.items()):
        print(f"  {key:<40} {count:>7}")
    return samples


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.soak", description="The catalog under a mixed load for minutes."
    )
    p.add_argument("--minutes", type=float, default=5.0, help="how long the load runs")
    p.add_argument("--clients", type=int, default=4, help="concurrent clients")
    p.add_argument(
        "--warmup", type=float,
        help="seconds before the RSS baseline is taken (default: a fifth of the run, at most 60)",
    )  # fmt: skip
    p.add_argument(
        "--only", action="append", default=[], metavar="ACTION",
        help='only this kind of call ("tiny deadline", "sse stream"...; repeatable)',
    )  # fmt: skip
    args = p.parse_args(argv)
    if args.minutes <= 0 or args.clients < 1:
        p.error("--minutes must be positive and --clients at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    seconds = args.minutes * 60
    warmup = args.warmup if args.warmup is not None else min(60.0, seconds / 5)
    with tempfile.TemporaryDirectory(prefix="twofold-soak-") as tmp:
        server = start(Path(tmp))
        try:
            samples = asyncio.run(soak(server, seconds, args.clients, args.only))
            died = server.process.poll() is not None
        finally:
            server.stop()
        log = server.log.read_text(errors="replace")
    warm = [rss for at, rss in samples if at >= warmup] or [rss for _, rss in samples]
    if not warm:
        print("no RSS sample: the server was gone")
        return 2
    baseline, end, peak = warm[0], warm[-1], max(rss for _, rss in samples)
    growth = end / baseline
    print(f"RSS after warm-up ({warmup:.0f} s): {baseline / 1024:.1f} MiB")
    print(f"RSS at the end: {end / 1024:.1f} MiB ({(growth - 1) * 100:+.1f}%)")
    print(f"RSS at most: {peak / 1024:.1f} MiB; at the start: {samples[0][1] / 1024:.1f} MiB")
    traceback = "Traceback" in log
    print(f"Traceback in the server's log: {'yes' if traceback else 'no'}")
    if traceback:
        at = log.index("Traceback")
        print(log[max(0, at - 300) : at + 3000])
    if died:
        print("the server died during the run")
        return 2
    return 1 if traceback or growth > GROWTH else 0


if __name__ == "__main__":
    sys.exit(main())
