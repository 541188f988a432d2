"""``protocol="grpc", transport="h2"``: native gRPC with no grpcio on the client side.

Against servers whose HTTP/2 nobody here wrote: ``twofold serve``'s grpcio
port and ``--server pyvoy``'s one port (Envoy), serving tests/e2e/grpc_app.py,
and a plain grpcio server written below; the catalog's errors with details
are in test_grpc_h2_catalog.py. Every kind, full duplex, deadlines,
cancellation the server sees, a message larger than the flow-control windows.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import queue
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import grpc_app
from tests.e2e.grpc_app import Number, Text
from tests.e2e.server import Server, spawn, start
from tests.e2e.test_one_port import self_signed
from twofold import AsyncClient, Client, Code, Error

SERVERS = ["grpcio", "pyvoy"]


@pytest.fixture(scope="module", params=SERVERS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("h2-client")
    if request.param == "pyvoy":
        if importlib.util.find_spec("pyvoy") is None:
            pytest.skip("pyvoy is not installed (pip install twofold[pyvoy])")
        served = start("tests.e2e.grpc_app:app", tmp, None, "--server", "pyvoy")
    else:
        served = start("tests.e2e.grpc_app:app", tmp)
    yield served
    served.stop()


def client(server: Server, **options: object) -> Client:
    return Client(grpc_app.service, server.grpc_target, protocol="grpc", transport="h2", **options)  # type: ignore[arg-type]


def test_every_kind(server: Server) -> None:
    with client(server) as c:
        assert c.echo_metadata(name="x-who", headers={"x-who": "ada"}) == Text("grpc ada")
        assert list(c.count(n=3)) == [Number(0), Number(1), Number(2)]
        assert c.total(iter([Number(1), Number(2), Number(3)])) == Number(6)
        assert list(c.double([Number(1), Number(2)])) == [Number(2), Number(4)]
        # A request of 200 KB: more than one flow-control window of HTTP/2's default.
        assert c.echo_metadata(name="x" * 200_000) == Text("grpc ")
        with pytest.raises(Error) as info:
            list(c.count(n=-2))
        assert (info.value.code, info.value.message) == (Code.OUT_OF_RANGE, "negative count")
        with pytest.raises(Error) as info:
            c.echo_metadata(name="fail")
        assert (info.value.code, info.value.message) == (Code.PERMISSION_DENIED, "no")


def test_bidi_answers_before_the_next_request(server: Server) -> None:
    """Request 2 is only produced once answer 1 has arrived: full duplex or a hang."""
    answers: queue.Queue[Number] = queue.Queue()

    def requests() -> Iterator[Number]:
        yield Number(1)
        first = answers.get(timeout=20)  # a half-duplex client never gets here
        yield Number(first.n + 1)

    with client(server, timeout=30) as c:
        outputs = []
        for output in c.double(requests()):
            outputs.append(output)
            answers.put(output)
    assert outputs == [Number(2), Number(6)]


def test_bidi_async_and_an_error_mid_stream(server: Server) -> None:
    async def main() -> tuple[list[Number], Error]:
        async with AsyncClient(
            grpc_app.service, server.grpc_target, protocol="grpc", transport="h2"
        ) as c:
            got: asyncio.Queue[Number] = asyncio.Queue()

            async def requests() -> object:
                yield Number(1)
                yield Number((await got.get()).n)
                yield Number(-1)

            seen = []
            with pytest.raises(Error) as info:
                async for output in c.double(requests()):
                    seen.append(output)
                    await got.put(output)
            return seen, info.value

    seen, error = asyncio.run(main())
    assert seen == [Number(2), Number(4)]
    assert error.code is Code.INVALID_ARGUMENT


def test_deadline(server: Server) -> None:
    with client(server) as c, pytest.raises(Error) as info:
        c.sleep(seconds=30, timeout=0.5)
    assert info.value.code is Code.DEADLINE_EXCEEDED


def test_cancel_reaches_the_server(server: Server) -> None:
    async def main() -> None:
        async with AsyncClient(
            grpc_app.service, server.grpc_target, protocol="grpc", transport="h2"
        ) as c:
            call = asyncio.ensure_future(c.sleep(seconds=60))
            # Not a timing assertion: wait until the handler runs, then cancel.
            before = server.output().count("sleep cancelled")
            await asyncio.sleep(1)
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await call
            for _ in range(100):
                if server.output().count("sleep cancelled") > before:
                    return
                await asyncio.sleep(0.1)

    asyncio.run(main())
    assert "sleep cancelled" in server.output(), server.output()


def test_many_concurrent_calls(server: Server) -> None:
    async def main() -> list[Text]:
        async with AsyncClient(
            grpc_app.service, server.grpc_target, protocol="grpc", transport="h2"
        ) as c:
            return await asyncio.gather(
                *(c.echo_metadata(name="x-n", headers={"x-n": str(i)}) for i in range(50))
            )

    assert asyncio.run(main()) == [Text(f"grpc {i}") for i in range(50)]


def test_unknown_server_port_is_unavailable() -> None:
    from tests.e2e.server import free_port

    with (
        Client(
            grpc_app.service,
            f"127.0.0.1:{free_port()}",
            protocol="grpc",
            transport="h2",
            retry=None,
        ) as c,
        pytest.raises(Error) as info,
    ):
        c.whoami()
    assert info.value.code is Code.UNAVAILABLE


def test_tls_with_alpn_h2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ``https://`` target: TLS, HTTP/2 by ALPN, the certificate verified
    against SSL_CERT_FILE as httpx would; an unknown certificate is refused."""
    if importlib.util.find_spec("pyvoy") is None:
        pytest.skip("pyvoy is not installed (pip install twofold[pyvoy])")
    cert, key = self_signed(tmp_path)

    def argv(port: int, _: int | None) -> list[str]:
        return [
            sys.executable, "-m", "twofold", "serve", "tests.e2e.grpc_app:app",
            "--server", "pyvoy", "--port", str(port),
            "--tls-cert", str(cert), "--tls-key", str(key),
        ]  # fmt: skip

    served = spawn(argv, tmp_path, tls=cert)
    target = f"https://127.0.0.1:{served.port}"
    try:
        with Client(grpc_app.service, target, protocol="grpc", transport="h2", retry=None) as c:
            with pytest.raises(Error) as info:  # certifi's roots do not know it
                c.whoami()
            assert info.value.code is Code.UNAVAILABLE
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        with Client(grpc_app.service, target, protocol="grpc", transport="h2") as c:
            assert list(c.double([Number(5), Number(6)])) == [Number(10), Number(12)]
    finally:
        served.stop()
