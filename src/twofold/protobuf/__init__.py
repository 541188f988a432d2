"""Protobuf from the same Python types: descriptors, the binary codec, ``.proto`` text.

``Schema(app.table)`` is the entry point: ``.descriptors`` and ``.pool`` for
gRPC (reflection, stubs), ``.codec(tp)`` for the binary wire format of gRPC,
gRPC-Web and Connect's ``application/proto``, ``.text()`` for ``.proto``
files. Field numbers are kept stable by :class:`FieldNumber` and the lock
file (docs/protobuf.md).
"""

from twofold.protobuf.codec import Codec
from twofold.protobuf.numbering import FieldNumber, Lock, LockError, Problem, ProblemKind
from twofold.protobuf.schema import Schema

__all__ = ["Codec", "FieldNumber", "Lock", "LockError", "Problem", "ProblemKind", "Schema"]
