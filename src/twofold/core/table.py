"""The method table: every method of every service, looked up by name or path."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from twofold.core.asgi import Scope
from twofold.core.chain import Admit, Refused, nobody
from twofold.core.context import Context
from twofold.core.definition import DefinitionError, Service
from twofold.core.errors import Error
from twofold.core.headers import Headers
from twofold.core.method import Method


class MethodTable:
    def __init__(self, services: Iterable[Service]) -> None:
        self.services = list(services)
        self.methods: list[Method] = []
        self.by_path: dict[str, Method] = {}
        # Set by the App: what protocols tell of requests refused before the chain.
        self.refused: Refused = nobody
        # Set by the App when an interceptor has a header-only step: what
        # every protocol runs after routing and before reading the body.
        self.admit: Admit | None = None
        names = set()
        for service in self.services:
            if service.full_name in names:
                raise DefinitionError(f"service {service.full_name} is added twice")
            names.add(service.full_name)
            for method in service.methods.values():
                self.methods.append(method)
                self.by_path[method.path] = method

    async def refuse(self, protocol: str, method: Method, scope: Scope, error: Error) -> None:
        """Tell the observers of an HTTP request refused before the chain ran."""
        headers = Headers(scope["headers"])
        await self.refused(
            Context(protocol, method, headers, scope.get("client"), scope=scope), error
        )

    def __iter__(self) -> Iterator[Method]:
        return iter(self.methods)

    def __len__(self) -> int:
        return len(self.methods)
