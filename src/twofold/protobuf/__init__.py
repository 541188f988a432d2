"""Protobuf from the same Python types: descriptors, the binary codec, ``.proto`` text.

``Schema(app.table)`` is the entry point: ``.descriptors`` and ``.pool`` for
gRPC (reflection, stubs), ``.codec(tp)`` for the binary wire format of gRPC,
gRPC-Web and Connect's ``application/proto``, ``.text()`` for ``.proto``
files. Field numbers are kept stable by :class:`FieldNumber` and the lock
file (docs/protobuf.md). The proto3 JSON mapping (:mod:`twofold.protobuf.json`)
sits beside the binary codec (:mod:`twofold.protobuf.binary`).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twofold.protobuf.binary import Codec
    from twofold.protobuf.numbering import FieldNumber, Lock, LockError, Problem, ProblemKind
    from twofold.protobuf.schema import Schema

__all__ = ["Codec", "FieldNumber", "Lock", "LockError", "Problem", "ProblemKind", "Schema"]

# Loaded on first use: the proto3 JSON codec (a client's) needs no google.protobuf.
_HOMES = {
    "Codec": "binary",
    "FieldNumber": "numbering",
    "Lock": "numbering",
    "LockError": "numbering",
    "Problem": "numbering",
    "ProblemKind": "numbering",
    "Schema": "schema",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'twofold.protobuf' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"twofold.protobuf.{home}"), name)
