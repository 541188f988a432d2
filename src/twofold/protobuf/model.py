"""The protobuf view of a method table: what descriptors, ``.proto`` text and the codec share.

:mod:`twofold.protobuf.mapping` builds it from the Python types; everything
else reads it. Field numbers are already assigned here.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from twofold.core.method import Method

TIMESTAMP = "google.protobuf.Timestamp"
EMPTY = "google.protobuf.Empty"
WELL_KNOWN_FILES = {
    TIMESTAMP: "google/protobuf/timestamp.proto",
    EMPTY: "google/protobuf/empty.proto",
}


class Label(enum.Enum):
    SINGULAR = "singular"
    """Implicit presence: the zero value is not sent, and absence reads as zero."""
    OPTIONAL = "optional"
    """Explicit presence (proto3 ``optional``, or any message field)."""
    REPEATED = "repeated"
    MAP = "map"


@dataclasses.dataclass(frozen=True, slots=True)
class Scalar:
    """A proto scalar; ``text`` formats a Python value that travels as a string."""

    type: str  # "int64", "int32", "double", "string", "bytes", "bool"
    text: str = ""  # "decimal", "str" (UUID), "iso" (date, time), or "" (as is)


@dataclasses.dataclass(frozen=True, slots=True)
class MessageKind:
    """A message: one of ours (``cls``) or a well-known type (``cls`` None)."""

    full_name: str
    cls: type[Any] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class EnumKind:
    full_name: str
    cls: type[enum.Enum]


Kind = Scalar | MessageKind | EnumKind


@dataclasses.dataclass(slots=True)
class Field:
    name: str  # the proto field name: the Python attribute's, or a oneof variant's
    key: str  # what msgspec reads it as (the field's encode_name)
    kind: Kind
    label: Label
    number: int = 0
    map_key: Scalar | None = None
    # A tagged union field is a oneof: its name and, per member, the variant.
    oneof: str | None = None
    variant: type[Any] | None = None
    # What absence means on the Python side.
    has_default: bool = False
    nullable: bool = False
    json_name: str | None = None  # set only when it differs from protobuf's default
    doc: str = ""

    @property
    def type_text(self) -> str:
        """The type as a .proto file spells it, label included: the lock's ``type``."""
        base = _kind_text(self.kind)
        if self.label is Label.MAP:
            assert self.map_key is not None
            return f"map<{self.map_key.type}, {base}>"
        if self.label is Label.REPEATED:
            return f"repeated {base}"
        return base


def _kind_text(kind: Kind) -> str:
    return kind.type if isinstance(kind, Scalar) else kind.full_name


@dataclasses.dataclass(slots=True)
class Message:
    cls: type[Any]
    name: str
    package: str
    fields: list[Field]
    doc: str = ""
    reserved: dict[str, int] = dataclasses.field(default_factory=dict)
    tag_field: str | None = None  # a tagged Struct's tag, which decoding must restore
    tag: Any = None

    @property
    def full_name(self) -> str:
        return f"{self.package}.{self.name}"


@dataclasses.dataclass(slots=True)
class EnumValue:
    name: str  # ORDER_STATUS_OPEN
    number: int
    member: enum.Enum | None  # None for the added ..._UNSPECIFIED


@dataclasses.dataclass(slots=True)
class Enum:
    cls: type[enum.Enum]
    name: str
    package: str
    values: list[EnumValue]
    doc: str = ""
    reserved: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.package}.{self.name}"


@dataclasses.dataclass(slots=True)
class Rpc:
    method: Method
    input: str  # full names
    output: str


@dataclasses.dataclass(slots=True)
class ServiceModel:
    name: str
    doc: str
    rpcs: list[Rpc]


@dataclasses.dataclass(slots=True)
class File:
    """One .proto file: every message, enum and service of one package."""

    package: str
    path: str  # catalog/v1/catalog.proto
    messages: list[Message] = dataclasses.field(default_factory=list)
    enums: list[Enum] = dataclasses.field(default_factory=list)
    services: list[ServiceModel] = dataclasses.field(default_factory=list)
    imports: list[str] = dataclasses.field(default_factory=list)
