"""``twofold serve`` refuses oversized heads and times out slow or idle connections.

Every test talks raw HTTP/1.1 over a socket to a real server process started
with short timeouts, once per HTTP/1.1 parser (httptools, h11). Waits are
bounded at five times the configured timeout; nothing asserts how fast.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.e2e.server import ROOT, Server, start

TARGET = "tests.e2e.grpc_app:app"
TIMEOUT = 1.0  # header, body and idle timeouts of the servers under test
WAIT = 5 * TIMEOUT
WHOAMI = (
    b"POST /streams.v1.Streams/Whoami HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
)
TWO = b"content-length: 2\r\n\r\n{}"  # the end of a WHOAMI


@pytest.fixture(scope="module", params=["httptools", "h11", "pyvoy"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp(f"limits-{request.param}")
    timeouts = ("--header-timeout", "--body-timeout", "--idle-timeout")
    args = [arg for flag in timeouts for arg in (flag, str(TIMEOUT))]
    if request.param == "pyvoy":
        server = start(TARGET, tmp, None, "--server", "pyvoy", *args)
    else:
        server = start(TARGET, tmp, None, "--no-grpc", "--http", request.param, *args)
    yield server
    server.stop()


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
    return sock


def send(sock: socket.socket, data: bytes) -> None:
    """Send what the server reads; it may close before taking all of it."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(data)


