"""A WebSocket client's view of a server, shared by the e2e and gateway tests.

:func:`closed_with` reads a ``websockets`` connection until the server closes
it. The rest is a connection upgraded by hand (:func:`raw_upgrade`), to send
frames no library client would (unmasked, reserved opcodes, bad UTF-8) and to
read every frame the server sent, close frame included, byte for byte.
"""

from __future__ import annotations

import base64
import os
import socket
import struct

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection


def closed_with(ws: ClientConnection) -> tuple[int, str]:
    """Read until the server closes; its close code and reason."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=30)
    frame = closed.value.rcvd
    assert frame is not None, "closed without a close frame"
    return frame.code, frame.reason


def raw_upgrade(port: int, receive_buffer: int | None = None) -> socket.socket:
    """A TCP connection to ``/jsonrpc`` that has done the opening handshake, to
    send frames by hand; a small ``receive_buffer`` makes a slow reader."""
    sock = socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /jsonrpc HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def client_frame(opcode: int, payload: bytes, *, masked: bool = True, fin: bool = True) -> bytes:
    """One frame as a client sends it (RFC 6455 section 5.2): masked, unless told not to be."""
    first = (0x80 if fin else 0) | opcode
    mask_bit = 0x80 if masked else 0
    if len(payload) < 126:
        head = struct.pack("!BB", first, mask_bit | len(payload))
    else:
        head = struct.pack("!BBH", first, mask_bit | 126, len(payload))
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def server_frames(sock: socket.socket, *, to_close: bool = False) -> list[tuple[int, bytes]]:
    """Every frame the server sends until it closes the connection (or, with
    ``to_close``, until its close frame): (opcode, payload).
    Its close frame is answered with one, as RFC 6455 §5.5.1 has a client do:
    the server then ends the TCP connection at once, not after its closing
    handshake times out (the websockets library's close_timeout, 10 s)."""
    data = b""
    frames: list[tuple[int, bytes]] = []
    try:
        while chunk := sock.recv(1 << 20):
            data += chunk
            while (frame := _parse(data)) is not None:
                opcode, payload, data = frame
                frames.append((opcode, payload))
                if opcode == 0x8:
                    sock.sendall(client_frame(0x8, payload[:2]))
                    if to_close:
                        return frames
    except (ConnectionResetError, BrokenPipeError, TimeoutError):
        pass
    return frames


def _parse(data: bytes) -> tuple[int, bytes, bytes] | None:
    """The first whole (unmasked) frame of ``data``: opcode, payload and what follows."""
    if len(data) < 2:
        return None
    opcode, length = data[0] & 0x0F, data[1] & 0x7F
    offset = {126: 4, 127: 10}.get(length, 2)
    if len(data) < offset:
        return None
    if length == 126:
        (length,) = struct.unpack("!H", data[2:4])
    elif length == 127:
        (length,) = struct.unpack("!Q", data[2:10])
    if len(data) < offset + length:
        return None
    return opcode, data[offset : offset + length], data[offset + length :]


def close_code(sock: socket.socket) -> int | None:
    """The code of the server's close frame; None if the connection ended without one.
    A server still reading the frame a client lied about (a huge length) takes
    the answer as more of it, so the close frame, not the end of TCP, is awaited."""
    for opcode, payload in server_frames(sock, to_close=True):
        if opcode == 0x8:
            return int(struct.unpack("!H", payload[:2])[0])
    return None
