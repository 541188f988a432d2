"""``twofold client``: a standalone, typed client module for some services.

The module it writes holds the message types as msgspec Structs (enums as
enums, constraints as ``Meta``), one :class:`~twofold.client.Rpc` per method
and two classes per service, ``<Service>Client`` and
``Async<Service>Client``, with one typed method per RPC
(``get_product(*, id: int) -> Product``; a server stream returns a
``Generator``, a client stream takes an ``Iterable``). It imports msgspec,
the standard library and :mod:`twofold.client` only, so a consumer needs
none of the server's code or its dependencies, and it passes ``mypy --strict``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import inspect
import keyword
import sys
import textwrap
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from msgspec import inspect as mi

from twofold.client.stubs import AsyncStub, Stub
from twofold.core.definition import Service
from twofold.core.method import Empty, HttpBinding, Idempotency, Method, StreamKind
from twofold.core.naming import pascal, snake

_MESSAGE = (mi.StructType, mi.DataclassType)
_DEFINED = (mi.StructType, mi.DataclassType, mi.TypedDictType, mi.NamedTupleType, mi.EnumType)
_SCALARS = {
    mi.AnyType: "Any",
    mi.NoneType: "None",
    mi.BoolType: "bool",
    mi.IntType: "int",
    mi.FloatType: "float",
    mi.StrType: "str",
    mi.BytesType: "bytes",
    mi.ByteArrayType: "bytearray",
    mi.MemoryViewType: "memoryview",
    mi.DateTimeType: "datetime.datetime",
    mi.DateType: "datetime.date",
    mi.TimeType: "datetime.time",
    mi.TimeDeltaType: "datetime.timedelta",
    mi.UUIDType: "uuid.UUID",
    mi.DecimalType: "decimal.Decimal",
    mi.RawType: "msgspec.Raw",
}
_CONTAINERS = {
    mi.ListType: "list",
    mi.SetType: "set",
    mi.FrozenSetType: "frozenset",
}
# Meta constraints, as msgspec.inspect names them on each node.
_CONSTRAINTS = ("gt", "ge", "lt", "le", "multiple_of", "pattern", "min_length", "max_length", "tz")
_DOC_KEYS = ("title", "description", "examples")


class GeneratorError(ValueError):
    """A definition the generator cannot write a client for; the message says why."""


def generate(services: Sequence[Service], *, command: str = "") -> str:
    """The source of a client module for ``services``.

    Protobuf numbers fields by number, not name: where the server's numbers
    (its lock file, explicit ones) are not the ones declaration order gives, the
    module pins them with ``FieldNumber``, so the binary wires agree too.

    Types are written from msgspec's own view of them (``msgspec.inspect``), so
    the module describes what goes over the wire whatever spelling the server
    code used: type aliases are expanded, dataclasses become Structs with the
    same fields, a TypedDict stays a TypedDict.
    """
    return _Module(services).write(command)


class _Names:
    """Module-level names, each given once."""

    def __init__(self, taken: Iterable[str]) -> None:
        self.taken = set(taken)

    def claim(self, *candidates: str) -> str:
        for name in candidates:
            if name not in self.taken and not keyword.iskeyword(name):
                self.taken.add(name)
                return name
        base, n = candidates[-1], 2
        while f"{base}{n}" in self.taken:
            n += 1
        self.taken.add(f"{base}{n}")
        return f"{base}{n}"


# Names the module imports; nothing it defines may take them.
_IMPORTED = {
    "datetime", "decimal", "enum", "uuid", "msgspec", "Meta", "UNSET", "UnsetType",
    "Annotated", "Any", "Literal", "NamedTuple", "NotRequired", "TypedDict", "Unpack",
    "AsyncClientOptions", "AsyncStub", "ClientOptions", "Empty", "HttpBinding", "Idempotency",
    "Rpc", "StreamKind", "FieldNumber", "AsyncIterable", "AsyncGenerator", "Iterable", "Generator",
    "Stub", "Target",
}  # fmt: skip
# Attributes of the stubs: a method named like one gets a trailing underscore.
_RESERVED = {n for cls in (Stub, AsyncStub) for n in dir(cls) if not n.startswith("_")}


class _Module:
    def __init__(self, services: Sequence[Service]) -> None:
        if not services:
            raise GeneratorError("no services to write a client for")
        self.services = list(services)
        self.names = _Names(_IMPORTED)
        self.type_names: dict[type, str] = {}
        self.nodes: dict[type, Any] = {}
        self.order: list[type] = []
        self.imports: set[str] = set()
        for service in self.services:
            for method in service.methods.values():
                for tp in (method.input_type, method.output_type):
                    self._collect(mi.type_info(tp))
        self.numbers = _pinned_numbers(self.services)

    # -- discovering the types ---------------------------------------------------

    def _collect(self, node: Any) -> None:
        """Every class the module must define, dependencies first."""
        if isinstance(node, mi.Metadata):
            self._collect(node.type)
        elif isinstance(node, _DEFINED):
            if node.cls in self.nodes:
                return
            self.nodes[node.cls] = node
            if node.cls is Empty:
                self.type_names[node.cls] = "Empty"  # twofold.client's own
                self.imports.add("Empty")
                return
            qualname = node.cls.__qualname__.replace(".", "")
            self.type_names[node.cls] = self.names.claim(node.cls.__name__, qualname)
            for field in getattr(node, "fields", ()):
                self._collect(field.type)
            self.order.append(node.cls)
        elif isinstance(node, mi.UnionType):
            for member in node.types:
                self._collect(member)
        elif isinstance(node, mi.DictType | mi.FrozenDictType):
            self._collect(node.key_type)
            self._collect(node.value_type)
        elif isinstance(node, mi.TupleType):
            for member in node.item_types:
                self._collect(member)
        elif hasattr(node, "item_type"):
            self._collect(node.item_type)
        elif isinstance(node, mi.CustomType | mi.ExtType):
            raise GeneratorError(f"{node!r} has no wire form a client can be written for")

    # -- types -----------------------------------------------------------------------

    def annotation(self, node: Any, *, plain: bool = False) -> str:
        """The annotation for ``node``; ``plain`` leaves out ``Meta`` (for parameters)."""
        meta: dict[str, Any] = {}
        if isinstance(node, mi.Metadata):
            schema = dict(node.extra_json_schema or {})
            for key in _DOC_KEYS:
                if key in schema:
                    meta[key] = schema.pop(key)
            if schema:
                meta["extra_json_schema"] = schema
            if node.extra:
                meta["extra"] = node.extra
            node = node.type
        for key in _CONSTRAINTS:
            value = getattr(node, key, None)
            if value is not None:
                meta[key] = value
        text = self._bare(node, plain)
        if plain or not meta:
            return text
        self.imports.add("Annotated")
        self.imports.add("Meta")
        args = ", ".join(f"{k}={self.value(v)}" for k, v in meta.items())
        return f"Annotated[{text}, Meta({args})]"

    def _bare(self, node: Any, plain: bool) -> str:
        kind = type(node)
        if kind in _SCALARS:
            text = _SCALARS[kind]
            self._import_for(text)
            return text
        if isinstance(node, _DEFINED):
            return self.type_names[node.cls]
        if kind in _CONTAINERS:
            return f"{_CONTAINERS[kind]}[{self.annotation(node.item_type, plain=plain)}]"
        if isinstance(node, mi.VarTupleType):
            return f"tuple[{self.annotation(node.item_type, plain=plain)}, ...]"
        if isinstance(node, mi.TupleType):
            items = ", ".join(self.annotation(t, plain=plain) for t in node.item_types)
            return f"tuple[{items or '()'}]"
        if isinstance(node, mi.DictType | mi.FrozenDictType):
            key = self.annotation(node.key_type, plain=plain)
            value = self.annotation(node.value_type, plain=plain)
            return f"dict[{key}, {value}]"
        if isinstance(node, mi.LiteralType):
            self.imports.add("Literal")
            return f"Literal[{', '.join(repr(v) for v in node.values)}]"
        if isinstance(node, mi.UnionType):
            return " | ".join(self.annotation(t, plain=plain) for t in node.types)
        raise GeneratorError(f"cannot write a client type for {node!r}")

    def _import_for(self, text: str) -> None:
        if text == "Any":
            self.imports.add("Any")
        elif "." in text:
            self.imports.add(text.split(".")[0])

    def field_annotation(self, field: Any, *, plain: bool = False) -> str:
        text = self.annotation(field.type, plain=plain)
        if _is_unset(field):
            self.imports.add("UnsetType")
            return f"{text} | UnsetType"
        return text

    # -- values ------------------------------------------------------------------------

    def value(self, v: Any) -> str:
        """Source that evaluates to ``v`` in the generated module."""
        if v is msgspec.UNSET:
            self.imports.add("UNSET")
            return "UNSET"
        if isinstance(v, enum.Enum) and type(v) in self.type_names:
            return f"{self.type_names[type(v)]}.{v.name}"
        if v is None or isinstance(v, bool | int | float | str | bytes):
            return repr(v)
        if isinstance(v, decimal.Decimal):
            self.imports.add("decimal")
            return f"decimal.Decimal({str(v)!r})"
        if isinstance(v, dt.datetime | dt.date | dt.time | dt.timedelta | dt.timezone):
            self.imports.add("datetime")
            return f"datetime.{v!r}" if not repr(v).startswith("datetime.") else repr(v)
        if isinstance(v, uuid.UUID):
            self.imports.add("uuid")
            return f"uuid.UUID({str(v)!r})"
        if isinstance(v, list | tuple | set | frozenset):
            items = [self.value(x) for x in v]
            if isinstance(v, list):
                return f"[{', '.join(items)}]"
            if isinstance(v, tuple):
                return f"({', '.join(items)}{',' if len(items) == 1 else ''})"
            return f"{type(v).__name__}([{', '.join(items)}])"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{self.value(k)}: {self.value(x)}" for k, x in v.items()) + "}"
        if isinstance(v, msgspec.Struct) and type(v) in self.type_names:
            args = ", ".join(f"{f}={self.value(getattr(v, f))}" for f in v.__struct_fields__)
            return f"{self.type_names[type(v)]}({args})"
        raise GeneratorError(f"cannot write the default value {v!r} into a client module")

    def default(self, field: Any) -> str | None:
        """The field's default as source, or None when it is required."""
        if _is_unset(field):
            return self.value(msgspec.UNSET)
        if field.default is not msgspec.NODEFAULT:
            return self.value(field.default)
        if field.default_factory is not msgspec.NODEFAULT:
            factory = field.default_factory
            if factory in (list, dict, set):
                return f"msgspec.field(default_factory={factory.__name__})"
            return f"msgspec.field(default_factory=lambda: {self.value(factory())})"
        return None

    # -- definitions ---------------------------------------------------------------------

    def define(self, cls: type) -> str:
        node = self.nodes[cls]
        name = self.type_names[cls]
        if isinstance(node, mi.EnumType):
            return self._enum(cls, name)
        if isinstance(node, mi.TypedDictType):
            return self._typed_dict(node, name)
        if isinstance(node, mi.NamedTupleType):
            return self._named_tuple(node, name)
        return self._struct(node, name)

    def _struct(self, node: Any, name: str) -> str:
        options = ["kw_only=True"]
        config = getattr(node.cls, "__struct_config__", None)
        if getattr(node, "forbid_unknown_fields", False):
            options.append("forbid_unknown_fields=True")
        for flag in ("omit_defaults", "frozen"):
            if config is not None and getattr(config, flag):
                options.append(f"{flag}=True")
        if getattr(node, "array_like", False):
            options.append("array_like=True")
        if getattr(node, "tag_field", None) is not None:
            options.append(f"tag_field={node.tag_field!r}, tag={node.tag!r}")
        renamed = {f.name: f.encode_name for f in node.fields if f.encode_name != f.name}
        if renamed:
            options.append(f"rename={renamed!r}")
        lines = [f"class {name}(msgspec.Struct, {', '.join(options)}):"]
        lines += _docstring(_own_doc(node.cls), "    ", blank=bool(node.fields))
        pinned = self.numbers.get(node.cls, {})
        if pinned:
            self.imports.update(("Annotated", "FieldNumber"))
        for field in node.fields:
            annotation = self.field_annotation(field)
            if field.name in pinned:
                annotation = f"Annotated[{annotation}, FieldNumber({pinned[field.name]})]"
            default = self.default(field)
            suffix = "" if default is None else f" = {default}"
            lines.append(f"    {field.name}: {annotation}{suffix}")
        if not node.fields and not _own_doc(node.cls):
            lines.append("    pass")
        return "\n".join(lines)

    def _enum(self, cls: type[enum.Enum], name: str) -> str:
        self.imports.add("enum")
        if issubclass(cls, enum.IntFlag):
            base = "enum.IntFlag"
        elif issubclass(cls, enum.Flag):
            base = "enum.Flag"
        elif issubclass(cls, enum.IntEnum):
            base = "enum.IntEnum"
        elif issubclass(cls, enum.StrEnum):
            base = "enum.StrEnum"
        elif issubclass(cls, str):
            base = "str, enum.Enum"
        elif issubclass(cls, int):
            base = "int, enum.Enum"
        else:
            base = "enum.Enum"
        lines = [f"class {name}({base}):"]
        lines += _docstring(_own_doc(cls), "    ", blank=True)
        lines += [f"    {m.name} = {m.value!r}" for m in cls]
        return "\n".join(lines)

    def _typed_dict(self, node: Any, name: str) -> str:
        self.imports.add("TypedDict")
        lines = [f"class {name}(TypedDict):"]
        lines += _docstring(_own_doc(node.cls), "    ", blank=bool(node.fields))
        for field in node.fields:
            annotation = self.annotation(field.type)
            if not field.required:
                self.imports.add("NotRequired")
                annotation = f"NotRequired[{annotation}]"
            lines.append(f"    {field.name}: {annotation}")
        return "\n".join(lines)

    def _named_tuple(self, node: Any, name: str) -> str:
        self.imports.add("NamedTuple")
        lines = [f"class {name}(NamedTuple):"]
        lines += _docstring(_own_doc(node.cls), "    ", blank=bool(node.fields))
        for field in node.fields:
            default = self.default(field)
            suffix = "" if default is None else f" = {default}"
            lines.append(f"    {field.name}: {self.annotation(field.type)}{suffix}")
        return "\n".join(lines)

    # -- methods ----------------------------------------------------------------------

    def rpc(self, method: Method, constant: str) -> str:
        args = [
            repr(method.service),
            repr(method.name),
            self.type_names[method.input_type],
            self.type_names[method.output_type],
            f"python_name={method.python_name or snake(method.name)!r}",
        ]
        if method.idempotency is not Idempotency.UNKNOWN:
            self.imports.add("Idempotency")
            args.append(f"idempotency=Idempotency.{method.idempotency.name}")
        if method.http is not None:
            self.imports.add("HttpBinding")
            args.append(f"http={_binding(method.http)}")
        if method.kind is not StreamKind.UNARY:
            self.imports.add("StreamKind")
            args.append(f"kind=StreamKind.{method.kind.name}")
        lines = [f"{constant} = Rpc(", *(f"    {a}," for a in args), ")"]
        return "\n".join(lines)

    def method(self, method: Method, constant: str, asynchronous: bool) -> str:
        name = method.python_name or snake(method.name)
        if name in _RESERVED:
            name += "_"
        if method.kind in (StreamKind.CLIENT, StreamKind.BIDI):
            return self._streaming_input(method, name, constant, asynchronous)
        node = self.nodes[method.input_type]
        params, args = ["self", "*"], []
        # A default that is a fresh object per call (a list...) is None in the
        # signature, so that no call shares one.
        fresh: list[tuple[str, str]] = []
        fields = list(getattr(node, "fields", ()))
        for field in fields:
            if field.name == "self":
                message = f"{method.full_name}: a field named 'self' cannot be a keyword"
                raise GeneratorError(message)
            annotation = self.field_annotation(field, plain=True)
            default = self.default(field)
            if default is None:
                params.append(f"{field.name}: {annotation}")
            elif default.startswith(("msgspec.field(", "[", "{", "set(", "frozenset(")):
                params.append(f"{field.name}: {annotation} | None = None")
                fresh.append((field.name, _fresh(default)))
            else:
                params.append(f"{field.name}: {annotation} = {default}")
            args.append(f"{field.name}={field.name}")
        # A field named timeout takes the name: this method's deadline is the client's.
        has_timeout = all(f.name != "timeout" for f in fields)
        if has_timeout:
            params.append("timeout: float | None = None")
        output = self.type_names[method.output_type]
        keyword = "async def" if asynchronous else "def"
        primitive, awaited = "invoke", "await " if asynchronous else ""
        if method.kind is StreamKind.SERVER:
            # An (async) iterator straight away: no coroutine to await first.
            output = _generator(output, asynchronous, self.imports)
            keyword, primitive, awaited = "def", "server_stream", ""
        lines = [f"    {keyword} {name}("]
        # ruff's ASYNC109 takes any async ``timeout`` for a missed asyncio.timeout.
        noqa = "  # noqa: ASYNC109" if keyword == "async def" else ""
        lines += [f"        {p},{noqa if p.startswith('timeout:') else ''}" for p in params]
        lines.append(f"    ) -> {output}:")
        lines += _docstring(method.description or method.summary, "        ")
        for field_name, value in fresh:
            lines.append(f"        if {field_name} is None:")
            lines.append(f"            {field_name} = {value}")
        call_args = ", ".join(args)
        request = f"{self.type_names[method.input_type]}({call_args})"
        deadline = ", timeout=timeout" if has_timeout else ""
        lines.append(f"        return {awaited}self.{primitive}({constant}, {request}{deadline})")
        return "\n".join(lines)

    def _streaming_input(self, method: Method, name: str, constant: str, asynchronous: bool) -> str:
        """A client or bidi stream: the messages as one positional iterable."""
        item, output = self.type_names[method.input_type], self.type_names[method.output_type]
        iterable = f"Iterable[{item}]"
        self.imports.add("Iterable")
        if asynchronous:
            self.imports.add("AsyncIterable")
            iterable = f"AsyncIterable[{item}] | {iterable}"
        keyword, awaited = ("async def", "await ") if asynchronous else ("def", "")
        primitive = "client_stream"
        if method.kind is StreamKind.BIDI:
            output = _generator(output, asynchronous, self.imports)
            keyword, awaited, primitive = "def", "", "bidi_stream"
        noqa = "  # noqa: ASYNC109" if keyword == "async def" else ""
        lines = [
            f"    {keyword} {name}(",
            "        self,",
            f"        requests: {iterable},",
            "        /,",
            "        *,",
            f"        timeout: float | None = None,{noqa}",
            f"    ) -> {output}:",
        ]
        lines += _docstring(method.description or method.summary, "        ")
        lines.append(
            f"        return {awaited}self.{primitive}({constant}, requests, timeout=timeout)"
        )
        return "\n".join(lines)

    def client(
        self, service: Service, rpcs: str, constants: dict[Method, str], asynchronous: bool
    ) -> str:
        prefix = "Async" if asynchronous else ""
        name = self.names.claim(
            f"{prefix}{service.name}Client",
            f"{prefix}{pascal(service.package.replace('.', '_'))}{service.name}Client",
        )
        base, options = (
            ("AsyncStub", "AsyncClientOptions") if asynchronous else ("Stub", "ClientOptions")
        )
        summary = service.full_name
        if service.description:
            summary += f": {service.description}"
        usage = textwrap.fill(
            f'``{name}(target, protocol="connect")``: ``target`` is the server\'s base URL '
            f"or an ASGI app; the options are those of ``twofold.client.{prefix}Client``.",
            88,
        )
        lines = [f"class {name}({base}):"]
        lines += _docstring(f"{summary}\n\n{usage}", "    ")
        lines += [
            "",
            f"    def __init__(self, target: Target, **options: Unpack[{options}]) -> None:",
            f"        super().__init__({rpcs}, target, **options)",
        ]
        for method in service.methods.values():
            lines += ["", self.method(method, constants[method], asynchronous)]
        return "\n".join(lines)

    # -- the module ----------------------------------------------------------------------

    def write(self, command: str) -> str:
        types = [self.define(cls) for cls in self.order]
        blocks: list[str] = []
        for service in self.services:
            short = snake(service.name).upper()
            full = f"{service.package.replace('.', '_').upper()}_{short}"
            constants = {
                m: self.names.claim(
                    *(f"{p}{snake(m.name).upper()}" for p in ("", f"{short}_", f"{full}_"))
                )
                for m in service.methods.values()
            }
            rpcs = self.names.claim(short, full)
            blocks.append("\n\n".join(self.rpc(m, c) for m, c in constants.items()))
            listed = "".join(f"    {c},\n" for c in constants.values())
            blocks.append(f"{rpcs} = (\n{listed})")
            blocks.append(self.client(service, rpcs, constants, asynchronous=False))
            blocks.append(self.client(service, rpcs, constants, asynchronous=True))
        names = ", ".join(s.full_name for s in self.services)
        made_by = f"`{command}`" if command else "`twofold client`"
        header = [
            f'"""A typed client of {names}.',
            "",
            f"Generated by {made_by}: do not edit, generate it again.",
            "It needs msgspec and twofold.client, none of the server's code.",
            '"""',
            "",
            "from __future__ import annotations",
            "",
        ]
        header += self._imports()
        body = [*types, *blocks]
        return "\n".join(header) + "\n\n\n" + "\n\n\n".join(body) + "\n"

    def _imports(self) -> list[str]:
        """The import block, sorted and wrapped as isort (and ruff) would have it."""
        used = self.imports
        typing_names = ["Annotated", "Any", "Literal", "NamedTuple", "NotRequired", "TypedDict"]
        client_names = ["AsyncClientOptions", "AsyncStub", "ClientOptions", "Rpc", "Stub", "Target"]
        client_names += [
            n for n in ("Empty", "HttpBinding", "Idempotency", "StreamKind") if n in used
        ]
        lines = [f"import {m}" for m in ("datetime", "decimal", "enum", "uuid") if m in used]
        abc_names = ["AsyncGenerator", "AsyncIterable", "Generator", "Iterable"]
        if any(n in used for n in abc_names):
            lines.append(_from("collections.abc", [n for n in abc_names if n in used]))
        lines.append(_from("typing", [*(n for n in typing_names if n in used), "Unpack"]))
        lines += ["", "import msgspec"]
        msgspec_names = [n for n in ("Meta", "UNSET", "UnsetType") if n in used]
        if msgspec_names:
            lines.append(_from("msgspec", msgspec_names))
        lines += ["", _from("twofold.client", client_names)]
        if "FieldNumber" in used:
            lines.append("from twofold.protobuf import FieldNumber")
        return lines


