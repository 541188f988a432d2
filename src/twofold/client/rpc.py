"""What a client knows about a method: names, message types and policies, no handler.

A :class:`Rpc` is the client-side twin of :class:`~twofold.core.method.Method`. The
dynamic clients build them from a :class:`~twofold.Service`; a generated client
module declares them itself, so that it needs none of the server's code.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

from twofold.core.definition import Service
from twofold.core.method import HttpBinding, Idempotency, Method, StreamKind
from twofold.core.naming import snake

InputT = TypeVar("InputT")
OutputT = TypeVar("OutputT")


@dataclass(frozen=True, slots=True)
class Rpc(Generic[InputT, OutputT]):
    """One method as a client calls it: ``Rpc[GetProductRequest, Product]``."""

    service: str
    """The service's full name, ``catalog.v1.CatalogService``."""
    name: str
    """The RPC name, ``GetProduct``."""
    input_type: type[InputT]
    output_type: type[OutputT]
    python_name: str = ""
    idempotency: Idempotency = Idempotency.UNKNOWN
    http: HttpBinding | None = None
    kind: StreamKind = StreamKind.UNARY

    @classmethod
    def from_method(cls, method: Method) -> Rpc[Any, Any]:
        return Rpc(
            method.service,
            method.name,
            method.input_type,
            method.output_type,
            method.python_name or snake(method.name),
            method.idempotency,
            method.http,
            method.kind,
        )

    @property
    def full_name(self) -> str:
        """``catalog.v1.CatalogService/GetProduct``: unambiguous across services."""
        return f"{self.service}/{self.name}"

    @property
    def path(self) -> str:
        """The RPC path Connect, gRPC and gRPC-Web use."""
        return f"/{self.service}/{self.name}"

    @property
    def retry_safe(self) -> bool:
        """True when repeating the call cannot do harm: reads and idempotent writes."""
        return self.idempotency is not Idempotency.UNKNOWN


Services: TypeAlias = Service | Method | Rpc[Any, Any] | Iterable[Service | Method | Rpc[Any, Any]]
"""What a client is built from: services, single methods, or a generated module's Rpcs."""


class RpcTable:
    """The methods a client can call, by RPC name, qualified name and Python name."""

    def __init__(self, services: Services) -> None:
        self.services: list[Service] = []
        """The services given whole: their lock files number the protobuf fields."""
        self.rpcs: list[Rpc[Any, Any]] = list(_flatten(services, self.services))
        if not self.rpcs:
            raise ValueError("a client needs at least one method to call")
        self._by_name: dict[str, Rpc[Any, Any] | None] = {}
        self._by_python_name: dict[str, Rpc[Any, Any] | None] = {}
        for rpc in self.rpcs:
            if rpc.full_name in self._by_name:
                raise ValueError(f"{rpc.full_name} is given twice")
            self._by_name[rpc.full_name] = rpc
            # A short name two services share is ambiguous: None marks it.
            short = rpc.name
            self._by_name[short] = None if short in self._by_name else rpc
            py = rpc.python_name or snake(rpc.name)
            self._by_python_name[py] = None if py in self._by_python_name else rpc

    def __iter__(self) -> Iterator[Rpc[Any, Any]]:
        return iter(self.rpcs)

    def get(self, name: str) -> Rpc[Any, Any]:
        """By ``GetProduct`` or ``catalog.v1.CatalogService/GetProduct``."""
        if name not in self._by_name:
            raise LookupError(f"no method {name!r}; known: {', '.join(self.names())}")
        rpc = self._by_name[name]
        if rpc is None:
            raise LookupError(f"{name!r} is defined by several services: {self._choices(name)}")
        return rpc

    def by_python_name(self, name: str) -> Rpc[Any, Any] | None:
        """By ``get_product``; None when no method has that name."""
        if name not in self._by_python_name:
            return None
        rpc = self._by_python_name[name]
        if rpc is None:
            raise LookupError(f"{name!r} is defined by several services: {self._choices(name)}")
        return rpc

    def names(self) -> list[str]:
        return sorted({r.name for r in self.rpcs})

    def _choices(self, name: str) -> str:
        found = [r.full_name for r in self.rpcs if name in (r.name, r.python_name)]
        return "call one of " + ", ".join(found)


def _flatten(services: Services, whole: list[Service]) -> Iterator[Rpc[Any, Any]]:
    items = [services] if isinstance(services, Service | Method | Rpc) else services
    for item in items:
        if isinstance(item, Rpc):
            yield item
        elif isinstance(item, Method):
            yield Rpc.from_method(item)
        elif isinstance(item, Service):
            whole.append(item)
            yield from (Rpc.from_method(m) for m in item.methods.values())
        else:
            raise TypeError(f"expected a Service, a Method or an Rpc, got {type(item).__name__}")
