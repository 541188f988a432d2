"""Idempotency keys: a retried non-idempotent call returns the first answer, once.

A create that times out leaves the client unsure whether it happened;
retrying it blindly may create twice. With a key the retry is safe: the
request message has an ``idempotency_key`` field (REST fills it from the
``Idempotency-Key`` header, RPC callers send it), and the
:class:`IdempotencyKeys` interceptor remembers, per method and key, a digest
of the request and the first successful answer, for ``ttl`` seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Coroutine
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
# How long a call holds its key before a retry may take it over: long enough
# for a call to finish (a deadline usually ends it sooner), short enough that
# a key whose process died frees up soon.
DEFAULT_LEASE = 30.0
_encode = msgspec.json.Encoder(order="sorted").encode
# Where the interceptor leaves the call's PendingKey in ctx.state.
_PENDING = "twofold.interceptors.idempotency"
# Clean-up tasks run to completion whatever happens to the call that started them.
_finishing: set[asyncio.Task[Any]] = set()

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Record:
    """What a store holds for one key: the request's digest and, once the
    first call succeeded, its answer (encoded JSON)."""

    fingerprint: bytes
    response: bytes | None


@dataclass(frozen=True, slots=True)
class Claim:
    """One call's hold on a key: the method (``scope``), the key, and a
    random ``token`` that tells this call's hold from a later one's."""

    scope: str
    key: str
    token: str


def running() -> Error:
    return Error(Code.ABORTED, "a request with this idempotency key is still running")


def lease_lost() -> Error:
    return Error(
        Code.ABORTED,
        "this call's hold on its idempotency key ran out and a retry took it over; "
        "nothing was written",
    )


class IdempotencyStore(Protocol):
    """Where keys are kept; every process serving the API must share it."""

    async def reserve(self, claim: Claim, fingerprint: bytes, lease: float) -> Record | None:
        """Hold the key for ``claim`` until ``lease`` (Unix time) and return None,
        or return the unexpired record that already holds it. Atomic: of two
        concurrent claims, one wins (the other may also raise ABORTED). A
        record whose lease passed without an answer is replaced."""
        ...

    async def complete(
        self, claim: Claim, response: bytes, expires: float, within: Any = None
    ) -> None:
        """Store the answer, kept until ``expires`` (Unix time), if ``claim``
        still holds the key without one; else raise ABORTED (:func:`lease_lost`).

        ``within`` is the caller's own transaction, of whatever kind the store
        knows (the catalog's takes a SQLAlchemy ``AsyncSession``): the answer
        is then written in it, to commit or roll back with the caller's write.
        Without it the store commits the answer on its own."""
        ...

    async def release(self, claim: Claim) -> None:
        """Forget the key if ``claim`` still holds it without an answer; its call
        failed and a retry may run it again. An answered key is kept: its write
        committed."""
        ...


@dataclass
class MemoryStore:
    """Keys in this process's memory (tests, a single-process server).

    Nothing here awaits, so each operation is atomic on the event loop, and
    :func:`complete` is atomic with whatever the handler changed in memory
    since its last ``await``: the same guarantee a database store gives the
    handler's transaction, within one process. ``within`` is not used.
    """

    entries: dict[tuple[str, str], tuple[float, str, Record]] = field(default_factory=dict)
    _pruned: float = 0.0

    async def reserve(self, claim: Claim, fingerprint: bytes, lease: float) -> Record | None:
        now = time.time()
        if now - self._pruned >= 1.0:
            self.entries = {k: v for k, v in self.entries.items() if v[0] > now}
            self._pruned = now
        found = self.entries.get((claim.scope, claim.key))
        if found is not None and found[0] > now:
            return found[2]
        self.entries[(claim.scope, claim.key)] = (lease, claim.token, Record(fingerprint, None))
        return None

    async def complete(
        self, claim: Claim, response: bytes, expires: float, within: Any = None
    ) -> None:
        found = self.entries.get((claim.scope, claim.key))
        if found is None or found[1] != claim.token or found[2].response is not None:
            raise lease_lost()
        self.entries[(claim.scope, claim.key)] = (
            expires,
            claim.token,
            Record(found[2].fingerprint, response),
        )

    async def release(self, claim: Claim) -> None:
        found = self.entries.get((claim.scope, claim.key))
        if found is not None and found[1] == claim.token and found[2].response is None:
            del self.entries[(claim.scope, claim.key)]


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


@dataclass
class PendingKey:
    """The key a running call holds, until its answer is stored."""

    claim: Claim
    store: IdempotencyStore
    ttl: float
    completed: bool = False

    async def complete(self, output: Any, within: Any = None) -> None:
        response = msgspec.json.encode(output)
        await self.store.complete(self.claim, response, time.time() + self.ttl, within)
        self.completed = True


async def complete(ctx: Context, output: Any, *, within: Any = None) -> None:
    """Store ``output`` as the answer to this call's idempotency key, in the
    transaction ``within`` (for the store of :class:`IdempotencyKeys`), so
    that the answer commits with the handler's write or not at all.

    Call it with what the handler returns, after its write and before its
    commit; it does nothing when the call has no key. If the call's hold on
    the key ran out and a retry took it over, it raises ABORTED: let that
    roll the transaction back, as the retry makes the write instead.
    """
    pending = ctx.state.get(_PENDING)
    if isinstance(pending, PendingKey):
        await pending.complete(output, within)


class IdempotencyKeys:
    """The interceptor that honours ``idempotency_key`` on every method that has one.

    - a new key is claimed for ``lease`` seconds and the handler runs;
    - the same key with the same request returns the stored answer, without
      running the handler again;
    - the same key with another request is INVALID_ARGUMENT (422 on REST:
      :class:`KeyReused`);
    - the same key while the first call still runs is ABORTED (409 on REST);
      try again later;
    - a call that fails, or is cancelled (its deadline passed, its client
      left), before its write committed stores nothing: a retry runs it again.

    Exactly once needs the answer to commit with the write it records. A
    handler that writes to a database calls :func:`complete` inside its own
    transaction, and the store adds the answer to that transaction: then either
    both commit or neither does, whenever a deadline or a crash cuts the call
    short. A handler that does not is completed by the interceptor after it
    returns, which leaves a window (the process dies between the write and the
    answer) where the key's lease runs out and a retry runs the handler again.

    Every claim carries a random token. A claim whose process died expires
    after its lease and a retry may take the key over; completing or releasing
    is then refused for the old call (its transaction rolls back), so a key is
    never answered twice nor freed under a write that committed.

    Keys live in an :class:`IdempotencyStore`: :class:`MemoryStore` here (one
    process, tests), or one over the application's database, which every worker
    shares (the catalog's is in ``examples/catalog/database.py``).

    ``ttl``: how long an answer is kept; ``lease``: how long a call holds its
    key before a retry may take it over (a call still running then fails
    with ABORTED when it completes the key in its transaction, writing nothing).
    """

    def __init__(
        self, store: IdempotencyStore, ttl: float = DEFAULT_TTL, lease: float = DEFAULT_LEASE
    ) -> None:
        if not 0 < lease <= ttl:
            raise ValueError("lease must be positive and at most ttl")
        self.store = store
        self.ttl = ttl
        self.lease = lease

    async def __call__(self, ctx: Context, request: Any, call_next: CallNext) -> Any:
        key = getattr(request, KEY_FIELD, None)
        if not isinstance(key, str) or not key:
            return await call_next(request, ctx)
        check_key(key)
        fingerprint = _fingerprint(request)
        claim = Claim(ctx.method.full_name, key, secrets.token_hex(16))
        try:
            record = await self.store.reserve(claim, fingerprint, time.time() + self.lease)
        except BaseException:
            # Cut short (a deadline, say), the claim may have committed all the same.
            await _finish(self.store.release(claim), "release")
            raise
        if record is not None:
            if record.fingerprint != fingerprint:
                raise KeyReused
            if record.response is None:
                raise running()
            return msgspec.json.decode(record.response, type=ctx.method.output_type)
        pending = PendingKey(claim, self.store, self.ttl)
        ctx.state[_PENDING] = pending
        try:
            output = await call_next(request, ctx)
        except BaseException:
            # Frees the key unless the handler's transaction committed its answer.
            await _finish(self.store.release(claim), "release")
            raise
        finally:
            ctx.state.pop(_PENDING, None)
        if not pending.completed:
            # The handler wrote without completing the key in its transaction:
            # store the answer now, whatever happens to this call meanwhile.
            await _finish(pending.complete(output), "complete", quiet=False)
        return output


async def _finish(step: Coroutine[Any, Any, None], what: str, *, quiet: bool = True) -> None:
    """Run a store's clean-up ``step`` to its end, even if this call is cancelled meanwhile.

    A deadline or a client that left cancels the call's task, possibly again
    while it cleans up; abandoned halfway, a release would leave the key
    claimed until its lease ran out. The step runs in a task of its own,
    kept referenced until done; a cancellation that arrives meanwhile is
    re-raised once it is. With ``quiet``, a step that fails is logged rather
    than raised: the call is already failing for its own reason.
    """
    task = asyncio.ensure_future(step)
    _finishing.add(task)
    task.add_done_callback(_finishing.discard)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            # Unlike awaiting the task, wait() never passes a cancellation on to it.
            await asyncio.wait([task])
        except asyncio.CancelledError as exc:
            cancelled = exc
    if task.cancelled():  # by the loop shutting down, not by this call
        raise cancelled or asyncio.CancelledError()
    error = task.exception()
    if error is not None:
        if not quiet and cancelled is None:
            raise error
        if isinstance(error, Error):
            # A coded refusal (the store busy or unavailable): the key frees
            # itself when its lease ends; a traceback would add nothing.
            logger.warning("could not %s an idempotency key: %s", what, error.message)
        else:
            logger.error("could not %s an idempotency key", what, exc_info=error)
    if cancelled is not None:
        raise cancelled


def _fingerprint(request: Any) -> bytes:
    """A digest of the request without its key, stable across processes."""
    fields = msgspec.to_builtins(request)
    fields.pop(KEY_FIELD, None)
    return hashlib.sha256(_encode(fields)).digest()