def _generator(output: str, asynchronous: bool, imports: set[str]) -> str:
    """A stream's return type: a generator, so that ``close()``/``aclose()`` are typed."""
    kind = "AsyncGenerator" if asynchronous else "Generator"
    imports.add(kind)
    return f"{kind}[{output}, None]" if asynchronous else f"{kind}[{output}, None, None]"


def _pinned_numbers(services: Sequence[Service]) -> dict[type, dict[str, int]]:
    """Per message type, its fields' protobuf numbers, where the server's are
    not 1, 2, 3... in declaration order, the numbers the written type would get."""
    try:
        from twofold.protobuf import Schema

        schema = Schema(services)
    except Exception:  # types protobuf cannot carry: the JSON wires still work
        return {}
    out: dict[type, dict[str, int]] = {}
    for tp, message in schema.messages.items():
        numbers = [f.number for f in message.fields]
        if numbers != list(range(1, len(numbers) + 1)):
            # A oneof's variants cannot be pinned one by one: only plain fields are.
            out[tp] = {f.name: f.number for f in message.fields if f.oneof is None}
    return out


def _from(module: str, names: Iterable[str]) -> str:
    # isort's order: CONSTANTS, then Classes, then functions; wrapped past 100 columns.
    ordered = sorted(names, key=lambda n: (not n.isupper(), not n[:1].isupper(), n))
    line = f"from {module} import {', '.join(ordered)}"
    if len(line) <= 100:
        return line
    return "\n".join([f"from {module} import (", *(f"    {n}," for n in ordered), ")"])


