"""Idempotency keys: a retried non-idempotent call returns the first answer.

A create that times out leaves the client unsure whether it happened;
retrying it blindly may create twice. With a key the retry is safe: the
request message has an ``idempotency_key`` field (REST fills it from the
``Idempotency-Key`` header, RPC callers send it), and the
:class:`IdempotencyKeys` interceptor remembers, per method and key, a digest
of the request and the first successful answer, for ``ttl`` seconds:

- a new key runs the handler and stores its answer;
- the same key with the same request returns the stored answer, without
  running the handler again;
- the same key with another request is INVALID_ARGUMENT (422 on REST:
  :class:`KeyReused`);
- the same key while the first call still runs is ABORTED (409 on REST);
  try again later;
- a call that fails stores nothing, so it can be retried with its key.

The answer is stored after the handler's transaction committed, so a process
that dies in between leaves the key "running" until it expires; the client
then sees ABORTED rather than a second write.

Keys live in an :class:`IdempotencyStore`: :class:`MemoryStore` here (one
process, tests), or one over the application's database, which every worker
shares (the catalog's is in ``examples/catalog/database.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from twofold.core.chain import CallNext
from twofold.core.code import Code
from twofold.core.context import Context
from twofold.core.errors import Error
from twofold.core.policy import KEY_FIELD

MAX_KEY_LENGTH = 255
DEFAULT_TTL = 24 * 3600.0
_encode = msgspec.json.Encoder(order="sorted").encode


@dataclass(frozen=True, slots=True)
class Record:
    """What a store holds for one key: the request's digest and, once the
    first call succeeded, its answer (encoded JSON)."""

    fingerprint: bytes
    response: bytes | None


class IdempotencyStore(Protocol):
    """Where keys are kept; every process serving the API must share it."""

    async def reserve(
        self, scope: str, key: str, fingerprint: bytes, expires: float
    ) -> Record | None:
        """Claim ``key`` for this call (None), or return the unexpired record
        that already holds it. Must be atomic: of two concurrent claims, one wins."""
        ...

    async def complete(self, scope: str, key: str, response: bytes) -> None:
        """Store the answer of the call that claimed ``key``."""
        ...

    async def release(self, scope: str, key: str) -> None:
        """Forget ``key``: its call failed, and a retry may run it again."""
        ...


@dataclass
class MemoryStore:
    """Keys in this process's memory (tests, a single-process server)."""

    entries: dict[tuple[str, str], tuple[float, Record]] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def reserve(
        self, scope: str, key: str, fingerprint: bytes, expires: float
    ) -> Record | None:
        async with self._lock:
            now = time.time()
            found = self.entries.get((scope, key))
            if found is not None and found[0] > now:
                return found[1]
            self.entries = {k: v for k, v in self.entries.items() if v[0] > now}
            self.entries[(scope, key)] = (expires, Record(fingerprint, None))
            return None

    async def complete(self, scope: str, key: str, response: bytes) -> None:
        expires, record = self.entries[(scope, key)]
        self.entries[(scope, key)] = (expires, Record(record.fingerprint, response))

    async def release(self, scope: str, key: str) -> None:
        self.entries.pop((scope, key), None)


class KeyReused(Error):
    """The key was first used with another request: INVALID_ARGUMENT, 422 on REST."""

    http_status = 422

    def __init__(self) -> None:
        super().__init__(
            Code.INVALID_ARGUMENT,
            "this idempotency key was used with a different request; use a new key",
        )


def check_key(key: str) -> str:
    if len(key) > MAX_KEY_LENGTH:
        raise Error.invalid(KEY_FIELD, f"must be at most {MAX_KEY_LENGTH} characters")
    if not key.isprintable() or not key.isascii():
        raise Error.invalid(KEY_FIELD, "must be printable ASCII")
    return key


class IdempotencyKeys:
    """The interceptor that honours ``idempotency_key`` on every method that has one."""

    def __init__(self, store: IdempotencyStore, ttl: float = DEFAULT_TTL) -> None:
        self.store = store
        self.ttl = ttl

    async def __call__(self, ctx: Context, request: Any, call_next: CallNext) -> Any:
        key = getattr(request, KEY_FIELD, None)
        if not isinstance(key, str) or not key:
            return await call_next(request, ctx)
        check_key(key)
        fingerprint = _fingerprint(request)
        scope = ctx.method.full_name
        record = await self.store.reserve(scope, key, fingerprint, time.time() + self.ttl)
        if record is not None:
            if record.fingerprint != fingerprint:
                raise KeyReused
            if record.response is None:
                raise Error(Code.ABORTED, "a request with this idempotency key is still running")
            return msgspec.json.decode(record.response, type=ctx.method.output_type)
        try:
            output = await call_next(request, ctx)
        except BaseException:
            await self.store.release(scope, key)
            raise
        await self.store.complete(scope, key, msgspec.json.encode(output))
        return output


def _fingerprint(request: Any) -> bytes:
    """A digest of the request without its key, stable across processes."""
    fields = msgspec.to_builtins(request)
    fields.pop(KEY_FIELD, None)
    return hashlib.sha256(_encode(fields)).digest()
