"""When a failed call is tried again, and how long the client waits first.

Only calls that are safe to repeat are retried: methods declared
``NO_SIDE_EFFECTS`` or ``IDEMPOTENT``, failing with UNAVAILABLE or
RESOURCE_EXHAUSTED (the two codes that say "not now" rather than "not
this"). The wait is exponential backoff with full jitter (a random delay
between zero and the exponential ceiling, so that many clients failing
together do not come back together), or exactly what the server's
``Retry-After`` asks for. The call's deadline bounds everything: a wait that
would outlast it is not started.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

from twofold.core.code import Code

RETRYABLE_CODES = frozenset({Code.UNAVAILABLE, Code.RESOURCE_EXHAUSTED})


@dataclass(frozen=True, slots=True)
class Retry:
    """A retry policy. ``Retry(attempts=1)`` (or ``retry=None`` on a client) never retries."""

    attempts: int = 3
    """Tries in all, the first included."""
    backoff: float = 0.1
    """Ceiling of the first wait, in seconds; each next ceiling is ``multiplier`` times more."""
    multiplier: float = 2.0
    max_backoff: float = 5.0
    """No computed wait is longer than this."""
    max_retry_after: float = 60.0
    """A ``Retry-After`` longer than this is not waited for: the error is raised."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if min(self.backoff, self.max_backoff, self.max_retry_after) < 0 or self.multiplier < 1:
            raise ValueError("backoff times must not be negative and multiplier at least 1")

    def backoff_delay(self, retry: int) -> float:
        """The wait before retry number ``retry`` (0 for the first): full jitter."""
        ceiling = min(self.max_backoff, self.backoff * self.multiplier**retry)
        return random.uniform(0, ceiling)


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # unreadable: fall back to our own backoff
    return max(0.0, when.timestamp() - time.time())
