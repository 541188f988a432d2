"""HTTP/2 abuse on the one port (``twofold serve --server pyvoy``): each attack is answered
as RFC 9113 allows, on the attacker's connection only, and everyone else is still served.

Each test drives one raw HTTP/2 connection frame by frame (tests/security/frames.py)
and then proves, with clients nobody here wrote, that a new connection still gets
a REST GET (httpx over h2c) and a unary gRPC call (grpcio) answered, by the
same Envoy process as before the attack (its supervisor restarted none).
Where Envoy keeps a counter for the protection that fired, the test reads it
from Envoy's admin interface (the Unix socket the supervisor gave it): a
closed connection alone could have had another cause. What Envoy
answers where RFC 9113 leaves a choice is documented in docs/grpc.md ("Abuse
of HTTP/2"). No test asserts how fast anything happens: waits only bound hangs.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from hyperframe.frame import (
    DataFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from tests.e2e.server import Server, alive, spawn, start
from tests.e2e.test_one_port import self_signed
from tests.security import abuse_app
from tests.security.frames import (
    CANCEL,
    COMPRESSION_ERROR,
    FLOW_CONTROL_ERROR,
    PREFACE,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    Connection,
    Stream,
    grpc_frame,
)
from twofold.protobuf import Schema
from twofold.server.envoy import STREAM_WINDOW

TARGET = "tests.security.abuse_app:app"
STREAMS = 8  # --max-concurrent-streams of the server under test
WAIT = 30.0  # the bound on any wait for the server: only so that a broken one cannot hang
GRPC = [("content-type", "application/grpc"), ("te", "trailers")]
SCHEMA = Schema(abuse_app.app.table)
METHODS = {m.name: m for m in abuse_app.app.table}
GET_ITEM = METHODS["GetItem"]
ENVOYS: dict[int, int] = {}  # port -> the PID of the Envoy that served it first


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("h2-abuse")
    args = ("--server", "pyvoy", "--max-concurrent-streams", str(STREAMS), "--no-access-log")
    served = start(TARGET, tmp, None, *args)
    ENVOYS[served.port] = envoy_of(served)
    yield served
    served.stop()


def well_behaved(server: Server, tls: Path | None = None) -> None:
    """Another client, on new connections, gets its REST GET and unary gRPC call answered,
    from the Envoy that was there before the attack (not one its supervisor restarted)."""
    assert envoy_of(server) == ENVOYS[server.port] and alive(ENVOYS[server.port])
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(tls)) if tls else False
    with httpx.Client(http1=tls is not None, http2=True, verify=verify, timeout=WAIT) as client:
        r = client.get(f"{server.url}/items/7")
    assert (r.status_code, r.http_version, r.json()) == (200, "HTTP/2", {"id": 7, "name": "item 7"})
    target = f"127.0.0.1:{server.port}"
    if tls is None:
        channel = grpc.insecure_channel(target)
    else:
        credentials = grpc.ssl_channel_credentials(root_certificates=tls.read_bytes())
        channel = grpc.secure_channel(target, credentials)
    with channel:
        get_item = channel.unary_unary(
            GET_ITEM.path,
            request_serializer=SCHEMA.codec(GET_ITEM.input_type).encode,
            response_deserializer=SCHEMA.codec(GET_ITEM.output_type).decode,
        )
        assert get_item(GET_ITEM.input_type(id=8), timeout=WAIT) == abuse_app.Item(8, "item 8")


# Envoy's process and counters.


def envoy_of(server: Server) -> int:
    """The PID of the Envoy the server's supervisor runs (one: no --workers)."""
    (pid,) = (
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
        and _parent(entry) == server.process.pid
        and _read(entry / "comm").strip() == "envoy"
    )
    return pid


def _parent(entry: Path) -> int:
    stat = _read(entry / "stat")
    return int(stat.rsplit(")", 1)[1].split()[1]) if stat else 0


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""  # a process that ended meanwhile


def counter(server: Server, name: str) -> int:
    """Envoy's counter ``name``, from its admin interface (a Unix socket in its --config-yaml)."""
    argv = Path(f"/proc/{envoy_of(server)}/cmdline").read_bytes().split(b"\0")
    config = json.loads(argv[argv.index(b"--config-yaml") + 1])
    transport = httpx.HTTPTransport(uds=config["admin"]["address"]["pipe"]["path"])
    with httpx.Client(transport=transport, timeout=WAIT) as admin:
        r = admin.get(f"http://envoy/stats?filter=^{name}$")
    value = r.text.strip().rsplit(": ", 1)[-1]
    return int(value) if value.isdigit() else 0