def _is_unset(field: Any) -> bool:
    # msgspec.inspect shows a field defaulting to UNSET as neither required nor defaulted.
    return (
        not field.required
        and field.default is msgspec.NODEFAULT
        and field.default_factory is msgspec.NODEFAULT
    )


def _fresh(default: str) -> str:
    prefix = "msgspec.field(default_factory="
    if default.startswith(prefix):
        inner = default[len(prefix) : -1]
        if inner.startswith("lambda: "):
            return inner.removeprefix("lambda: ")
        return {"list": "[]", "dict": "{}"}.get(inner, f"{inner}()")
    return default


def _binding(binding: HttpBinding) -> str:
    args = [repr(binding.verb), repr(binding.path)]
    defaults = HttpBinding("GET", "/")
    for name in ("body", "status", "location", "location_field"):
        value = getattr(binding, name)
        if value != getattr(defaults, name):
            args.append(f"{name}={value!r}")
    return f"HttpBinding({', '.join(args)})"


def _own_doc(cls: type) -> str:
    doc = cls.__dict__.get("__doc__")
    if not isinstance(doc, str) or doc.startswith(f"{cls.__name__}("):
        return ""  # none, or the signature dataclasses write when there is none
    return doc


def _docstring(text: str, indent: str, *, blank: bool = False) -> list[str]:
    """A docstring's lines, then an empty line when ``blank`` (before a class body)."""
    text = inspect.cleandoc(text).strip() if text else ""
    if not text:
        return []
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if text.endswith('"'):
        text = text[:-1] + '\\"'
    lines = text.splitlines()
    if len(lines) == 1:
        out = [f'{indent}"""{lines[0]}"""']
    else:
        out = [f'{indent}"""{lines[0]}']
        out += [f"{indent}{line}" if line else "" for line in lines[1:]]
        out.append(f'{indent}"""')
    return [*out, ""] if blank else out


def run(services: Sequence[Service], target: str, output: str | None) -> int:
    """``twofold client``: write the module to ``output`` (or stdout); 2 if it cannot be."""
    try:
        text = generate(services, command=f"twofold client {target}")
    except GeneratorError as exc:
        sys.stderr.write(f"twofold: error: {exc}\n")
        return 2
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0
