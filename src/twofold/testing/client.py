"""Test clients: an App started (its lifespan run) and called in process.

``TestClient`` is for plain ``def test_...`` functions: the app, its
lifespan and its requests run on an event loop of their own in a thread
(:class:`~twofold.testing.transport.Portal`), as Starlette's TestClient
does. ``AsyncTestClient`` runs them on the caller's loop, for async tests.
Both answer every method of the app's services by its Python name, as
:class:`~twofold.Client` does, and hand out ``http``, an httpx client bound
to the app, for raw HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx

from twofold.client.auth import Auth
from twofold.client.base import DEFAULT_RETRY
from twofold.client.retry import Retry
from twofold.client.stubs import AsyncClient, Client
from twofold.server.app import App
from twofold.server.grpc import GrpcServer
from twofold.testing.lifespan import Lifespan
from twofold.testing.transport import AppTransport, Portal, PortalTransport

BASE_URL = "http://testserver"
GRPC = "grpc"


class _Options:
    """What both test clients take and keep until they are entered."""

    def __init__(
        self,
        app: App,
        protocol: str,
        timeout: float | None,
        retry: Retry | None,
        auth: Auth | None,
        headers: Mapping[str, str] | None,
    ) -> None:
        if not isinstance(app, App):
            raise TypeError(f"a test client takes a twofold.App, got {type(app).__name__}")
        self.app = app
        self.protocol = protocol
        self.client_options: dict[str, Any] = {
            "protocol": protocol,
            "timeout": timeout,
            "retry": retry,
            "auth": auth,
            "headers": headers,
        }
        self.headers = dict(headers or {})
        if auth is not None:
            self.headers.update(auth.headers())


async def _grpc_server(app: App) -> tuple[GrpcServer, int]:
    """Five wires are called in process, with no socket. Native gRPC cannot be:
    grpcio speaks HTTP/2 on a socket and nothing else, so ``protocol="grpc"``
    starts the app's :class:`~twofold.GrpcServer` on an ephemeral 127.0.0.1
    port for the life of the client (on the same loop as the lifespan), and
    the client calls it there.
    """
    server = GrpcServer(app)
    port = server.add_port("127.0.0.1:0")
    await server.start()
    return server, port


def _not_entered(name: str) -> AttributeError:
    return AttributeError(f"{name}: enter the test client first (`with TestClient(app) as client`)")


def _method(client: TestClient | AsyncTestClient, name: str) -> Any:
    # Read from __dict__: a property that raises AttributeError (``rpc`` before
    # entering) comes back here, and must not recurse.
    rpc = client.__dict__.get("_rpc")
    if name.startswith("_"):
        raise AttributeError(name)
    if rpc is None:
        raise _not_entered(name)
    return getattr(rpc, name)


class TestClient:
    """A sync client of an App: ``with TestClient(app, protocol="rest") as client``.

    Entering runs the app's lifespan startup (a failing startup raises
    :class:`~twofold.testing.LifespanError` there) and leaving runs its
    shutdown. Inside, ``client.get_product(id=1)`` calls a method over
    ``protocol`` (``"connect"``, ``"connect-proto"``, ``"grpc-web"``,
    ``"rest"``, ``"jsonrpc"`` or ``"grpc"``), ``client.rpc`` is the
    :class:`~twofold.Client` that does it, and ``client.http`` an
    ``httpx.Client`` bound to the app. The other options are the Client's.
    """

    __test__ = False  # a class named Test* that pytest must not collect

    def __init__(
        self,
        app: App,
        *,
        protocol: str = "connect",
        timeout: float | None = None,
        retry: Retry | None = DEFAULT_RETRY,
        auth: Auth | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._options = _Options(app, protocol, timeout, retry, auth, headers)
        self.app = app
        self._portal: Portal | None = None
        self._lifespan: Lifespan | None = None
        self._grpc: GrpcServer | None = None
        self._rpc: Client | None = None
        self._http: httpx.Client | None = None

    @property
    def protocol(self) -> str:
        return self._options.protocol

    @property
    def rpc(self) -> Client:
        """The :class:`~twofold.Client` that calls the app's methods."""
        if self._rpc is None:
            raise _not_entered("rpc")
        return self._rpc

    @property
    def http(self) -> httpx.Client:
        """An ``httpx.Client`` bound to the app, in process: ``client.http.get("/books/1")``."""
        if self._http is None:
            raise _not_entered("http")
        return self._http

    def __getattr__(self, name: str) -> Any:
        return _method(self, name)

    def __dir__(self) -> list[str]:
        methods = dir(self._rpc) if self._rpc is not None else []
        return sorted({*super().__dir__(), *methods})

    def __enter__(self) -> TestClient:
        app, options = self.app, self._options
        self._portal = portal = Portal()
        try:
            lifespan = Lifespan(app)
            portal.call(lifespan.startup())
            self._lifespan = lifespan
            if options.protocol == GRPC:
                self._grpc, port = portal.call(_grpc_server(app))
                target: Any = f"127.0.0.1:{port}"
                self._rpc = Client(app.services, target, **options.client_options)
            else:
                transport = PortalTransport(app, portal)
                self._rpc = Client(app.services, app, transport=transport, **options.client_options)
            self._http = httpx.Client(
                base_url=BASE_URL,
                transport=PortalTransport(app, portal),
                headers=options.headers,
            )
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        self._close()

    def _close(self) -> None:
        portal = self._portal
        if portal is None:
            return
        try:
            if self._rpc is not None:
                self._rpc.close()
            if self._http is not None:
                self._http.close()
            if self._grpc is not None:
                portal.call(self._grpc.stop(None))
            if self._lifespan is not None:
                portal.call(self._lifespan.shutdown())
        finally:
            self._rpc = self._http = self._grpc = self._lifespan = self._portal = None
            portal.close()