def counted(server: Server, name: str, before: int) -> None:
    """Wait until Envoy's counter ``name`` is past ``before`` (workers' counters reach
    the admin endpoint at the next stats flush, within seconds)."""
    deadline = time.monotonic() + WAIT
    while counter(server, name) <= before:
        assert time.monotonic() < deadline, f"Envoy's {name} stayed at {before}"
        time.sleep(0.2)


def request(c: Connection, stream_id: int, method: str, path: str, **kw: Any) -> Stream:
    """A whole request on ``c``, and the server's answer to it."""
    c.request(stream_id, method, path, **kw)
    return c.answer(stream_id)


# The attacks.


def test_a_bad_preface_closes_that_connection_only(server: Server) -> None:
    # Not HTTP/2 after "PRI * HTTP/2.0": RFC 9113 §3.4 lets the GOAWAY be
    # omitted (the peer is not speaking HTTP/2); Envoy closes the connection.
    with Connection(server.port) as c:
        c.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", SettingsFrame())
        c.drain()
        assert c.closed and c.goaway is None and not c.streams
    # The right preface, but its first frame is not SETTINGS (§3.4): PROTOCOL_ERROR.
    with Connection(server.port) as c:
        c.send(PREFACE, PingFrame(opaque_data=b"12345678"))
        c.drain()
        assert c.closed and c.goaway is not None
        assert c.goaway.error_code == PROTOCOL_ERROR
    well_behaved(server)


def test_an_oversized_header_list_resets_its_stream_only(server: Server) -> None:
    before = counter(server, "http2.header_overflow")
    with Connection(server.port) as c:
        c.open()
        # 20 KB of one field, then 200 fields: both past the 16 KiB / 100-field
        # limits. Envoy resets the stream (RST_STREAM) before the App sees it,
        # and the connection goes on.
        for stream_id, extra in (
            (1, [("x-big", "a" * 20_000)]),
            (3, [(f"x-h{i}", "v") for i in range(200)]),
        ):
            answer = request(c, stream_id, "GET", "/items/1", extra=extra)
            assert answer.reset is not None and not answer.headers
        assert request(c, 5, "GET", "/items/1").header(":status") == "200"
        assert not c.closed and c.goaway is None
    counted(server, "http2.header_overflow", before)
    # A field of 1 MiB across CONTINUATION frames is past what Envoy's HPACK
    # decoder takes at all: COMPRESSION_ERROR, a connection error (§4.3).
    with Connection(server.port) as c:
        c.open()
        c.request(1, "GET", "/items/1", extra=[("x-big", "b" * (1 << 20))])
        c.drain()
        assert c.goaway is not None and c.goaway.error_code == COMPRESSION_ERROR
        assert 1 not in c.streams or not c.streams[1].headers
    well_behaved(server)


def test_data_past_the_window_is_a_flow_control_error(server: Server) -> None:
    assert STREAM_WINDOW < 1 << 20
    with Connection(server.port) as c:
        c.open()
        assert c.settings[0x4] == STREAM_WINDOW  # SETTINGS_INITIAL_WINDOW_SIZE
        c.send(*c.headers(1, [(":method", "POST"), (":scheme", "http"), (":path", "/items/1"),
                               (":authority", "127.0.0.1")]))  # fmt: skip
        # Never reading the WINDOW_UPDATEs, so never knowing whether the server
        # gave credit back: 16 MiB is past any window it could have granted.
        chunk = [DataFrame(1, b"\0" * 16384) for _ in range(16)]
        for _ in range(64):
            if not c.send(*chunk):
                break
        answer = c.answer(1)
        assert answer.reset == FLOW_CONTROL_ERROR  # §6.9.1: a stream error
    well_behaved(server)


def test_a_window_update_past_two_to_the_31_closes_the_connection(server: Server) -> None:
    # §6.9.1: a connection window over 2^31-1 is a connection error
    # (FLOW_CONTROL_ERROR). Envoy ends the connection without a GOAWAY
    # (§5.4.1 says it SHOULD send one; closing is what matters).
    with Connection(server.port) as c:
        c.open()
        c.send(WindowUpdateFrame(0, window_increment=2**31 - 1))
        c.drain()
        assert c.closed
        assert c.goaway is None or c.goaway.error_code == FLOW_CONTROL_ERROR
    well_behaved(server)