def answer(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection (or WAIT passes: then the test fails)."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        except TimeoutError:
            pytest.fail(f"the server kept the connection open {WAIT} s; got {b''.join(chunks)!r}")
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def response(sock: socket.socket) -> bytes:
    """One whole response (its head and its content-length body), the connection left open."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def rss(server: Server) -> int:
    """The server process's resident memory, in bytes."""
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_huge_header_is_431_and_never_held(server: Server) -> None:
    before = rss(server)
    for _ in range(8):
        with connect(server) as sock:
            send(sock, WHOAMI + b"x-big: " + b"a" * (1024 * 1024) + b"\r\n" + TWO)
            assert status(answer(sock)) == 431
    # Eight 1 MiB headers, each refused before it was gathered whole.
    assert rss(server) - before < 8 * 1024 * 1024


def test_too_many_headers_is_431(server: Server) -> None:
    fields = b"".join(b"x-h%d: v\r\n" % i for i in range(200))
    with connect(server) as sock:
        send(sock, WHOAMI + fields + TWO)
        answered = answer(sock)
    assert status(answered) == 431
    assert b"application/problem+json" in answered


def test_a_long_target_is_414(server: Server) -> None:
    with connect(server) as sock:
        send(sock, b"GET /" + b"a" * (64 * 1024) + b" HTTP/1.1\r\nhost: t\r\n\r\n")
        # Envoy counts the target in the head's size: past that limit too, it is 431.
        assert status(answer(sock)) in ((414, 431) if server.pyvoy else (414,))
    with connect(server) as sock:
        send(sock, b"GET /" + b"a" * (9 * 1024) + b" HTTP/1.1\r\nhost: t\r\n\r\n")
        assert status(answer(sock)) == 414


def test_an_ordinary_request_still_passes(server: Server) -> None:
    with connect(server) as sock:
        send(sock, WHOAMI + b"x-token: " + b"t" * 8000 + b"\r\n" + TWO)
        assert response(sock).startswith(b"HTTP/1.1 200 ")


def test_half_sent_heads_are_closed_after_the_header_timeout(server: Server) -> None:
    socks = [connect(server) for _ in range(10)]
    try:
        for sock in socks:
            send(sock, b"GET / HTTP/1.1\r\nhost: t\r\nx-slow: ")
        for sock in socks:
            answered = answer(sock)
            assert status(answered) == 408  # part of a request had come
    finally:
        for sock in socks:
            sock.close()


def test_a_slow_pipelined_head_waits_for_the_answer_before_it(server: Server) -> None:
    body = b'{"seconds": %r}' % (2 * TIMEOUT)
    sleep = b"POST /streams.v1.Streams/Sleep HTTP/1.1\r\nhost: t\r\n"
    sleep += b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
    with connect(server) as sock:
        # The next request's head begins while the first is being answered, and stalls.
        send(sock, sleep + body + b"GET / HTTP/1.1\r\nhost: t\r\nx-slow: ")
        assert response(sock).startswith(b"HTTP/1.1 200 ")  # not cut by a 408
        closed = answer(sock)  # by the header timeout, or by the keep-alive one first
        assert closed == b"" or status(closed) == 408


def test_a_connection_that_sends_nothing_is_closed(server: Server) -> None:
    with connect(server) as sock:
        assert answer(sock) == b""


def test_an_idle_kept_alive_connection_is_closed(server: Server) -> None:
    with connect(server) as sock:
        send(sock, WHOAMI + TWO)
        first = response(sock)
        assert first.startswith(b"HTTP/1.1 200 ")
        assert b"connection: close" not in first.lower()
        assert answer(sock) == b""  # closed, with nothing more said


def test_a_stalled_body_is_408(server: Server) -> None:
    with connect(server) as sock:
        send(sock, WHOAMI + b"content-length: 100\r\n\r\n{")
        answered = answer(sock)
    assert status(answered) == 408


def test_a_grpc_client_stream_may_pause_longer_than_the_body_timeout(server: Server) -> None:
    if not server.pyvoy:
        pytest.skip("native gRPC shares the HTTP port on pyvoy only (grpcio has no body timeout)")

    def numbers() -> Iterator[bytes]:
        for n in (1, 2):
            yield b"\x08" + bytes([n])  # streams.v1.Number{n}
            time.sleep(2 * TIMEOUT)  # a client stream pausing, not a body stalling

    with grpc.insecure_channel(server.grpc_target) as channel:
        total = channel.stream_unary("/streams.v1.Streams/Total")
        assert total(numbers(), timeout=30) == b"\x08\x03"


def test_a_slow_body_that_keeps_moving_is_read(server: Server) -> None:
    body = b'{"seconds": 0}'
    with connect(server) as sock:
        head = b"POST /streams.v1.Streams/Sleep HTTP/1.1\r\nhost: t\r\n"
        head += b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
        send(sock, head)
        # Five pieces, one per half timeout: in all 2.5 times the body timeout
        # (a timeout on the whole body would cut it), never stalled for one.
        pieces = [body[i : i + 3] for i in range(0, len(body), 3)]
        assert len(pieces) == 5
        for piece in pieces:
            time.sleep(TIMEOUT / 2)
            send(sock, piece)
        assert response(sock).startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize("chosen", [("--no-grpc",), ("--server", "pyvoy")])
def test_connections_beyond_the_limit_are_refused_and_the_others_served(
    tmp_path: Path, chosen: tuple[str, ...]
) -> None:
    server = start(TARGET, tmp_path, None, *chosen, "--max-connections", "4")
    held: list[socket.socket] = []
    try:
        for _ in range(4):
            held.append(connect(server))
        time.sleep(0.5)  # the server has accepted them
        with connect(server) as extra:
            send(extra, WHOAMI + TWO)
            answered = answer(extra)
            assert answered == b"" or status(answered) == 503
        for sock in held:
            send(sock, WHOAMI + TWO)
            assert response(sock).startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in held:
            sock.close()
        server.stop()


def test_a_limit_that_is_not_positive_is_a_one_line_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "twofold", "serve", TARGET, "--header-timeout", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == "twofold: error: --header-timeout must be positive\n"


def test_the_limits_reach_the_reload_worker(tmp_path: Path) -> None:
    # --reload pickles uvicorn's config into its worker process: the limits travel in it.
    server = start(TARGET, tmp_path, None, "--no-grpc", "--reload", "--max-headers", "5")
    try:
        with connect(server) as sock:
            send(sock, WHOAMI + b"".join(b"x-h%d: v\r\n" % i for i in range(10)) + TWO)
            assert status(answer(sock)) == 431
    finally:
        server.stop()
