"""Bearer JWTs, verified with PyJWT: an HMAC secret, or public keys from a JWKS.

Every key is pinned to one algorithm: the secret to HS256, an RSA key to
RS256, an EC key to ES256 (or the ``alg`` its JWK names). A token is only
verified with the algorithm of the key it selects, so ``alg: none`` and key
confusion (an HS256 token "signed" with the RSA public key as the secret)
are refused before any signature is computed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from twofold.core.code import Code
from twofold.core.errors import Error
from twofold.core.headers import Headers
from twofold.core.policy import Identity
from twofold.interceptors.auth import MAX_CREDENTIAL, bearer_token, unauthenticated

logger = logging.getLogger("twofold")

HS256 = "HS256"
# The algorithm each JWK key type is pinned to when the JWK names none.
_DEFAULT_ALG = {"RSA": "RS256", "EC": "ES256"}
_ASYMMETRIC = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
# How long keys fetched from a JWKS URL are used before they are fetched again.
JWKS_TTL = 300.0
# The secret `twofold token` signs with when given none: for development only,
# since everyone can read it here. Apps that accept it must refuse to run in
# production (the catalog does).
DEVELOPMENT_SECRET = "twofold-development-secret-never-use-in-production"


@dataclass(frozen=True, slots=True)
class _Key:
    kid: str | None
    algorithm: str
    key: Any


def _jwks_keys(document: Mapping[str, Any]) -> list[_Key]:
    keys = []
    for jwk in document.get("keys", ()):
        kty = jwk.get("kty")
        alg = jwk.get("alg") or _DEFAULT_ALG.get(kty, "")
        if alg not in _ASYMMETRIC or jwk.get("use", "sig") != "sig":
            continue  # only public signing keys; never an HMAC "oct" key from a JWKS
        text = json.dumps(jwk)
        key = RSAAlgorithm.from_jwk(text) if kty == "RSA" else ECAlgorithm.from_jwk(text)
        keys.append(_Key(jwk.get("kid"), alg, key))
    return keys


class JwtBearer:
    """Verify ``Authorization: Bearer <jwt>``.

    Give ``secret`` (HS256), ``jwks`` (a JWKS document or the path of a JWKS
    file) or ``jwks_url`` (fetched without blocking, kept ``JWKS_TTL`` seconds).
    ``exp`` and ``sub`` are required; ``nbf`` is checked when present;
    ``audience`` and ``issuer``, when set, must match. ``leeway`` seconds of
    clock skew are tolerated. Scopes come from the ``scope`` claim
    (space-separated, RFC 8693) or a ``scp`` list.
    """

    scheme_name = "bearerAuth"

    def __init__(
        self,
        *,
        secret: str | bytes | None = None,
        jwks: Mapping[str, Any] | str | Path | None = None,
        jwks_url: str | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        leeway: float = 30.0,
        realm: str = "twofold",
    ) -> None:
        if [secret, jwks, jwks_url].count(None) != 2:
            raise ValueError("give exactly one of secret, jwks or jwks_url")
        if isinstance(secret, str):
            secret = secret.encode()
        if secret is not None and len(secret) < 32:
            raise ValueError("an HS256 secret must be at least 32 bytes")
        self._keys: list[_Key] = [_Key(None, HS256, secret)] if secret is not None else []
        if isinstance(jwks, (str, Path)):
            self._keys = _jwks_keys(json.loads(Path(jwks).read_text()))
        elif jwks is not None:
            self._keys = _jwks_keys(jwks)
        self.jwks_url = jwks_url
        # When the keys were last fetched, by the monotonic clock; None before
        # the first fetch (the clock's zero is the boot, so 0.0 would read as
        # "fresh" on a machine up for less than JWKS_TTL).
        self._fetched: float | None = None
        self._lock = asyncio.Lock()
        self.audience = audience
        self.issuer = issuer
        self.leeway = leeway
        self.realm = realm

    def present(self, headers: Headers) -> bool:
        return bearer_token(headers) is not None

    def _challenge(self, error: str) -> str:
        return f'Bearer realm="{self.realm}", error="{error}"'

    async def verify(self, headers: Headers) -> Identity:
        token = bearer_token(headers) or ""
        if not token or len(token) > MAX_CREDENTIAL or not token.isascii():
            raise unauthenticated("invalid token", self._challenge("invalid_token"))
        try:
            header = jwt.get_unverified_header(token)
            key = await self._select(header)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "sub"], "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise unauthenticated("token expired", self._challenge("invalid_token")) from None
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            raise unauthenticated("invalid token", self._challenge("invalid_token")) from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise unauthenticated("invalid token", self._challenge("invalid_token"))
        return Identity(subject, _scopes(claims), scheme="bearer", claims=claims)

    async def _select(self, header: Mapping[str, Any]) -> _Key:
        """The key the token names (by ``kid``), pinned to that key's algorithm."""
        if self.jwks_url is not None and self._stale():
            await self._fetch()
        kid = header.get("kid")
        candidates = [k for k in self._keys if kid is None or k.kid == kid]
        if kid is None and len(candidates) != 1:
            raise jwt.InvalidTokenError("no kid")
        if not candidates:
            raise jwt.InvalidTokenError("unknown kid")
        key = candidates[0]
        if header.get("alg") != key.algorithm:
            raise jwt.InvalidAlgorithmError("algorithm not allowed for this key")
        return key

    def _stale(self) -> bool:
        return self._fetched is None or time.monotonic() - self._fetched > JWKS_TTL

    async def _fetch(self) -> None:
        import httpx  # imported only by apps that fetch their keys

        async with self._lock:
            if not self._stale():
                return
            try:
                async with httpx.AsyncClient(timeout=5.0) as client:
                    response = await client.get(self.jwks_url or "")
                    response.raise_for_status()
                    self._keys = _jwks_keys(response.json())
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                # Our fault, not the caller's: their token may be fine.
                logger.warning("cannot fetch the signing keys from %s", self.jwks_url)
                raise Error(Code.UNAVAILABLE, "cannot verify tokens now") from None
            self._fetched = time.monotonic()

    def openapi_scheme(self) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    scope = claims.get("scope")
    if isinstance(scope, str):
        return frozenset(scope.split())
    scp = claims.get("scp")
    if isinstance(scp, list):
        return frozenset(s for s in scp if isinstance(s, str))
    return frozenset()


def issue(
    secret: str | bytes,
    subject: str,
    scopes: Iterable[str] = (),
    *,
    expires_in: float = 3600,
    audience: str | None = None,
    issuer: str | None = None,
) -> str:
    """An HS256 token, e.g. for development (``twofold token``) and tests."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": subject, "iat": now, "exp": now + int(expires_in)}
    if scopes:
        claims["scope"] = " ".join(scopes)
    if audience is not None:
        claims["aud"] = audience
    if issuer is not None:
        claims["iss"] = issuer
    key = secret.encode() if isinstance(secret, str) else secret
    return jwt.encode(claims, key, algorithm=HS256)
