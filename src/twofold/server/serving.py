"""``twofold serve``: HTTP (uvicorn) and gRPC (grpcio) in one process, one event loop.

Each worker process runs one event loop holding both servers and the App's
``lifespan`` once, around both: the database the lifespan opens is the one
the gRPC handlers use too (:func:`_serve` gives the order of start and stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ctypes
import functools
import logging
import multiprocessing
import multiprocessing.connection
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.lifespan.on import LifespanOn

from twofold.interceptors import access
from twofold.server import accesslines, uvicorn_limits
from twofold.server.app import App
from twofold.server.health import Readiness
from twofold.server.limits import ServerLimits
from twofold.server.loader import load_served

logger = logging.getLogger("uvicorn.error")
STARTUP_FAILURE = 3  # uvicorn's exit status when the lifespan fails
# How long the requests uvicorn cancelled at the end of the grace period may
# take to unwind (their handlers' finally blocks, their access lines).
UNWIND = 2.0


@dataclass(frozen=True, slots=True)
class Settings:
    """What ``twofold serve`` was asked for; picklable, so workers get it too.

    ``settings.limits`` (:class:`~twofold.server.limits.ServerLimits`) bound
    what a connection may send and how long it may take, on both servers:
    :mod:`twofold.server.uvicorn_limits` maps them onto uvicorn, ``GrpcServer`` onto
    grpcio.
    """

    target: str
    host: str = "127.0.0.1"
    port: int = 8000
    grpc_port: int | None = 50051  # None: no gRPC server
    workers: int = 1
    reload: bool = False
    log_level: str = "info"
    access_log: bool = True
    grace: float = 10.0
    drain_delay: float = 0.0  # on a signal, keep serving this long (readyz 503) before stopping
    limits: ServerLimits = field(default_factory=ServerLimits)
    http: str = "auto"  # the HTTP/1.1 parser: "auto" (httptools if installed), "httptools", "h11"


def run(settings: Settings) -> int:
    """Serve until SIGINT or SIGTERM; the process's exit status."""
    config = _config(settings, app="twofold.server.loader:app_from_env")
    worker = functools.partial(_worker_process, settings)
    if config.should_reload:
        from uvicorn.supervisors import ChangeReload

        ChangeReload(config, target=worker, sockets=[config.bind_socket()]).run()
        return 0
    if settings.workers > 1:
        return _supervise(settings, config.bind_socket())
    return _worker(settings)


def _config(settings: Settings, app: Any) -> uvicorn_limits.LimitedConfig:
    # uvloop when installed (the [standard] extra), as uvicorn picks; the
    # HTTP/1.1 protocol is uvicorn's, with the limits.
    websocket: dict[str, Any] = {}
    if isinstance(app, App):
        # Pings are the server's to send (ASGI has no message for them), and
        # a message over the limit is refused (1009) before it is buffered whole.
        limits = app.options.websocket
        websocket = {
            "ws_max_size": limits.max_message_size,
            "ws_ping_interval": limits.ping_interval,
            "ws_ping_timeout": limits.ping_timeout,
        }
    return uvicorn_limits.LimitedConfig(
        app,
        **websocket,
        limits=settings.limits,
        http=settings.http,
        factory=isinstance(app, str),
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        reload=settings.reload,
        log_level=settings.log_level,
        access_log=False,  # the access log is twofold.server.accesslines'
        log_config=_log_config(_access_log(settings)),
        lifespan="off",  # run by _serve, around both servers
        timeout_graceful_shutdown=int(settings.grace) or 1,
    )


def _access_log(settings: Settings) -> bool:
    """Whether to write the access log: asked for, and a log level that shows INFO
    (``--log-level warning`` silences it, as it silenced uvicorn's)."""
    return settings.access_log and settings.log_level.lower() in ("trace", "debug", "info")


