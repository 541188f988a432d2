"""gRPC stubs and connect-es modules as a user gets them: ``twofold proto``, then
grpcio-tools' protoc (the catalog's, and any other app's or ``.proto`` file's).

Generated at test time into a temporary directory, never committed.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import grpc_tools
from google.api import http_pb2  # type: ignore[import-untyped]

from tests.e2e.server import ROOT

# protoc's own include dir (google/protobuf/*.proto) and the .proto files
# googleapis-common-protos ships beside its modules (google/api/*.proto).
PROTOC_INCLUDE = Path(grpc_tools.__file__).parent / "_proto"
GOOGLEAPIS_INCLUDE = Path(http_pb2.__file__).parents[2]
CATALOG = "examples.catalog:app"
PROTO = "catalog/v1/catalog.proto"
MODULES = ("catalog.v1.catalog_pb2", "catalog.v1.catalog_pb2_grpc")


def _run(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def export(target: str, out: Path) -> Path:
    """``twofold proto TARGET``: the directory of the ``.proto`` files it wrote."""
    _run("-m", "twofold", "proto", target, "-o", str(out))
    return out


def protoc(*args: str | Path) -> None:
    """grpcio-tools' protoc, with protoc's own and googleapis' ``.proto`` files
    on its include path; a failure shows what protoc said."""
    includes = (f"-I{PROTOC_INCLUDE}", f"-I{GOOGLEAPIS_INCLUDE}")
    _run("-m", "grpc_tools.protoc", *includes, *map(str, args))


def imported(out: Path, names: Iterable[str]) -> list[ModuleType]:
    """The generated modules ``names`` from ``out``.

    Generated modules register their file in protobuf's default pool, where a
    file may live once per process: a copy another test imported is reused.
    """
    names = list(names)
    if not all(name in sys.modules for name in names):
        sys.path.insert(0, str(out))
        try:
            for name in names:
                importlib.import_module(name)
        finally:
            sys.path.remove(str(out))
    return [sys.modules[name] for name in names]


def generate(out: Path) -> tuple[ModuleType, ModuleType]:
    """``catalog_pb2`` and ``catalog_pb2_grpc``, generated under ``out`` (once a process)."""
    if not all(name in sys.modules for name in MODULES):
        proto = export(CATALOG, out / "proto")
        protoc(f"-I{proto}", f"--python_out={out}", f"--grpc_python_out={out}", PROTO)
    pb2, pb2_grpc = imported(out, MODULES)
    return pb2, pb2_grpc


def generate_es(out: Path, target: str = CATALOG, proto: str = PROTO, language: str = "js") -> Path:
    """``target`` as ES modules for connect-es (protoc with node_modules'
    protoc-gen-es; ``language`` js or ts), generated under ``out``: the
    directory to import them from."""
    node_modules = ROOT / "node_modules"
    exported = export(target, out / "proto")
    (out / "gen").mkdir()
    protoc(
        f"-I{exported}",
        f"--plugin=protoc-gen-es={node_modules / '.bin' / 'protoc-gen-es'}",
        f"--es_out={out / 'gen'}",
        f"--es_opt=target={language},import_extension=js",
        proto,
        # What an exported .proto may import (HTTP rules), as modules of their own.
        "google/api/annotations.proto",
        "google/api/http.proto",
    )
    # The generated modules import @bufbuild/protobuf: let Node find it from there.
    (out / "node_modules").symlink_to(node_modules, target_is_directory=True)
    return out / "gen"
