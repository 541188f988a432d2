"""What a method declares beside its types: who may call it, how long it may run, how
its answers may be cached.

These are values of the definition (``@requires``, ``@public``, ``@timeout``,
``cache=Cache(...)``); the interceptors and the HTTP wires that enforce them
(:mod:`twofold.interceptors.auth`, :mod:`twofold.interceptors.limits`,
:mod:`twofold.http.caching`) read them from the method.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from twofold.core.declarations import declare

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Identity:
    """Who made a call: ``ctx.identity`` in a handler."""

    subject: str
    scopes: frozenset[str] = frozenset()
    # "bearer" or "api_key": which scheme proved it.
    scheme: str = "bearer"
    # The verified token claims (empty for an API key).
    claims: Mapping[str, Any] = field(default_factory=dict)

    def has_scopes(self, scopes: Iterable[str]) -> bool:
        return all(scope in self.scopes for scope in scopes)


# A custom authorization test: True lets the call through, False is PERMISSION_DENIED.
Check = Callable[[Identity, Any], "bool | Awaitable[bool]"]


@dataclass(frozen=True, slots=True)
class Requirement:
    """What a method asks of its caller."""

    public: bool = False
    scopes: tuple[str, ...] = ()
    check: Check | None = None


PUBLIC = Requirement(public=True)
AUTHENTICATED = Requirement()


def requires(*scopes: str, check: Check | None = None) -> Callable[[F], F]:
    """Declare that a handler needs an identity with every one of ``scopes``.

    It may sit above or under the method decorator (:mod:`twofold.core.declarations`).
    ``check(identity, request)`` may refuse a call the scopes allow.
    """
    requirement = Requirement(scopes=tuple(scopes), check=check)
    shown = ", ".join([*(repr(s) for s in scopes), *(["check=..."] if check else [])])

    def decorate(fn: F) -> F:
        declare(fn, "security", requirement, f"@requires({shown})")
        return fn

    return decorate


def public(fn: F) -> F:
    """Declare that anyone may call a handler, whatever its service's default."""
    declare(fn, "security", PUBLIC, "@public")
    return fn


# The longest timeout a client may ask for; longer is a mistake, not a wish.
MAX_TIMEOUT = 24 * 3600.0


def timeout(seconds: float) -> Callable[[F], F]:
    """Declare a handler's server-side timeout (above or under the method decorator)."""
    if not 0 < seconds <= MAX_TIMEOUT:
        raise ValueError(f"a timeout must be in (0, {MAX_TIMEOUT:g}] seconds")

    def decorate(fn: F) -> F:
        declare(fn, "timeout", float(seconds), f"@timeout({seconds!r})")
        return fn

    return decorate


def upload_limit(size: int) -> Callable[[F], F]:
    """Declare the largest file a method's REST upload takes, in bytes, in
    place of ``Options.max_upload_size`` (above or under the method decorator).

    For the one method that takes archives while the rest of the App keeps a
    small limit; a :class:`~twofold.File` is held whole, so raise it for an
    :class:`~twofold.Upload` rather than for one of those.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError("an upload limit is a positive number of bytes")

    def decorate(fn: F) -> F:
        declare(fn, "upload_limit", size, f"@upload_limit({size!r})")
        return fn

    return decorate


def lifetime(seconds: float) -> Callable[[F], F]:
    """Declare a long-lived stream's lifetime (under the method decorator).

    For a server or bidi stream that follows events and has no end of its
    own (a subscription): it has no server-side deadline (neither
    ``@timeout`` nor ``Deadlines(default=...)`` applies), and ends cleanly
    (OK) after ``seconds`` at most, less up to
    :data:`~twofold.interceptors.limits.LIFETIME_JITTER` of them so that
    streams opened together do not all reconnect together.
    The client reconnects then; its own deadline, if it sent one, still
    applies. A bound, not a deadline: no stream lives forever, so neither
    does a slot of the stream budget (:class:`~twofold.ConcurrencyLimit`).
    """
    if not 0 < seconds <= MAX_TIMEOUT:
        raise ValueError(f"a lifetime must be in (0, {MAX_TIMEOUT:g}] seconds")

    def decorate(fn: F) -> F:
        declare(fn, "lifetime", float(seconds), f"@lifetime({seconds!r})")
        return fn

    return decorate


@dataclass(frozen=True, slots=True)
class Resume:
    """How a server stream picks up where a client left it (:func:`resumable`)."""

    event_id: str
    """The output field whose value is each message's event id."""
    after: str
    """The request field that receives the last event id a client saw."""


def resumable(event_id: str, *, after: str) -> Callable[[F], F]:
    """Declare that a server stream can resume (under or above the method decorator).

    Each output message's ``event_id`` field is its id; a client that comes
    back with the last id it saw (SSE's ``Last-Event-ID``) calls the method
    with that id in the request field ``after``, and the handler sends what
    came after it. Over RPC wires a client sets ``after`` itself. The App
    checks both fields exist and that the method is a server stream.
    """
    resume = Resume(event_id, after)

    def decorate(fn: F) -> F:
        declare(fn, "resume", resume, f"@resumable({event_id!r}, after={after!r})")
        return fn

    return decorate


# A create whose request has this field is idempotent by key: REST fills it
# from the Idempotency-Key header, RPC callers send it as a field.
KEY_FIELD = "idempotency_key"

NO_CACHE = b"no-cache"
NO_STORE = b"no-store"


@dataclass(frozen=True, slots=True)
class Cache:
    """How shared and private caches may keep a method's successful answers.

    ``max_age`` is seconds of freshness (None: revalidate every time);
    ``public`` lets shared caches (proxies, CDNs) keep answers to requests
    that carried ``Authorization``; ``private`` keeps them out of shared
    caches altogether; ``no_store`` forbids keeping them anywhere. ``vary``
    names request headers the answer depends on beyond those the framework
    adds itself (``Accept-Encoding``).
    """

    max_age: int | None = None
    public: bool = False
    private: bool = False
    no_store: bool = False
    vary: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_age is not None and self.max_age < 0:
            raise ValueError("Cache(max_age=...) must not be negative")
        if self.public and self.private:
            raise ValueError("a Cache cannot be both public and private")

    @property
    def header(self) -> bytes:
        """The ``Cache-Control`` value: ``public, max-age=60``."""
        if self.no_store:
            return NO_STORE
        parts = ["public" if self.public else "private" if self.private else ""]
        parts.append("no-cache" if self.max_age is None else f"max-age={self.max_age}")
        return ", ".join(p for p in parts if p).encode()