def _log_config(access_log: bool) -> dict[str, Any]:
    """uvicorn's logging, plus the logger of AccessLogs given no writer (it is given one
    while a worker serves: :func:`_serve`), silenced by ``--no-access-log``."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    level = "INFO" if access_log else "WARNING"
    config["loggers"]["twofold.access"] = {
        "handlers": ["default"],
        "level": level,
        "propagate": False,
    }
    config.setdefault("filters", {})["client_faults"] = {"()": ClientFaults}
    config["loggers"]["uvicorn.error"]["filters"] = ["client_faults"]
    return config


class ClientFaults(logging.Filter):
    """A client's malformed input, logged by uvicorn with a traceback, as one warning line.

    uvicorn's WebSocket protocol logs a text frame that is not UTF-8 with
    ``logger.exception`` (and closes with 1007, as it should): the fault is
    the client's, and a traceback in the server's log would read as a bug.
    """

    MESSAGES = frozenset({"Invalid UTF-8 sequence received from client."})

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.msg in self.MESSAGES:
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _worker(
    settings: Settings,
    sockets: list[socket.socket] | None = None,
    on_ready: Callable[[], None] = lambda: None,
) -> int:
    # The target may be the App wrapped in middleware: HTTP goes through the
    # wrapper, native gRPC (no ASGI there) straight to the App inside.
    served, app = load_served(settings.target)
    config = _config(settings, app=served)
    runner = asyncio.Runner(loop_factory=config.get_loop_factory())
    with runner:
        return runner.run(_serve(settings, config, app, sockets, on_ready))


class _HttpServer(uvicorn.Server):
    """uvicorn's server, telling the App and the gRPC side the moment a signal arrives.

    The App's readiness turns 503 at once. With a ``drain_delay`` both
    servers go on serving for that long before they stop listening, so that
    a load balancer polling ``/readyz`` (or gRPC health) takes this instance
    out before connections are refused (kube-apiserver's
    ``--shutdown-delay-duration``); a second signal stops at once.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        on_exit: asyncio.Event,
        on_drain: asyncio.Event,
        readiness: Readiness,
        drain_delay: float,
        on_ready: Callable[[], None],
    ) -> None:
        super().__init__(config)
        self.on_exit = on_exit
        self.on_ready = on_ready
        self.on_drain = on_drain
        self.readiness = readiness
        self.drain_delay = drain_delay
        self.loop = asyncio.get_running_loop()
        self._delaying = False
        self._exiting = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:  # the gRPC server started before: both serve now
            self.on_ready()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.readiness.drain()
        self.loop.call_soon_threadsafe(self.on_drain.set)
        if self.drain_delay > 0 and not self._delaying:
            self._delaying = True

            def later() -> None:
                self.loop.call_later(self.drain_delay, self._exit, sig, None)

            # A signal handler interrupts the loop anywhere: schedule through
            # the one call that is safe there.
            self.loop.call_soon_threadsafe(later)
            return
        self._exit(sig, frame)

    def _exit(self, sig: int, frame: FrameType | None = None) -> None:
        if self._exiting:  # the delay ran out after a second signal stopped us
            return
        self._exiting = True
        super().handle_exit(sig, frame)
        self.loop.call_soon_threadsafe(self.on_exit.set)


async def _serve(
    settings: Settings,
    config: uvicorn_limits.LimitedConfig,
    app: App,
    sockets: list[socket.socket] | None,
    on_ready: Callable[[], None],
) -> int:
    """Run one worker: the lifespan once, around both servers; its exit status.

    1. the lifespan starts (uvicorn's own lifespan runner, driving the App's
       ASGI lifespan, so a failing startup reads as it always has);
    2. the gRPC server starts, and SERVING is set on its health service;
    3. uvicorn serves HTTP (``Server.serve()``, its lifespan turned off: it is
       already running) until SIGINT or SIGTERM;
    4. at that signal both stop at once: uvicorn closes its listeners and waits
       for requests in flight, while the gRPC server turns NOT_SERVING, refuses
       new calls and lets calls in flight finish, each for at most ``grace``
       seconds, after which what is left is cancelled;
    5. the lifespan ends, after both have stopped.
    """
    config.load()
    lines = None
    if _access_log(settings):
        lines = accesslines.AccessWriter()
        access.write_to(lines)
        config.log_requests(lines)
    try:
        return await _serve_loaded(settings, config, app, sockets, on_ready)
    finally:
        if lines is not None:
            # Last: the requests in flight, the gRPC calls and the lifespan have
            # ended, and their lines are written before the worker exits.
            access.write_to(None)
            lines.close()


