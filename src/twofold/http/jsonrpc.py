"""JSON-RPC 2.0 messages: what JSON-RPC over HTTP and over WebSocket share.

The request envelope and its parsing, the params of a method (by name or by
position, decoded by the method's input type), the names a method answers
to, and the response and error objects built from one error table
(:data:`twofold.core.code.JSONRPC_CODE`). No transport here: the wires read
and write the bytes.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from twofold.core import numbers
from twofold.core.code import INTERNAL_ERROR, INVALID_REQUEST, JSONRPC_CODE, PARSE_ERROR, Code
from twofold.core.details import BadRequest
from twofold.core.errors import Error, validation_error
from twofold.core.method import Method
from twofold.core.rpcnames import RpcNames
from twofold.core.table import MethodTable

logger = logging.getLogger("twofold")

Id = str | int | float | None


class Request(msgspec.Struct, forbid_unknown_fields=True):
    """The envelope; ``params`` stays raw until the method (and its type) is known.

    Unknown members are refused: a misspelt ``param`` would otherwise call the
    method with no arguments and look like it worked.
    """

    jsonrpc: Literal["2.0"]
    method: str
    params: msgspec.Raw = msgspec.Raw()
    # Absent (UNSET) makes a notification; null is a real id and gets an answer.
    id: Id | UnsetType = UNSET

    @property
    def notification(self) -> bool:
        return self.id is UNSET

    @property
    def request_id(self) -> Id:
        return None if isinstance(self.id, UnsetType) else self.id


class _Probe(msgspec.Struct):
    """Reads only the id of a request the envelope refused, to echo it back."""

    id: Id = None


_decode_request = msgspec.json.Decoder(Request).decode
_decode_probe = msgspec.json.Decoder(_Probe).decode
decode_list = msgspec.json.Decoder(list[msgspec.Raw]).decode
encode = msgspec.json.Encoder().encode
_INTERNAL_ERROR = encode(
    {"code": INTERNAL_ERROR, "message": "internal error", "data": {"code": "internal"}}
)
# A batch is a JSON array; looking at the first byte spares a copy of the body.
_BATCH = re.compile(rb"[ \t\r\n]*\[")
# msgspec reports bad UTF-8 in strings and nesting deeper than Python's
# recursion limit with these; hostile input must still get a -32700.
UNPARSABLE = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def is_batch(raw: bytes) -> bool:
    return _BATCH.match(raw) is not None


class Fault(Exception):
    """A protocol error: its JSON-RPC code, the canonical error, the id to echo."""

    def __init__(self, rpc_code: int, code: Code, message: str, id: Id = None) -> None:
        super().__init__(message)
        self.rpc_code = rpc_code
        self.error = Error(code, message)
        self.id = id


@dataclass(slots=True)
class Target:
    """A method as JSON-RPC calls it, with its params decoder built once."""

    method: Method
    decoder: numbers.Decoder[Any]
    # JSON-encoded wire names in declaration order: positional params are
    # spliced into an object under these keys, so both forms share one decoder
    # and its validation messages.
    names: tuple[bytes, ...]

    @classmethod
    def build(cls, method: Method) -> Target:
        info = msgspec.inspect.type_info(method.input_type)
        fields = getattr(info, "fields", ())
        names = tuple(encode(f.encode_name) for f in fields)
        return cls(method, numbers.Decoder(method.input_type), names)

    def decode(self, params: msgspec.Raw | bytes, request_id: Id) -> Any:
        """The request message from ``params``: raises only Error or Fault."""
        try:
            if not params:
                return self.decoder.decode(b"{}")
            if memoryview(params)[0] == ord("{"):
                return self.decoder.decode(params)
            values = decode_list(params)
            if len(values) > len(self.names):
                message = f"expected at most {len(self.names)} positional params, got {len(values)}"
                raise Error(Code.INVALID_ARGUMENT, message)
            pairs = [name + b":" + value for name, value in zip(self.names, values, strict=False)]
            return self.decoder.decode(b"{" + b",".join(pairs) + b"}")
        except msgspec.ValidationError as exc:
            raise validation_error(exc) from None
        except UNPARSABLE as exc:
            # params was skipped over, not decoded, when the envelope was read:
            # bad UTF-8 in a string or deep nesting inside it shows up only now.
            raise parse_fault(exc, request_id) from None


class Targets(RpcNames[Target]):
    """Every method of a table by the names JSON-RPC calls it (see RpcNames)."""

    def __init__(self, table: MethodTable) -> None:
        super().__init__(table, Target.build)

    def resolve(self, name: str, wire: str = "JSON-RPC", streams: bool = False) -> Target:
        return super().resolve(name, wire, streams)


def parse(raw: bytes | msgspec.Raw) -> Request:
    """One request object; raises :class:`Fault` (-32700 or -32600)."""
    try:
        return _decode_request(raw)
    except msgspec.ValidationError as exc:
        # Well-formed JSON that is not a request: echo its id if it has a
        # usable one. The probe also tells apart malformed JSON that the
        # envelope decoder gave up on before reaching the bad byte.
        try:
            probe = _decode_probe(raw)
        except msgspec.ValidationError:
            probe = _Probe()
        except UNPARSABLE as parse_exc:
            raise parse_fault(parse_exc) from None
        message = f"invalid request: {exc}"
        raise Fault(INVALID_REQUEST, Code.INVALID_ARGUMENT, message, probe.id) from None
    except UNPARSABLE as exc:
        raise parse_fault(exc) from None


def check_params(request: Request) -> None:
    """Refuse params that are neither an object nor an array (spec §4.2)."""
    params = request.params
    if params and memoryview(params)[0] not in b"{[":
        # Covers null too: the spec allows a structured value or no member.
        message = "params must be an object or an array"
        raise Fault(INVALID_REQUEST, Code.INVALID_ARGUMENT, message, request.request_id)


def parse_fault(exc: Exception, request_id: Id = None) -> Fault:
    if isinstance(exc, UnicodeDecodeError):
        message = "request body is not valid UTF-8"
    elif isinstance(exc, RecursionError):
        message = "JSON is nested too deeply"
    else:
        message = str(exc)
    return Fault(PARSE_ERROR, Code.INVALID_ARGUMENT, message, request_id)


def fault_response(fault: Fault) -> bytes:
    return error_response(fault.id, fault.error, fault.rpc_code)


def result_response(request_id: Id, result: bytes) -> bytes:
    """A response with ``result`` (already JSON)."""
    return b'{"jsonrpc":"2.0","result":' + result + b',"id":' + encode(request_id) + b"}"


def error_object(error: Error, rpc_code: int | None = None) -> bytes:
    """The ``error`` member; ``rpc_code`` overrides the table for protocol faults."""
    data: dict[str, Any] = {"code": error.code.wire_name}
    violations = error.violations
    if violations:
        data["violations"] = [{"field": v.field, "description": v.description} for v in violations]
    body = {
        "code": JSONRPC_CODE[error.code] if rpc_code is None else rpc_code,
        "message": error.message or error.code.wire_name,
        "data": data,
    }
    try:
        others = [d for d in error.details if not isinstance(d, BadRequest)]
        if others:
            data["details"] = [{"type": d.TYPE_NAME, **d.to_json()} for d in others]
        return encode(body)
    except Exception:
        # Only a bug gets here (a custom detail whose to_json fails or is not JSON):
        # log it and answer what is sure to encode, rather than no answer.
        logger.exception("cannot encode a JSON-RPC error")
        return _INTERNAL_ERROR


def error_response(request_id: Id, error: Error, rpc_code: int | None = None) -> bytes:
    """A response with an error object; ``rpc_code`` overrides the table for protocol faults."""
    encoded = error_object(error, rpc_code)
    return b'{"jsonrpc":"2.0","error":' + encoded + b',"id":' + encode(request_id) + b"}"
