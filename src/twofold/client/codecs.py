"""A client's message codecs: proto3 JSON and protobuf binary, by message type.

JSON is :mod:`twofold.protobuf.json`'s, the same the server reads and writes.
Binary is :mod:`twofold.protobuf`'s, built from the same Python types the
server's schema comes from, so no ``.proto`` file or protoc step is needed:
given the server's own :class:`~twofold.Service`, its lock file numbers the
fields exactly as the server does; given bare :class:`Rpc` s (a generated
module), fields are numbered as the types say (explicit ``FieldNumber`` s,
then declaration order), which is what the generator writes them for.

The protobuf schema is built on first use, so a client that only speaks JSON
never loads the protobuf runtime.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from twofold.client.rpc import Rpc
from twofold.core.code import Code
from twofold.core.definition import Service
from twofold.core.errors import Error
from twofold.core.method import Method
from twofold.protobuf import json as protojson

if TYPE_CHECKING:
    from twofold.protobuf import Schema


class MessageCodec(NamedTuple):
    """How one method's messages go on the wire: requests out, outputs in."""

    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]


def _no_handler(*_args: Any) -> Any:
    raise RuntimeError("a client-side method description has no handler")


class Codecs:
    """The JSON and binary codecs of the methods a client calls."""

    def __init__(self, rpcs: Sequence[Rpc[Any, Any]], services: Sequence[Service]) -> None:
        self._rpcs = list(rpcs)
        self._services = list(services)
        self._schema: Schema | None = None

    def json(self, rpc: Rpc[Any, Any]) -> MessageCodec:
        return MessageCodec(
            protojson.codec(rpc.input_type).encode, protojson.codec(rpc.output_type).decode
        )

    def proto(self, rpc: Rpc[Any, Any]) -> MessageCodec:
        schema = self.schema()
        return MessageCodec(
            schema.codec(rpc.input_type).encode, schema.codec(rpc.output_type).decode
        )

    def schema(self) -> Schema:
        if self._schema is None:
            from twofold.protobuf import Schema

            services = [*self._services, *self._described()]
            try:
                # The given services' lock file; bare Rpcs carry their numbers in their types.
                self._schema = Schema(services) if self._services else Schema(services, lock=None)
            except Exception as exc:  # a type protobuf cannot carry, two types with one name
                message = f"these methods cannot be called over protobuf: {exc}"
                raise Error(Code.UNIMPLEMENTED, message) from None
        return self._schema

    def _described(self) -> list[Service]:
        """Services for the Rpcs that no given service defines: just enough for a schema."""
        known = {s.full_name for s in self._services}
        out: dict[str, Service] = {}
        for rpc in self._rpcs:
            if rpc.service in known:
                continue
            package, _, name = rpc.service.rpartition(".")
            if not package:
                message = f"{rpc.name}: protobuf needs the method's service (package.Service)"
                raise Error(Code.UNIMPLEMENTED, message)
            service = out.get(rpc.service)
            if service is None:
                service = out[rpc.service] = Service(package, name, proto_lock=None)
            service.methods[rpc.name] = Method(
                rpc.service,
                rpc.name,
                rpc.input_type,
                rpc.output_type,
                _no_handler,
                python_name=rpc.python_name,
                kind=rpc.kind,
                idempotency=rpc.idempotency,
                http=rpc.http,
            )
        return list(out.values())