def test_rapid_reset_closes_the_connection(server: Server) -> None:
    # CVE-2023-44487: streams opened and reset at once cost the server work but
    # no concurrency slot. Envoy counts resets before a stream's first second
    # and closes a connection where they are the majority of 500 or more.
    before = counter(server, "http.ingress_http.downstream_rq_too_many_premature_resets")
    with Connection(server.port) as c:
        c.open()
        for batch in range(100):  # 10,000 streams at most
            frames: list[Any] = []
            for i in range(100):
                stream_id = 1 + 2 * (batch * 100 + i)
                fields = [(":method", "GET"), (":scheme", "http"), (":path", "/items/1"),
                          (":authority", "127.0.0.1")]  # fmt: skip
                frames += c.headers(stream_id, fields, end_stream=True)
                frames.append(RstStreamFrame(stream_id, error_code=CANCEL))
            if not c.send(*frames):
                break
        c.drain()
        assert c.closed
    counted(server, "http.ingress_http.downstream_rq_too_many_premature_resets", before)
    well_behaved(server)


def test_streams_past_the_limit_are_refused(server: Server) -> None:
    # Streams opened before the client acknowledged the server's SETTINGS
    # (RFC 9113 §5.1.2's race: the client may not have read the limit yet):
    # those past it get REFUSED_STREAM, which a client may retry, and the
    # others are served on the same connection.
    opened = STREAMS + 2
    with Connection(server.port) as c:
        c.send(PREFACE, SettingsFrame())
        for i in range(opened):
            c.send(*grpc_request(c, 1 + 2 * i, "GetItem"))
        last = 1 + 2 * (opened - 1)
        c.until(lambda frame: isinstance(frame, RstStreamFrame) and frame.stream_id == last)
        refused = {sid for sid, stream in c.streams.items() if stream.reset == REFUSED_STREAM}
        assert refused == {1 + 2 * i for i in range(STREAMS, opened)}
        c.send(SettingsFrame(flags=["ACK"]))
        for i in range(STREAMS):
            c.send(DataFrame(1 + 2 * i, grpc_frame(b"\x08\x01"), flags=["END_STREAM"]))
            answer = c.answer(1 + 2 * i)
            assert answer.trailer("grpc-status") == "0"
        assert not c.closed
    # Past the limit it had acknowledged, a client breaks the protocol
    # knowingly: Envoy (its codec, as nghttp2 does) ends the whole connection,
    # which §5.4.1 allows for any stream error.
    with Connection(server.port) as c:
        c.open()
        for i in range(opened):
            c.send(*grpc_request(c, 1 + 2 * i, "GetItem"))
        c.drain()
        assert c.closed
    well_behaved(server)


def grpc_request(c: Connection, stream_id: int, name: str) -> list[Any]:
    """The HEADERS of a gRPC call, its stream left open for its message."""
    fields = [(":method", "POST"), (":scheme", "http"), (":path", METHODS[name].path),
              (":authority", "127.0.0.1"), *GRPC]  # fmt: skip
    return c.headers(stream_id, fields)


@pytest.mark.parametrize(
    "frame",
    [SettingsFrame(), PingFrame(opaque_data=b"flooding")],
    ids=["settings", "ping"],
)
def test_a_control_frame_flood_closes_the_connection(server: Server, frame: Any) -> None:
    # Each SETTINGS or PING asks for an ACK. A client that never reads them
    # fills Envoy's queue of outbound control frames (1000 at most,
    # max_outbound_control_frames): Envoy closes the connection. Closed by
    # Envoy, not by the socket's failing on this side: its count of
    # connections it closed itself goes up. (Its http2.outbound_control_flood
    # counter usually does too, but not every time: not asserted.)
    closed_here = "http.ingress_http.downstream_cx_destroy_local"
    before = counter(server, closed_here)
    with Connection(server.port, rcvbuf=4096) as c:
        c.open()
        burst = frame.serialize() * 10_000
        for _ in range(1000):  # 10 million frames at most
            if not c.send(burst):
                break
        c.drain()
        assert c.closed
    counted(server, closed_here, before)
    well_behaved(server)


