"""``twofold serve --workers N``: the process that keeps N workers serving.

The supervisor starts the workers (spawned processes, each running
:func:`twofold.server.serving._worker_process`) and then only watches them:
it replaces a worker that dies, gives up on one that cannot start, and
passes SIGTERM on so that every worker drains (:class:`Supervisor`).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from prometheus_client import multiprocess

from twofold.interceptors.metrics import MULTIPROC_DIR

logger = logging.getLogger("uvicorn.error")

STARTUP_ATTEMPTS = 5  # start-up failures in a row before the supervisor gives up
BACKOFF_FIRST = 0.5  # seconds before the replacement of a worker that failed to start
BACKOFF_MAX = 10.0
STOP_MARGIN = 5.0  # seconds past the grace period for a worker's lifespan to end
READY = b"ready"

Target = Callable[..., None]


@dataclass(frozen=True, slots=True)
class Restarts:
    """When a supervisor replaces a worker that failed to start, and when it gives up."""

    attempts: int = STARTUP_ATTEMPTS
    first: float = BACKOFF_FIRST
    cap: float = BACKOFF_MAX

    def delay(self, failures: int) -> float:
        """Seconds to wait before the next start after ``failures`` failures in a row."""
        return min(self.first * 2.0 ** (failures - 1), self.cap)


@dataclass(eq=False)
class Worker:
    process: multiprocessing.process.BaseProcess
    ready: multiprocessing.connection.Connection | None  # the supervisor's end; None once read
    served: bool = False

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid


@dataclass(eq=False)
class Supervisor:
    """N workers running ``target(ready=connection)``.

    - A worker tells the supervisor once it serves (lifespan up, gRPC and HTTP
      listening) by writing to a pipe the supervisor gave it.
    - A worker that exits while the server is not stopping is logged, with its
      exit status or signal, and replaced: at once if it had served, since a
      crash or an OOM kill says nothing about the next process. One that exits
      before it ever served failed to *start*; its replacement waits, 0.5 s
      after the first such failure and twice as long after each next one (at
      most 10 s), and after ``STARTUP_ATTEMPTS`` failures in a row (none
      serving in between) the supervisor gives up: it stops the other workers
      and exits with the failed worker's status. A worker that fails before
      any worker has served makes it give up at once, as uvicorn's and
      gunicorn's supervisors do: the app, its lifespan or a socket is broken
      and every retry would fail the same way.
    - SIGTERM or SIGINT is passed on to every worker, which drains (no new
      connections, calls in flight get ``grace`` seconds); the supervisor
      waits ``grace`` plus ``STOP_MARGIN`` seconds for them (a lifespan ends
      after its servers do), then kills what is left with SIGKILL. It exits 0
      if every worker stopped cleanly (a worker still starting may die of the
      SIGTERM itself: it had nothing in flight), 1 otherwise.
    """

    count: int
    grace: float
    target: Target
    restarts: Restarts = field(default_factory=Restarts)
    on_exit: Callable[[int], None] = lambda pid: None  # called with each worker's pid as it ends
    workers: list[Worker] = field(default_factory=list)
    served: bool = False  # some worker has served since the supervisor started
    failures: int = 0  # start-up failures in a row
    pending: list[float] = field(default_factory=list)  # when to start replacements
    status: int | None = None  # set once the supervisor stops: its exit status

    def run(self) -> int:
        """Start the workers, keep them running until a signal; the exit status.

        Signals reach the loop through a socket pair (the self-pipe trick), so the
        loop sleeps in one ``wait`` on the workers' sentinels, their pipes and the
        signals, with no polling.
        """
        spawn = multiprocessing.get_context("spawn")
        wake, wakeup = socket.socketpair()
        wakeup.setblocking(False)
        signals: list[int] = []

        def on_signal(sig: int, frame: FrameType | None) -> None:
            signals.append(sig)
            with contextlib.suppress(OSError):  # full: the loop is awake already
                wakeup.send(b"\0")

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            logger.info("Started supervisor process [%d]", os.getpid())
            for _ in range(self.count):
                self._start(spawn)
            while self.status is None:
                self._step(spawn, wake, signals)
            return self._drain(wake, signals)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            wake.close()
            wakeup.close()

    def _step(self, spawn: Any, wake: socket.socket, signals: list[int]) -> None:
        now = time.monotonic()
        timeout = max(0.0, min(self.pending) - now) if self.pending else None
        waitables: list[Any] = [wake, *self._waitables()]
        multiprocessing.connection.wait(waitables, timeout)
        if signals:
            logger.info("Received %s: stopping the workers", signal.Signals(signals[-1]).name)
            _drain_socket(wake)
            signals.clear()
            self.status = 0
            return
        self._read_ready()
        for worker in [w for w in self.workers if w.process.exitcode is not None]:
            self.workers.remove(worker)
            self._exited(worker)
            if self.status is not None:
                return
        now = time.monotonic()
        for due in [t for t in self.pending if t <= now]:
            self.pending.remove(due)
            self._start(spawn)

    def _waitables(self) -> Iterable[Any]:
        for worker in self.workers:
            yield worker.process.sentinel
            if worker.ready is not None:
                yield worker.ready

    def _start(self, spawn: Any) -> None:
        ours, theirs = spawn.Pipe(duplex=False)
        process = spawn.Process(target=self.target, kwargs={"ready": theirs})
        process.start()
        theirs.close()  # the worker's copy is the only one: EOF once it is gone
        logger.info("Started worker process [%d]", process.pid)
        self.workers.append(Worker(process, ours))

    def _read_ready(self) -> None:
        for worker in self.workers:
            if worker.ready is None or not worker.ready.poll():
                continue
            try:
                served = worker.ready.recv_bytes() == READY
            except (EOFError, OSError):
                served = False  # it is gone; its sentinel tells the rest
            worker.ready.close()
            worker.ready = None
            if served:
                worker.served = self.served = True
                self.failures = 0

    def _exited(self, worker: Worker) -> None:
        self._read_ready_of(worker)
        self.on_exit(worker.pid)
        worker.process.join()
        code = worker.process.exitcode
        assert code is not None
        how = exit_reason(code)
        if worker.served:
            logger.warning("Worker [%d] died (%s): starting a new one", worker.pid, how)
            self.pending.append(time.monotonic())
            return
        self.failures += 1
        if not self.served:
            logger.error("Worker [%d] failed to start (%s): stopping", worker.pid, how)
            self.status = _failure(code)
        elif self.failures >= self.restarts.attempts:
            logger.error(
                "Worker [%d] failed to start (%s), %d times in a row: stopping",
                worker.pid,
                how,
                self.failures,
            )
            self.status = _failure(code)
        else:
            delay = self.restarts.delay(self.failures)
            logger.warning(
                "Worker [%d] failed to start (%s): starting another in %.1f s (failure %d of %d)",
                worker.pid,
                how,
                delay,
                self.failures,
                self.restarts.attempts,
            )
            self.pending.append(time.monotonic() + delay)

    def _read_ready_of(self, worker: Worker) -> None:
        """A worker may have said it served just before it died: read that first."""
        if worker.ready is not None and worker.ready.poll():
            self.workers.append(worker)
            self._read_ready()
            self.workers.remove(worker)

    def _drain(self, wake: socket.socket, signals: list[int]) -> int:
        """SIGTERM to every worker, SIGKILL to any left after the grace period."""
        assert self.status is not None
        self.pending.clear()
        for worker in self.workers:
            _signal(worker, signal.SIGTERM)
        deadline = time.monotonic() + self.grace + STOP_MARGIN
        clean, killed = True, False
        while self.workers:
            left = deadline - time.monotonic()
            if left <= 0 and not killed:
                for worker in self.workers:
                    logger.error(
                        "Worker [%d] did not stop within %.1f s: killing it",
                        worker.pid,
                        self.grace + STOP_MARGIN,
                    )
                    _signal(worker, signal.SIGKILL)
                clean, killed = False, True
            waitables: list[Any] = [wake, *(w.process.sentinel for w in self.workers)]
            # After SIGKILL, which cannot be ignored, wait as long as it takes.
            multiprocessing.connection.wait(waitables, None if killed else left)
            if signals:  # a second signal: pass it on (a second SIGINT hurries uvicorn)
                _drain_socket(wake)
                for worker in self.workers:
                    _signal(worker, signals[-1])
                signals.clear()
            for worker in [w for w in self.workers if w.process.exitcode is not None]:
                self.workers.remove(worker)
                worker.process.join()
                self.on_exit(worker.pid)
                # Killed by our SIGTERM: a worker still starting, before it
                # handles signals; it had nothing in flight.
                if worker.process.exitcode not in (0, -signal.SIGTERM):
                    logger.warning(
                        "Worker [%d] stopped (%s)",
                        worker.pid,
                        exit_reason(worker.process.exitcode or 0),
                    )
                    clean = False
                if worker.ready is not None:
                    worker.ready.close()
        logger.info("Stopping supervisor process [%d]", os.getpid())
        if self.status:
            return self.status
        return 0 if clean else 1


def _signal(worker: Worker, sig: int) -> None:
    if worker.process.exitcode is None:
        with contextlib.suppress(ProcessLookupError):  # exited meanwhile: its sentinel says so
            os.kill(worker.pid, sig)


def _drain_socket(wake: socket.socket) -> None:
    wake.setblocking(False)
    try:
        while wake.recv(64):
            pass
    except BlockingIOError:
        pass
    finally:
        wake.setblocking(True)


def exit_reason(code: int) -> str:
    """An exit status, or the signal that ended a process, in words."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


