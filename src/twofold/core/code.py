"""The canonical error codes, shared by every protocol.

These are the 16 non-OK codes of google.rpc.Code. OK is not a member: a call
that succeeded has no error, so there is nothing to encode.
"""

from __future__ import annotations

import enum


class Code(enum.Enum):
    """A canonical error code; the value is the gRPC status number."""

    CANCELED = 1
    """The call was cancelled, usually by the caller."""
    UNKNOWN = 2
    """An error with no better code; also what an unrecognised code becomes."""
    INVALID_ARGUMENT = 3
    """The request is malformed or fails validation, whatever the system state."""
    DEADLINE_EXCEEDED = 4
    """The deadline passed before the call completed."""
    NOT_FOUND = 5
    """The requested entity does not exist."""
    ALREADY_EXISTS = 6
    """The entity the caller tried to create already exists."""
    PERMISSION_DENIED = 7
    """The caller is known but may not do this."""
    RESOURCE_EXHAUSTED = 8
    """A quota, rate limit or size limit was hit."""
    FAILED_PRECONDITION = 9
    """The system is not in the state the call requires (e.g. cancel twice)."""
    ABORTED = 10
    """A concurrency conflict, such as a stale version; retry at a higher level."""
    OUT_OF_RANGE = 11
    """The request reached past a valid range (e.g. a page past the end)."""
    UNIMPLEMENTED = 12
    """The method does not exist or is not supported over this protocol."""
    INTERNAL = 13
    """An invariant broke inside the server; never carries internals to the wire."""
    UNAVAILABLE = 14
    """The service is temporarily unable to serve; safe to retry with backoff."""
    DATA_LOSS = 15
    """Unrecoverable data loss or corruption."""
    UNAUTHENTICATED = 16
    """The call carries no valid credentials."""

    @property
    def wire_name(self) -> str:
        """The lower-snake name Connect and JSON bodies use (``not_found``)."""
        return _WIRE_NAMES[self]

    @classmethod
    def from_wire_name(cls, name: str) -> Code:
        """Parse a wire name; anything unrecognised is UNKNOWN, as Connect specifies."""
        return _BY_WIRE_NAME.get(name, Code.UNKNOWN)


_WIRE_NAMES = {code: code.name.lower() for code in Code}
# Connect spells CANCELED with one L, like gRPC; accept the British spelling too.
_BY_WIRE_NAME = {name: code for code, name in _WIRE_NAMES.items()} | {"cancelled": Code.CANCELED}


# The HTTP status for each code: google.rpc.Code's documented mapping, which is
# also Connect's table. Surprising entries: CANCELED is 499 (nginx's "client
# closed request": the client gave up, so no standard status fits);
# FAILED_PRECONDITION is 400, not 412, because 412 means an HTTP precondition
# header (If-Match) failed, which is a narrower thing; UNKNOWN and DATA_LOSS
# are 500 because the client can do nothing about them.
HTTP_STATUS: dict[Code, int] = {
    Code.CANCELED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}


# JSON-RPC 2.0's own error codes for protocol faults (its spec, section 5.1).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

# The one table from canonical codes to JSON-RPC error codes (the client reads
# it backwards). The spec reserves -32768..-32000 and leaves -32099..-32000 to
# implementations for server errors: a code with no JSON-RPC meaning goes there
# as -32000 minus its gRPC number, so that number stays readable in the JSON-RPC
# code. error.data.code always carries the canonical name, which is what
# clients should switch on.
JSONRPC_CODE: dict[Code, int] = {
    Code.CANCELED: -32001,
    # UNKNOWN is not -32603: it is an error some code chose not to classify,
    # not a broken server invariant.
    Code.UNKNOWN: -32002,
    # The spec's own "Invalid params": a handler rejecting an argument and the
    # decoder rejecting a field read the same to a client. -32003 is unused.
    Code.INVALID_ARGUMENT: INVALID_PARAMS,
    Code.DEADLINE_EXCEEDED: -32004,
    Code.NOT_FOUND: -32005,
    Code.ALREADY_EXISTS: -32006,
    Code.PERMISSION_DENIED: -32007,
    # Also what an over-large body gets (with HTTP 413).
    Code.RESOURCE_EXHAUSTED: -32008,
    Code.FAILED_PRECONDITION: -32009,
    Code.ABORTED: -32010,
    # Not -32602: the arguments are well formed, the range depends on state
    # (a page past the end), which is what makes it OUT_OF_RANGE.
    Code.OUT_OF_RANGE: -32011,
    # The spec's "Method not found" is "does not exist / is not available",
    # which is what UNIMPLEMENTED means. -32012 is unused.
    Code.UNIMPLEMENTED: METHOD_NOT_FOUND,
    # The spec's "Internal JSON-RPC error". -32013 is unused.
    Code.INTERNAL: INTERNAL_ERROR,
    Code.UNAVAILABLE: -32014,
    Code.DATA_LOSS: -32015,
    Code.UNAUTHENTICATED: -32016,
}
