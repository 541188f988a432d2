"""The supervisor's restart policy (with real workers: tests/e2e/test_supervision.py)."""

from __future__ import annotations

from twofold.server.supervisor import Restarts


def test_a_worker_that_cannot_start_is_retried_ever_later_up_to_a_cap() -> None:
    restarts = Restarts()
    delays = [restarts.delay(n) for n in range(1, 8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert restarts.attempts == 5
