"""The clients: :class:`Client` and :class:`AsyncClient`, over a shared base.

Two layers in each colour. A *stub* (:class:`Stub`, :class:`AsyncStub`)
calls an :class:`~twofold.client.Rpc` with a typed message (``invoke``) or a
method by name (``call``); a generated client module subclasses it and adds
one typed method per RPC. A *client* (:class:`Client`, :class:`AsyncClient`)
is a stub that also answers every method's Python name:
``client.get_product(id=1)``. Those attributes are found at run time, so a
type checker sees ``Callable[..., Any]``; the generated module is where the
types are.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from twofold.client.auth import Auth
from twofold.client.base import DEFAULT_MAX_RESPONSE_SIZE, DEFAULT_RETRY, BaseClient
from twofold.client.errors import Failure
from twofold.client.retry import Retry
from twofold.client.rpc import Rpc, Services
from twofold.client.transports import AsyncHttpTransport, HttpTransport, Target

InputT = TypeVar("InputT")
OutputT = TypeVar("OutputT")
S = TypeVar("S", bound="Stub")
A = TypeVar("A", bound="AsyncStub")


class Stub(BaseClient):
    """A sync client of some methods, over HTTP (httpx) or an in-process ASGI app.

    ``target`` is the server's base URL (``"http://127.0.0.1:8000"``) or an
    ASGI app. ``protocol`` is ``"rest"``, ``"jsonrpc"`` or ``"connect"``.
    ``timeout`` is every call's deadline in seconds (None: no deadline).
    ``transport`` replaces httpx's (``httpx.HTTPTransport(verify=...)``,
    ``httpx.MockTransport(handler)``...).
    """

    def __init__(
        self,
        services: Services,
        target: Target,
        *,
        protocol: str = "connect",
        timeout: float | None = None,
        retry: Retry | None = DEFAULT_RETRY,
        auth: Auth | None = None,
        headers: Mapping[str, str] | None = None,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            services, protocol=protocol, timeout=timeout, retry=retry, auth=auth, headers=headers
        )
        self._transport = HttpTransport(
            target, max_response_size=max_response_size, transport=transport
        )

    def invoke(
        self,
        rpc: Rpc[InputT, OutputT],
        message: InputT,
        *,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> OutputT:
        """Call ``rpc`` with ``message``: the output, or :class:`~twofold.Error`.

        ``timeout`` overrides the client's deadline for this call (retries
        included); ``headers`` are added to this call only.
        """
        message = self._message(rpc, message, {})
        deadline = self._deadline(timeout)
        attempt = 0
        while True:
            attempt += 1
            request = self._prepare(rpc, message, deadline, headers)
            try:
                output: OutputT = self._result(rpc, self._transport.send(request, deadline))
                return output
            except Failure as failure:
                delay = self._delay(rpc, failure, attempt, deadline)
                if delay is None:
                    raise failure.error from None
            time.sleep(delay)

    def call(
        self,
        method: str,
        message: Any = None,
        /,
        *,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> Any:
        """Call a method by RPC name with a message, a dict, or keyword fields."""
        rpc = self._lookup(method)
        request = self._message(rpc, message, fields)
        return self.invoke(rpc, request, timeout=timeout, headers=headers)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self: S) -> S:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        self.close()


class AsyncStub(BaseClient):
    """An async client of some methods; see :class:`Stub` for the options.

    With an ASGI app as ``target`` the calls go to the app in process through
    ``httpx.ASGITransport`` (its lifespan is not run: enter it yourself).
    """

    def __init__(
        self,
        services: Services,
        target: Target,
        *,
        protocol: str = "connect",
        timeout: float | None = None,
        retry: Retry | None = DEFAULT_RETRY,
        auth: Auth | None = None,
        headers: Mapping[str, str] | None = None,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            services, protocol=protocol, timeout=timeout, retry=retry, auth=auth, headers=headers
        )
        self._transport = AsyncHttpTransport(
            target, max_response_size=max_response_size, transport=transport
        )

    async def invoke(
        self,
        rpc: Rpc[InputT, OutputT],
        message: InputT,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the RPC's deadline
        headers: Mapping[str, str] | None = None,
    ) -> OutputT:
        """Call ``rpc`` with ``message``: the output, or :class:`~twofold.Error`."""
        message = self._message(rpc, message, {})
        deadline = self._deadline(timeout)
        attempt = 0
        while True:
            attempt += 1
            request = self._prepare(rpc, message, deadline, headers)
            try:
                output: OutputT = self._result(rpc, await self._transport.send(request, deadline))
                return output
            except Failure as failure:
                delay = self._delay(rpc, failure, attempt, deadline)
                if delay is None:
                    raise failure.error from None
            await asyncio.sleep(delay)

    async def call(
        self,
        method: str,
        message: Any = None,
        /,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the RPC's deadline
        headers: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> Any:
        """Call a method by RPC name with a message, a dict, or keyword fields."""
        rpc = self._lookup(method)
        request = self._message(rpc, message, fields)
        return await self.invoke(rpc, request, timeout=timeout, headers=headers)

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self: A) -> A:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        await self.aclose()


class Client(Stub):
    """A sync client whose attributes are the methods' Python names.

    ``Client(service, "http://127.0.0.1:8000").get_product(id=1)`` returns a
    ``Product``. A method also takes its request message, or a dict, as the
    one positional argument, and ``timeout=`` for its deadline.
    """

    def __getattr__(self, name: str) -> Callable[..., Any]:
        rpc = _find(self, name)

        def method(message: Any = None, /, *, timeout: float | None = None, **fields: Any) -> Any:
            return self.invoke(rpc, self._message(rpc, message, fields), timeout=timeout)

        return _named(method, rpc)

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *(r.python_name for r in self._rpcs)]


class AsyncClient(AsyncStub):
    """An async client whose attributes are the methods' Python names:
    ``await client.get_product(id=1)``."""

    def __getattr__(self, name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        rpc = _find(self, name)

        async def method(
            message: Any = None,
            /,
            *,
            timeout: float | None = None,  # noqa: ASYNC109
            **fields: Any,
        ) -> Any:
            return await self.invoke(rpc, self._message(rpc, message, fields), timeout=timeout)

        return _named(method, rpc)

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *(r.python_name for r in self._rpcs)]


def _find(client: BaseClient, name: str) -> Rpc[Any, Any]:
    # Private names are never methods: this also keeps lookups made before
    # __init__ has run (copy, pickle) from recursing.
    if name.startswith("_"):
        raise AttributeError(name)
    try:
        rpc = client._rpcs.by_python_name(name)
    except LookupError as exc:
        raise AttributeError(str(exc)) from None
    if rpc is None:
        raise AttributeError(f"{type(client).__name__} has no method {name!r}")
    return rpc


F = TypeVar("F", bound=Callable[..., Any])


def _named(fn: F, rpc: Rpc[Any, Any]) -> F:
    fn.__name__ = fn.__qualname__ = rpc.python_name
    fn.__doc__ = f"Call {rpc.full_name}."
    return fn
