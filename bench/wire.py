"""The workload's protobuf bytes, written by hand from the peers' ``catalog.proto``.

The binary requests and the answers the checks expect must not come from
the codec under test, nor need protoc: the four messages are small enough
to spell out. Fields go in field-number order, as upb, protobuf-py and
Twofold all write them, so equal messages are equal bytes; the checks hold
every server to them, so each run also checks them against the peers' upb
(grpcio) and protobuf-py (connectrpc) answers.
"""

from __future__ import annotations

from typing import Any


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1  # int64: negative numbers take ten bytes, two's complement
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _key(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _bytes(number: int, data: bytes) -> bytes:
    return _key(number, 2) + _varint(len(data)) + data


def _int(number: int, value: int) -> bytes:
    return _key(number, 0) + _varint(value) if value else b""  # proto3: 0 is not written


def _str(number: int, value: str) -> bytes:
    return _bytes(number, value.encode()) if value else b""


def product(p: dict[str, Any]) -> bytes:
    """``Product{id = 1, name = 2, price = 3, category = 4, repeated tags = 5}``."""
    out = _int(1, p["id"]) + _str(2, p["name"]) + _str(3, p["price"]) + _str(4, p["category"])
    return out + b"".join(_bytes(5, tag.encode()) for tag in p["tags"])


def get_product_request(id: int) -> bytes:
    """``GetProductRequest{id = 1}``."""
    return _int(1, id)


def create_product_request(p: dict[str, Any]) -> bytes:
    """``CreateProductRequest{product = 1}``."""
    return _bytes(1, product(p))


def grpc_frame(message: bytes) -> bytes:
    """One uncompressed gRPC length-prefixed message."""
    return b"\x00" + len(message).to_bytes(4, "big") + message
