"""The upstream's schema: protobuf descriptors from .proto files, a descriptor set or reflection.

Whatever the source, the result is a :class:`Schema`: the FileDescriptorProtos
(whose options and comments the gateway reads) in a pool of their own, from
which message classes are made at run time. Nothing is generated or written.
"""

from __future__ import annotations

import importlib.resources
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.api import annotations_pb2, field_behavior_pb2  # type: ignore[import-untyped]
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, MethodDescriptor, ServiceDescriptor

# Options are read from the FileDescriptorProtos, whose parser knows only the
# extensions imported before it runs: google.api.http and field_behavior.
OPTION_EXTENSIONS = (annotations_pb2.http, field_behavior_pb2.field_behavior)


class SchemaError(Exception):
    """The schema cannot be loaded: a .proto that does not compile, a descriptor
    set that does not parse, reflection that times out or answers nonsense."""


@dataclass
class Schema:
    """Every file of the upstream's API, and the services to front."""

    files: dict[str, descriptor_pb2.FileDescriptorProto]
    services: tuple[str, ...]
    pool: descriptor_pool.DescriptorPool = field(init=False)
    _classes: dict[str, type[Any]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.pool = descriptor_pool.DescriptorPool()
        added: set[str] = set()

        def add(name: str, trail: tuple[str, ...] = ()) -> None:
            if name in added:
                return
            proto = self.files.get(name)
            if proto is None:
                raise SchemaError(f"{trail[-1] if trail else name} imports {name}, not given")
            if name in trail:
                raise SchemaError(f"import cycle: {' -> '.join((*trail, name))}")
            for dep in proto.dependency:
                add(dep, (*trail, name))
            try:
                self.pool.Add(proto)
            except Exception as exc:  # protobuf raises TypeError or its own errors
                raise SchemaError(f"{name}: {exc}") from None
            added.add(name)

        for name in sorted(self.files):
            add(name)
        for service in self.services:
            try:
                self.pool.FindServiceByName(service)
            except KeyError:
                raise SchemaError(f"no service {service} in the schema") from None

    def service(self, name: str) -> ServiceDescriptor:
        return self.pool.FindServiceByName(name)

    def methods(self) -> Iterable[MethodDescriptor]:
        for name in self.services:
            yield from self.service(name).methods

    def message_class(self, descriptor: Descriptor) -> type[Any]:
        """The message class of a descriptor, made once."""
        found = self._classes.get(descriptor.full_name)
        if found is None:
            found = self._classes[descriptor.full_name] = message_factory.GetMessageClass(
                descriptor
            )
        return found

    def method_options(self, method: MethodDescriptor) -> descriptor_pb2.MethodOptions:
        """A method's options as descriptor_pb2 reads them, extensions included.

        The pool's own options object would resolve extensions in that pool
        only; re-reading the FileDescriptorProto's bytes with
        google.api.annotations imported makes ``http`` an ordinary extension.
        """
        service = method.containing_service
        proto = self.files[service.file.name]
        for s in proto.service:
            if s.name == service.name:
                for m in s.method:
                    if m.name == method.name:
                        return m.options
        return descriptor_pb2.MethodOptions()  # pragma: no cover - the pool came from files

    def comment(self, path: Sequence[int], file: str) -> str:
        """The leading comment of an element of ``file`` (source_code_info), stripped."""
        info = self.files[file].source_code_info
        for location in info.location:
            if list(location.path) == list(path):
                text = location.leading_comments or location.trailing_comments
                return "\n".join(line.strip() for line in text.strip().splitlines())
        return ""


def from_descriptor_set(data: bytes, services: Sequence[str] = ()) -> Schema:
    """A schema from a serialized FileDescriptorSet (``protoc --descriptor_set_out
    --include_imports``); with no ``services``, every service in it."""
    fds = descriptor_pb2.FileDescriptorSet()
    try:
        fds.ParseFromString(data)
    except Exception:
        raise SchemaError("the descriptor set is not a serialized FileDescriptorSet") from None
    files = {f.name: f for f in fds.file}
    return Schema(files, tuple(services) or all_services(files.values()))


def all_services(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> tuple[str, ...]:
    found: list[str] = []
    for f in files:
        # The services of libraries the API imports are not the API.
        if f.package.startswith(("google.", "grpc.")):
            continue
        found.extend(f"{f.package}.{s.name}" if f.package else s.name for s in f.service)
    return tuple(found)


def include_paths() -> list[str]:
    """Where imports of google/api/*.proto and the well-known types resolve: the
    .proto files googleapis-common-protos and grpcio-tools ship."""
    import google.api

    api = Path(next(iter(google.api.__path__))).parent.parent
    tools = importlib.resources.files("grpc_tools") / "_proto"
    return [str(api), str(tools)]


def from_proto_files(
    paths: Sequence[str], imports: Sequence[str] = (), services: Sequence[str] = ()
) -> Schema:
    """A schema from .proto files, compiled by grpcio-tools' protoc in process.

    Each file's directory is an import path, then ``imports``, then the
    directories of google/api and the well-known types.
    """
    try:
        from grpc_tools import protoc
    except ImportError:
        raise SchemaError(
            "reading .proto files needs grpcio-tools: pip install 'twofold[gateway]'"
        ) from None
    roots = [*dict.fromkeys(str(Path(p).resolve().parent) for p in paths), *imports]
    for p in paths:
        if not Path(p).is_file():
            raise SchemaError(f"no such .proto file: {p}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        args = [
            "protoc",
            *(f"-I{r}" for r in [*roots, *include_paths()]),
            f"--descriptor_set_out={out}",
            "--include_imports",
            "--include_source_info",
            *(str(Path(p).resolve()) for p in paths),
        ]
        # protoc prints its diagnostics to stderr itself; the status says whether it compiled.
        if protoc.main(args) != 0 or not out.exists():
            raise SchemaError(f"protoc could not compile {', '.join(paths)} (see above)")
        return from_descriptor_set(out.read_bytes(), services)
