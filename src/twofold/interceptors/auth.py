"""Who may call a method: identities, requirements, and the interceptor that checks them.

A method declares what it requires in the definition: ``@requires("products:write")``
(a scope), ``@requires(check=own_orders)`` (a custom test on the typed request),
``@public`` (anyone), or nothing, which takes the service's ``security=``
default. :class:`Authentication` is an ordinary interceptor: it reads the
credentials from ``ctx.headers`` (``Authorization`` on HTTP, ``authorization``
metadata on gRPC), so every protocol is guarded by the same code. Its
header-only step (:meth:`Authentication.admit`: credentials and scopes)
runs before a protocol reads the request body; only ``check=``, which needs
the typed request, runs in the chain.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from twofold.core.chain import CallNext
from twofold.core.code import Code
from twofold.core.context import Context
from twofold.core.errors import Error
from twofold.core.headers import Headers
from twofold.core.policy import AUTHENTICATED, Identity

# Longest credential read; anything longer is refused unparsed.
MAX_CREDENTIAL = 8192


class Verifier(Protocol):
    """One way to prove an identity (a bearer token, an API key)."""

    scheme_name: str
    """The name of its OpenAPI security scheme."""

    def present(self, headers: Headers) -> bool:
        """Whether the call carries credentials of this kind at all."""
        ...

    async def verify(self, headers: Headers) -> Identity:
        """The identity, or raise UNAUTHENTICATED (see :func:`unauthenticated`)."""
        ...

    def openapi_scheme(self) -> dict[str, Any]: ...


def unauthenticated(message: str, challenge: str) -> Error:
    return Error(Code.UNAUTHENTICATED, message, headers={"WWW-Authenticate": challenge})


def bearer_token(headers: Headers) -> str | None:
    """The token of ``Authorization: Bearer <token>``, or None if there is no such header."""
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


@dataclass(frozen=True, slots=True)
class StoredApiKey:
    """A stored API key: the SHA-256 of the key, never the key itself."""

    digest: str
    subject: str
    scopes: frozenset[str] = frozenset()

    @classmethod
    def of(cls, key: str, subject: str, scopes: Iterable[str] = ()) -> StoredApiKey:
        return cls(hash_key(key), subject, frozenset(scopes))


def hash_key(key: str) -> str:
    """The digest a :class:`StoredApiKey` stores (hex SHA-256 of the UTF-8 key)."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


class ApiKeys:
    """API keys in a header (``X-API-Key`` by default), stored hashed.

    The presented key's digest is compared with every stored one in constant
    time, so neither the match nor its position shows in the timing.
    """

    scheme_name = "apiKey"

    def __init__(self, keys: Iterable[StoredApiKey], *, header: str = "X-API-Key") -> None:
        self.keys = tuple(keys)
        self.header = header

    def present(self, headers: Headers) -> bool:
        return self.header in headers

    async def verify(self, headers: Headers) -> Identity:
        key = headers.get(self.header, "")
        challenge = f'ApiKey header="{self.header}"'
        if not key or len(key) > MAX_CREDENTIAL:
            raise unauthenticated("invalid API key", challenge)
        digest = hash_key(key).encode()
        found: StoredApiKey | None = None
        for stored in self.keys:
            if hmac.compare_digest(digest, stored.digest.encode()):
                found = stored
        if found is None:
            raise unauthenticated("invalid API key", challenge)
        return Identity(found.subject, found.scopes, scheme="api_key")

    def openapi_scheme(self) -> dict[str, Any]:
        return {"type": "apiKey", "in": "header", "name": self.header}


class Authentication:
    """The interceptor that enforces every method's :class:`Requirement`.

    Missing or invalid credentials are UNAUTHENTICATED with a
    ``WWW-Authenticate`` challenge (401 on REST), a valid identity without the
    scopes or failing the check is PERMISSION_DENIED (403). Error messages are
    fixed strings: no token, key or library message ever reaches a client or a log.

    The first verifier whose credentials the call carries decides; a call
    carrying none is anonymous. Credentials that are present but invalid are
    refused even on a public method: a client with a broken token should hear
    about it rather than silently act as nobody.
    """

    def __init__(self, *verifiers: Verifier, realm: str = "twofold") -> None:
        if not verifiers:
            raise ValueError("Authentication needs at least one verifier")
        self.verifiers = verifiers
        self.realm = realm

    async def identify(self, headers: Headers) -> Identity | None:
        for verifier in self.verifiers:
            if verifier.present(headers):
                return await verifier.verify(headers)
        return None

    async def admit(self, ctx: Context) -> None:
        """The header-only step (:class:`~twofold.core.chain.Gate`): every protocol
        runs it before reading the body, so a refused caller's body is never read.

        It verifies the credentials, sets ``ctx.identity`` and checks the
        method's scopes, which do not depend on the request. A method with no
        requirement at all (the App refuses those, but a hand-made Method may
        have none) needs an identity: nothing fails open.
        """
        identity = await self.identify(ctx.headers)
        ctx.identity = identity
        requirement = ctx.method.security or AUTHENTICATED
        if requirement.public:
            return
        if identity is None:
            raise unauthenticated("credentials are required", f'Bearer realm="{self.realm}"')
        if not identity.has_scopes(requirement.scopes):
            missing = " ".join(requirement.scopes)
            challenge = (
                f'Bearer realm="{self.realm}", error="insufficient_scope", scope="{missing}"'
            )
            raise Error(
                Code.PERMISSION_DENIED,
                f"requires scope {missing}",
                headers={"WWW-Authenticate": challenge},
            )

    async def __call__(self, ctx: Context, request: Any, call_next: CallNext) -> Any:
        if not ctx.admitted:
            # A caller that skipped the header-only phase is checked here.
            await self.admit(ctx)
        requirement = ctx.method.security
        if requirement is not None and requirement.check is not None:
            # Only the check needs the typed request: it runs here, in the chain.
            if ctx.identity is None:
                raise unauthenticated("credentials are required", f'Bearer realm="{self.realm}"')
            allowed = requirement.check(ctx.identity, request)
            if inspect.isawaitable(allowed):
                allowed = await allowed
            if not allowed:
                raise Error(Code.PERMISSION_DENIED, "not allowed for this caller")
        return await call_next(request, ctx)

    def openapi_schemes(self) -> dict[str, dict[str, Any]]:
        return {v.scheme_name: v.openapi_scheme() for v in self.verifiers}