class AsyncTestClient:
    """An async client of an App: ``async with AsyncTestClient(app) as client``.

    As :class:`TestClient`, on the caller's event loop: the lifespan, the
    app's handlers and the test share it, so objects made by the test (an
    async database engine) can be handed to the app. ``await
    client.get_product(id=1)``; a stream is ``async for`` over
    ``client.watch(...)``; ``client.http`` is an ``httpx.AsyncClient``.
    """

    def __init__(
        self,
        app: App,
        *,
        protocol: str = "connect",
        timeout: float | None = None,
        retry: Retry | None = DEFAULT_RETRY,
        auth: Auth | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._options = _Options(app, protocol, timeout, retry, auth, headers)
        self.app = app
        self._lifespan: Lifespan | None = None
        self._grpc: GrpcServer | None = None
        self._rpc: AsyncClient | None = None
        self._http: httpx.AsyncClient | None = None

    @property
    def protocol(self) -> str:
        return self._options.protocol

    @property
    def rpc(self) -> AsyncClient:
        """The :class:`~twofold.AsyncClient` that calls the app's methods."""
        if self._rpc is None:
            raise _not_entered("rpc")
        return self._rpc

    @property
    def http(self) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` bound to the app, in process."""
        if self._http is None:
            raise _not_entered("http")
        return self._http

    def __getattr__(self, name: str) -> Any:
        return _method(self, name)

    def __dir__(self) -> list[str]:
        methods = dir(self._rpc) if self._rpc is not None else []
        return sorted({*super().__dir__(), *methods})

    async def __aenter__(self) -> AsyncTestClient:
        app, options = self.app, self._options
        try:
            lifespan = Lifespan(app)
            await lifespan.startup()
            self._lifespan = lifespan
            if options.protocol == GRPC:
                self._grpc, port = await _grpc_server(app)
                target: Any = f"127.0.0.1:{port}"
                self._rpc = AsyncClient(app.services, target, **options.client_options)
            else:
                self._rpc = AsyncClient(
                    app.services, app, transport=AppTransport(app), **options.client_options
                )
            self._http = httpx.AsyncClient(
                base_url=BASE_URL, transport=AppTransport(app), headers=options.headers
            )
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        try:
            if self._rpc is not None:
                await self._rpc.aclose()
            if self._http is not None:
                await self._http.aclose()
            if self._grpc is not None:
                await self._grpc.stop(None)
            if self._lifespan is not None:
                await self._lifespan.shutdown()
        finally:
            self._rpc = self._http = self._grpc = self._lifespan = None
