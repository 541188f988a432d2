"""The method table: one entry per RPC, whatever protocol will carry it.

A :class:`Method` is what the definition layer produces and what every
protocol consumes. It holds types and policies, never wire formats.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from twofold.core.context import Context
    from twofold.core.policy import Cache, Requirement, Resume

# What the core calls: the handler adapted to (request message, context).
Handler = Callable[[Any, "Context"], Awaitable[Any]]


class Idempotency(enum.Enum):
    """How safe a method is to repeat (protobuf's ``idempotency_level``)."""

    UNKNOWN = "unknown"
    """May have side effects; never retried automatically."""
    NO_SIDE_EFFECTS = "no_side_effects"
    """A read: cacheable, reachable by HTTP GET over Connect."""
    IDEMPOTENT = "idempotent"
    """Repeating it has the same effect as doing it once (PUT, DELETE)."""


class StreamKind(enum.Enum):
    UNARY = "unary"
    SERVER = "server"
    CLIENT = "client"
    BIDI = "bidi"


class Empty(msgspec.Struct, frozen=True):
    """The message of a method that takes or returns nothing (google.protobuf.Empty)."""


@dataclass(frozen=True, slots=True)
class HttpBinding:
    """A REST binding in the manner of google.api.http.

    ``body`` is None (no body: every non-path field comes from the query),
    ``"*"`` (every non-path field comes from the JSON body) or the name of the
    one request field the body is decoded into.
    """

    verb: str
    path: str
    body: str | None = None
    status: int = 200
    # Build a Location header from this item path template on success (create).
    location: str | None = None
    # Name of the output attribute whose value fills the last path variable of
    # ``location``.
    location_field: str = "id"

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(_path_params(self.path))


def _path_params(template: str) -> Iterator[str]:
    start = template.find("{")
    while start != -1:
        end = template.index("}", start)
        yield template[start + 1 : end]
        start = template.find("{", end)


@dataclass(eq=False, slots=True)
class Method:
    """One RPC: its names, message types, streaming kind and policies."""

    service: str
    name: str
    input_type: type[Any]
    output_type: type[Any]
    handler: Handler
    python_name: str = ""
    kind: StreamKind = StreamKind.UNARY
    idempotency: Idempotency = Idempotency.UNKNOWN
    http: HttpBinding | None = None
    summary: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    # The collection path of the resource that declared it ("/products"), or ""
    # for a procedure.
    resource: str = ""
    # How caches may keep its answers (twofold.http.caching); None: the safe default.
    cache: Cache | None = None
    # Who may call it (twofold.interceptors.auth); None: anyone, as a method declaring nothing.
    security: Requirement | None = None
    # Its server-side timeout in seconds (twofold.interceptors.limits.timeout), or None.
    timeout: float | None = None
    # A long-lived stream's lifetime in seconds (twofold.interceptors.limits.lifetime): no
    # server-side deadline, a clean end when it is over. None: an ordinary call.
    lifetime: float | None = None
    # The types of the handler's ``Provided[T]`` parameters (twofold.core.dependencies),
    # which ``handler`` takes after the context, in this order. Only an App can call it.
    dependencies: tuple[Any, ...] = ()
    # How a server stream resumes (twofold.core.policy.resumable); None: it cannot.
    resume: Resume | None = None
    # The largest REST upload it takes (twofold.core.policy.upload_limit); None: the App's.
    upload_limit: int | None = None
    # Set by the App when it composes interceptors around ``handler``.
    call: Handler = field(init=False)

    def __post_init__(self) -> None:
        self.call = self.handler if not self.dependencies else _unprovided

    @property
    def full_name(self) -> str:
        """``catalog.v1.CatalogService/GetProduct``: gRPC's and JSON-RPC's qualified name.

        :data:`UNKNOWN` has no service: its name alone.
        """
        return f"{self.service}/{self.name}" if self.service else self.name

    @property
    def path(self) -> str:
        """The RPC path Connect, gRPC and gRPC-Web use."""
        return f"/{self.service}/{self.name}"

    @property
    def returns_empty(self) -> bool:
        return self.output_type is Empty


async def _unprovided(request: Any, ctx: Context) -> Any:
    raise AssertionError("a method with dependencies is called through the App that provides them")


async def _unknown(request: Any, ctx: Context) -> Any:
    raise AssertionError("UNKNOWN stands for a method that does not exist: never called")


# What the context of a request for no known method names (an unknown JSON-RPC
# method, a path no route matches): "_OTHER", as OpenTelemetry's conventions
# name a method outside the known set, which also keeps metric labels bounded.
UNKNOWN = Method("", "_OTHER", Empty, Empty, _unknown)