async def _serve_loaded(
    settings: Settings,
    config: uvicorn.Config,
    app: App,
    sockets: list[socket.socket] | None,
    on_ready: Callable[[], None],
) -> int:
    lifespan = LifespanOn(config)
    await lifespan.startup()
    if lifespan.should_exit:
        return STARTUP_FAILURE
    readiness = app.readiness
    stopping = asyncio.Event()
    draining = asyncio.Event()
    grpc_stopped: asyncio.Task[None] | None = None
    try:
        grpc_server = None
        if settings.grpc_port is not None:
            from twofold.server.grpc import GrpcServer  # grpcio only when serving gRPC

            grpc_server = GrpcServer(app, reuse_port=settings.workers > 1, limits=settings.limits)
            readiness.require("grpc")
            # An IPv6 literal in brackets, as grpcio parses "host:port"
            # (":::50051" is no address to it; "[::]:50051" is).
            host = f"[{settings.host}]" if ":" in settings.host else settings.host
            address = f"{host}:{settings.grpc_port}"
            try:
                port = grpc_server.add_port(address)
            except OSError:
                logger.error(
                    "gRPC cannot listen on %s — choose another port with --grpc-port, "
                    "or serve no gRPC with --no-grpc",
                    address,
                )
                return 1
            await grpc_server.start()
            readiness.set("grpc", True)
            logger.info("gRPC running on %s:%d", host, port)

            async def stop_grpc() -> None:
                await draining.wait()
                await grpc_server.drain()  # NOT_SERVING, still serving calls
                await stopping.wait()
                await grpc_server.stop(settings.grace)

            grpc_stopped = asyncio.create_task(stop_grpc())
        http = _HttpServer(config, stopping, draining, readiness, settings.drain_delay, on_ready)
        watchdog = asyncio.create_task(uvicorn_limits.watch(settings.limits, http.server_state))
        parent = _watch_parent(http)
        # uvicorn re-raises the signal it caught once it is done; catch it
        # here, so that the gRPC server and the lifespan still stop in order.
        previous = {s: signal.signal(s, _ignore) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            await http.serve(sockets)
        finally:
            parent()
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            draining.set()
            stopping.set()
            if grpc_stopped is not None:
                await grpc_stopped
            # uvicorn cancels the requests still running when the grace period
            # ends but does not wait for them: their handlers unwind (a stream
            # closing its subscription, say) before the lifespan closes what
            # they use, and their access lines are written before the log closes.
            running = [task for task in http.server_state.tasks if not task.done()]
            if running:
                await asyncio.wait(running, timeout=UNWIND)
                await asyncio.sleep(0)  # the connections' close callbacks
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0 if http.started else 1
    finally:
        await lifespan.shutdown()


def _watch_parent(http: _HttpServer) -> Callable[[], None]:
    """In a worker process: stop as on SIGTERM once the parent is gone; the
    function that stops watching.

    A worker never outlives its parent, even one killed with SIGKILL (which
    cannot be passed on): on Linux the kernel sends it SIGTERM when the parent
    dies (``PR_SET_PDEATHSIG``), and on any system the worker watches the
    sentinel ``multiprocessing`` gives it (a pipe from the parent that reads as
    closed once the parent is gone). Either way it stops as on SIGTERM: no new
    connections, calls in flight get ``grace`` seconds. Without this, workers
    orphaned by a killed supervisor would keep the port, and a restarted
    server would find it in use.
    """
    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return lambda: None
    loop = asyncio.get_running_loop()
    sentinel = parent.sentinel

    def gone() -> None:
        loop.remove_reader(sentinel)
        logger.warning("The parent process is gone: stopping")
        http.handle_exit(signal.SIGTERM, None)

    def stop() -> None:
        loop.remove_reader(sentinel)

    loop.add_reader(sentinel, gone)
    return stop


def _die_with_parent() -> None:
    """Linux: have the kernel send this process SIGTERM when its parent dies."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1  # <linux/prctl.h>
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


def _ignore(sig: int, frame: FrameType | None) -> None:
    """A second signal while stopping: already stopping."""


def _supervise(settings: Settings, sock: socket.socket) -> int:
    """Keep ``settings.workers`` workers serving on one HTTP socket until a signal.

    With ``--workers N`` the parent binds the HTTP socket once and starts N
    worker processes (spawned, as uvicorn does), handing them the socket; each
    worker's gRPC server binds the gRPC port itself with SO_REUSEPORT, so the
    kernel spreads connections over the workers. :mod:`twofold.server.supervisor`
    keeps them running: a worker that dies is replaced, and a signal to the
    parent drains every worker. ``--reload`` uses uvicorn's reloader with this
    same worker.
    """
    from twofold.server.supervisor import Supervisor, shared_metrics

    multiprocessing.allow_connection_pickling()
    target = functools.partial(_worker_process, settings, [sock])
    try:
        with shared_metrics() as on_exit:
            # Each worker serves on for drain_delay after the signal, then drains for grace.
            stop_after = settings.drain_delay + settings.grace
            return Supervisor(settings.workers, stop_after, target, on_exit=on_exit).run()
    finally:
        sock.close()


def _worker_process(
    settings: Settings,
    sockets: list[socket.socket] | None = None,
    ready: multiprocessing.connection.Connection | None = None,
) -> None:
    _die_with_parent()  # the parent may be gone already: _watch_parent sees to that
    sys.exit(_worker(settings, sockets, _announcer(ready)))


def _announcer(ready: multiprocessing.connection.Connection | None) -> Callable[[], None]:
    """What a worker calls once it serves: tell the supervisor, through its pipe."""

    def announce() -> None:
        if ready is not None:
            from twofold.server.supervisor import READY

            with contextlib.suppress(OSError):
                ready.send_bytes(READY)
            ready.close()

    return announce
