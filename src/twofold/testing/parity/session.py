"""Reaching every wire of an app: in process, or a server already running.

:func:`serve` starts an App as a test client does (its lifespan, HTTP in
process, native gRPC on an ephemeral 127.0.0.1 port); :func:`connect`
reaches a running server by its URL and gRPC target. Both are async
context managers that give :class:`~twofold.testing.parity.AsyncWires`;
:class:`Wires` is the same for plain ``def test_...`` functions, on an
event loop of its own in a thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx

from twofold.client.rpc import Services
from twofold.core.definition import Service
from twofold.core.table import MethodTable
from twofold.server.app import App
from twofold.testing.lifespan import Lifespan
from twofold.testing.parity.answers import Outcome
from twofold.testing.parity.wires import AsyncWires, Payload
from twofold.testing.transport import AppTransport, Portal

BASE_URL = "http://testserver"


@contextlib.asynccontextmanager
async def serve(
    app: App,
    *,
    url: str | None = None,
    headers: Mapping[str, str] | None = None,
    lifespan: bool = True,
) -> AsyncIterator[AsyncWires]:
    """Every wire of ``app``: its lifespan run (unless ``lifespan=False``), HTTP
    called in process, native gRPC on a :class:`~twofold.GrpcServer` of its
    own on 127.0.0.1. With ``url``, HTTP goes over the network to the server
    that serves ``app`` there, which runs the lifespan itself."""
    async with contextlib.AsyncExitStack() as stack:
        if lifespan and url is None:
            started = Lifespan(app)
            await started.startup()
            stack.push_async_callback(started.shutdown)
        yield await stack.enter_async_context(_serve(app, url, headers))


@contextlib.asynccontextmanager
async def _serve(
    app: App, url: str | None, headers: Mapping[str, str] | None
) -> AsyncIterator[AsyncWires]:
    import grpc

    from twofold.client.stubs import AsyncClient
    from twofold.server.grpc import GrpcServer

    server = GrpcServer(app)
    port = server.add_port("127.0.0.1:0")
    await server.start()
    target = f"127.0.0.1:{port}"

    def client(protocol: str) -> AsyncClient:
        if protocol == "grpc":
            return AsyncClient(app.services, target, protocol="grpc")
        if url is not None:
            return AsyncClient(app.services, url, protocol=protocol)
        return AsyncClient(app.services, app, protocol=protocol, transport=AppTransport(app))

    try:
        transport = AppTransport(app) if url is None else None
        async with (
            httpx.AsyncClient(transport=transport, base_url=url or BASE_URL) as http,
            grpc.aio.insecure_channel(target) as channel,
        ):
            wires = AsyncWires(
                app.table, http, channel, headers=headers, clients=client, grpc_target=target
            )
            try:
                yield wires
            finally:
                await wires.aclose()
    finally:
        await server.stop(None)


@contextlib.asynccontextmanager
async def connect(
    services: Service | Sequence[Service],
    url: str,
    *,
    grpc_target: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,  # noqa: ASYNC109 - each request's, not this block's
) -> AsyncIterator[AsyncWires]:
    """Every wire of a server already running at ``url`` (and ``grpc_target``,
    its native gRPC port: without it, calls on ``grpc`` are unsupported)."""
    import grpc

    from twofold.client.stubs import AsyncClient

    table = MethodTable([services] if isinstance(services, Service) else list(services))
    listed: Services = table.services

    def client(protocol: str) -> AsyncClient:
        if protocol == "grpc":
            if grpc_target is None:
                from twofold.testing.parity.answers import Unsupported

                raise Unsupported("no gRPC target to call")
            return AsyncClient(listed, grpc_target, protocol="grpc", timeout=timeout)
        return AsyncClient(listed, url, protocol=protocol, timeout=timeout)

    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=timeout))
        channel = None
        if grpc_target is not None:
            channel = await stack.enter_async_context(grpc.aio.insecure_channel(grpc_target))
        wires = AsyncWires(
            table, http, channel, headers=headers, clients=client, grpc_target=grpc_target
        )
        try:
            yield wires
        finally:
            await wires.aclose()


class Wires:
    """:class:`AsyncWires` for sync tests: ``with Wires.serve(app) as wires``.

    The app (or the connection to a server) lives on an event loop of its
    own in a thread, as :class:`~twofold.testing.TestClient`'s does; ``call``
    and ``stream`` wait for it there.
    """

    def __init__(self, opened: contextlib.AbstractAsyncContextManager[AsyncWires]) -> None:
        self._opened = opened
        self._portal: Portal | None = None
        self._wires: AsyncWires | None = None

    @classmethod
    def serve(cls, app: App, **options: Any) -> Wires:
        """As :func:`serve`, for sync tests."""
        return cls(serve(app, **options))

    @classmethod
    def connect(cls, services: Service | Sequence[Service], url: str, **options: Any) -> Wires:
        """As :func:`connect`, for sync tests."""
        return cls(connect(services, url, **options))

    @property
    def wires(self) -> AsyncWires:
        if self._wires is None:
            raise AttributeError("enter the Wires first (`with Wires.serve(app) as wires`)")
        return self._wires

    def __enter__(self) -> Wires:
        self._portal = Portal()
        try:
            self._wires = self._portal.call(self._opened.__aenter__())
        except BaseException:
            self._portal.close()
            self._portal = None
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        portal, self._portal, self._wires = self._portal, None, None
        if portal is None:
            return
        try:
            portal.call(self._opened.__aexit__(None, None, None))
        finally:
            portal.close()

    def _run(self, coro: Any) -> Outcome:
        if self._portal is None:
            coro.close()
            raise AttributeError("enter the Wires first (`with Wires.serve(app) as wires`)")
        result: Outcome = self._portal.call(coro)
        return result

    def call(
        self,
        wire: str,
        rpc: str,
        payload: Payload | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Outcome:
        """As :meth:`AsyncWires.call`."""
        return self._run(self.wires.call(wire, rpc, payload, headers))

    def stream(
        self,
        wire: str,
        rpc: str,
        payloads: Sequence[Payload],
        headers: Mapping[str, str] | None = None,
        timeout_ms: int = 500,
    ) -> Outcome:
        """As :meth:`AsyncWires.stream`."""
        return self._run(self.wires.stream(wire, rpc, payloads, headers, timeout_ms))