@pytest.mark.parametrize("reader", ["window", "socket"])
def test_a_slow_reader_holds_a_window_per_stream(server: Server, reader: str) -> None:
    """A client that never reads (HTTP/2 window 0, or a socket never read) asks
    for endless 64 KiB messages on every stream it may open: the App's sends
    wait once Envoy holds about a window per stream, and nothing piles up."""
    produced = httpx.get(f"{server.url}/produced", timeout=WAIT).json()["total"]
    window = {0x4: 0} if reader == "window" else {}
    with Connection(server.port, rcvbuf=4096 if reader == "socket" else 0) as c:
        c.open(window)
        for i in range(STREAMS):
            c.send(*grpc_request(c, 1 + 2 * i, "Chunks"))
            c.send(DataFrame(1 + 2 * i, grpc_frame(b"\x08\x80\x80\x04"), flags=["END_STREAM"]))
        held = stalled(lambda: httpx.get(f"{server.url}/produced", timeout=WAIT).json()["total"])
        # Envoy's defaults held 16 MiB per stream (128 MiB here); now a window,
        # and whatever the socket buffers hold.
        assert held - produced < STREAMS * STREAM_WINDOW + 8 * (1 << 20)
        well_behaved(server)
        if reader == "window":
            # The reader opens its window: the stream goes on.
            c.send(WindowUpdateFrame(0, window_increment=1 << 20))
            c.send(WindowUpdateFrame(1, window_increment=1 << 20))
            c.until(lambda _: len(c.stream(1).data) >= 1 << 20)
            assert len(c.stream(1).data) >= 1 << 20
    # The reader is gone: its streams end as disconnects, with no traceback
    # logged for each (a send after the client left is not the handler's failure).
    deadline = time.monotonic() + WAIT
    while counter(server, "http.ingress_http.downstream_rq_active") > 0:
        assert time.monotonic() < deadline, "the abandoned streams are still open"
        time.sleep(0.2)
    assert "unhandled exception" not in server.output()
    assert alive(ENVOYS[server.port])


def stalled(value: Callable[[], int]) -> int:
    """``value()`` once it has grown from where it was and then stopped growing."""
    deadline = time.monotonic() + WAIT
    last = value()
    while True:
        time.sleep(0.5)
        now = value()
        if now == last and now > 0:
            return now
        assert time.monotonic() < deadline, f"still growing after {WAIT} s: {now} bytes"
        last = now


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        # The prefix claims 100 bytes, the stream ends after 2: INTERNAL (as grpc-go).
        (grpc_frame(b"\x08\x01", claimed=100), "13", "truncated message"),
        # The prefix claims more than the App takes (Options.max_body_size):
        # refused before a byte of it is read.
        (grpc_frame(b"\x08\x01", claimed=2**32 - 1), "8", "larger than the limit"),
    ],
    ids=["lying", "over-the-limit"],
)
def test_a_grpc_length_prefix(server: Server, body: bytes, status: str, message: str) -> None:
    with Connection(server.port) as c:
        c.open()
        answer = request(c, 1, "POST", GET_ITEM.path, extra=GRPC, body=body)
        assert answer.header(":status") == "200"
        assert answer.trailer("grpc-status") == status
        assert message in (answer.trailer("grpc-message") or "")
        # The same connection goes on.
        answer = request(c, 3, "POST", GET_ITEM.path, extra=GRPC, body=grpc_frame(b"\x08\x02"))
        assert answer.trailer("grpc-status") == "0"
    well_behaved(server)


def test_tls_handshake_garbage_closes_that_connection_only(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)

    def argv(port: int, _: int | None) -> list[str]:
        return [
            sys.executable, "-m", "twofold", "serve", TARGET, "--server", "pyvoy",
            "--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key), "--no-access-log",
        ]  # fmt: skip

    served = spawn(argv, tmp_path, tls=cert)
    try:
        ENVOYS[served.port] = envoy_of(served)
        for garbage in (os.urandom(4096), b"\x16\x03\x01\x02\x00" + os.urandom(512)):
            with socket.create_connection(("127.0.0.1", served.port), timeout=WAIT) as sock:
                sock.sendall(garbage)
                assert closed(sock)
        # A well-formed TLS connection opened beside one sending garbage.
        with socket.create_connection(("127.0.0.1", served.port), timeout=WAIT) as sock:
            sock.sendall(os.urandom(100))
            well_behaved(served, tls=cert)
            assert closed(sock)
        well_behaved(served, tls=cert)
    finally:
        served.stop()


def closed(sock: socket.socket) -> bool:
    """Read (a TLS alert, perhaps) until the server closes the connection."""
    while True:
        try:
            if not sock.recv(65536):
                return True
        except ConnectionResetError:
            return True