def _failure(code: int) -> int:
    """The supervisor's exit status for a worker's: its own, or 1 for a signal or 0."""
    return code if code > 0 else 1


@contextlib.contextmanager
def shared_metrics() -> Iterator[Callable[[int], None]]:
    """Set ``PROMETHEUS_MULTIPROC_DIR`` for the workers to come; what to call as each ends.

    The workers' metrics are one server's: :func:`shared_metrics` gives them a
    directory for prometheus-client's multiprocess mode (see
    :mod:`twofold.interceptors.metrics`), tells it of each worker that ends,
    and removes it at the end.

    A directory set already is the operator's (it must be emptied between
    runs, as prometheus-client requires): used, never removed. Otherwise a
    fresh one, removed once the workers are gone. The workers inherit the
    variable at spawn, before they import prometheus-client, which reads it
    then.
    """
    given = os.environ.get(MULTIPROC_DIR)
    directory = given or tempfile.mkdtemp(prefix="twofold-metrics-")
    os.environ[MULTIPROC_DIR] = directory

    def ended(pid: int) -> None:
        # Drops the worker's live gauges (calls in flight), keeps its counts.
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]

    try:
        yield ended
    finally:
        if not given:
            del os.environ[MULTIPROC_DIR]
            shutil.rmtree(directory, ignore_errors=True)
