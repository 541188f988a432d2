"""One method table's protobuf schema: files, descriptors, pool, codecs.

Built once (the gRPC server, Connect's binary codec and ``twofold proto``
each take one), with the field numbers of the lock file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from google.protobuf import descriptor_pb2, message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import DecodeError, Message

from twofold.core.code import Code
from twofold.core.definition import Service
from twofold.core.errors import Error
from twofold.core.method import Empty
from twofold.core.table import MethodTable
from twofold.protobuf import descriptors, model, text
from twofold.protobuf.binary import Codec, Compiler
from twofold.protobuf.mapping import Builder
from twofold.protobuf.numbering import Lock, Numbering, Problem, ProblemKind

T = TypeVar("T")
# The lock argument's default: the services' own proto_lock.
DEFAULT: Any = object()
_EMPTY = Empty()


class Schema:
    """The protobuf form of some services.

    ``lock`` is the lock file's path (None: number fields in declaration
    order, as a first ``--update`` would); by default the first service's
    ``proto_lock``, ``twofold.lock.json`` beside the module that made it.
    """

    def __init__(
        self,
        services: MethodTable | Service | Iterable[Service],
        *,
        lock: str | os.PathLike[str] | Lock | None = DEFAULT,
    ) -> None:
        if isinstance(services, MethodTable):
            services = services.services
        elif isinstance(services, Service):
            services = [services]
        self.services = list(services)
        if lock is DEFAULT:
            lock = default_lock_path(self.services)
        self.numbering = Numbering(lock if isinstance(lock, Lock) else Lock.load(lock))
        builder = Builder(self.services, self.numbering)
        self.files: list[model.File] = builder.build()
        self.messages = builder.messages
        self.enums = builder.enums
        self.descriptors: list[descriptor_pb2.FileDescriptorProto] = [
            descriptors.file_descriptor(f) for f in self.files
        ]
        self.pool: DescriptorPool = descriptors.pool(self.descriptors)
        self._classes = {
            m.full_name: message_factory.GetMessageClass(
                self.pool.FindMessageTypeByName(m.full_name)
            )
            for m in self.messages.values()
        }
        self._compiler = Compiler(self.messages, self.enums, self._classes)
        self._codecs: dict[Any, Codec[Any]] = {}

    @property
    def lock(self) -> Lock:
        """The lock as ``twofold proto --update`` would write it."""
        return self.numbering.result

    @property
    def problems(self) -> list[Problem]:
        """How the lock file differs from the types: missing entries and breaking changes."""
        return self.numbering.problems

    @property
    def breaking(self) -> list[Problem]:
        return [p for p in self.problems if p.kind is ProblemKind.BREAKING]

    def full_name(self, tp: type[Any]) -> str:
        """``catalog.v1.Product``; ``google.protobuf.Empty`` for :class:`twofold.Empty`."""
        return model.EMPTY if tp is Empty else self.messages[tp].full_name

    def message_class(self, tp: type[Any]) -> type[Message]:
        """A upb message class for ``tp``, built from this schema's descriptors."""
        if tp is Empty:
            return message_factory.GetMessageClass(self.pool.FindMessageTypeByName(model.EMPTY))
        return self._classes[self.messages[tp].full_name]

    def codec(self, tp: type[T]) -> Codec[T]:
        """The binary codec of a message type of this schema (cached)."""
        found = self._codecs.get(tp)
        if found is None:
            if tp is Empty:
                found = Codec(Empty, self._empty_decoder(), _encode_empty)
            elif tp in self.messages:
                found = self._compiler.codec(tp)
            else:
                raise KeyError(f"{tp!r} is not a message of this schema")
            self._codecs[tp] = found
        return found

    def _empty_decoder(self) -> Any:
        parse = self.message_class(Empty).FromString

        def decode(data: bytes) -> Empty:
            try:
                parse(data)  # unknown fields are fine; broken bytes are not
            except DecodeError:
                raise Error(Code.INVALID_ARGUMENT, "malformed protobuf message") from None
            return _EMPTY

        return decode

    def text(self) -> dict[str, str]:
        """Each file's ``.proto`` source, by path (``catalog/v1/catalog.proto``)."""
        return {f.path: text.render(f) for f in self.files}


def _encode_empty(_value: Any) -> bytes:
    return b""


def default_lock_path(services: list[Service]) -> Path | None:
    for service in services:
        path = getattr(service, "proto_lock", None)
        if path is not None:
            return Path(path)
    return None
