"""The catalog's gRPC stubs as a user gets them: ``twofold proto`` then grpcio-tools' protoc.

Generated at test time into a temporary directory, never committed.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import grpc_tools
from google.api import http_pb2  # type: ignore[import-untyped]

from tests.e2e.server import ROOT

# protoc's own include dir (google/protobuf/*.proto) and the .proto files
# googleapis-common-protos ships beside its modules (google/api/*.proto).
PROTOC_INCLUDE = Path(grpc_tools.__file__).parent / "_proto"
GOOGLEAPIS_INCLUDE = Path(http_pb2.__file__).parents[2]
MODULES = ("catalog.v1.catalog_pb2", "catalog.v1.catalog_pb2_grpc")


def _run(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def generate(out: Path) -> tuple[ModuleType, ModuleType]:
    """``catalog_pb2`` and ``catalog_pb2_grpc``, generated under ``out``.

    Generated modules register their file in protobuf's default pool, where a
    file may live once per process: a copy another test imported is reused.
    """
    if not all(name in sys.modules for name in MODULES):
        _run("-m", "twofold", "proto", "examples.catalog:app", "-o", str(out / "proto"))
        _run(
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTOC_INCLUDE}",
            f"-I{out / 'proto'}",
            f"-I{GOOGLEAPIS_INCLUDE}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            "catalog/v1/catalog.proto",
        )
        sys.path.insert(0, str(out))
        try:
            for name in MODULES:
                importlib.import_module(name)
        finally:
            sys.path.remove(str(out))
    pb2, pb2_grpc = (sys.modules[name] for name in MODULES)
    return pb2, pb2_grpc


def generate_es(out: Path) -> Path:
    """The catalog as ES modules for connect-es (protoc with node_modules'
    protoc-gen-es), generated under ``out``: the directory to import them from."""
    node_modules = ROOT / "node_modules"
    _run("-m", "twofold", "proto", "examples.catalog:app", "-o", str(out / "proto"))
    (out / "gen").mkdir()
    _run(
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTOC_INCLUDE}",
        f"-I{out / 'proto'}",
        f"-I{GOOGLEAPIS_INCLUDE}",
        f"--plugin=protoc-gen-es={node_modules / '.bin' / 'protoc-gen-es'}",
        f"--es_out={out / 'gen'}",
        "--es_opt=target=js,import_extension=js",
        "catalog/v1/catalog.proto",
        "google/api/annotations.proto",
        "google/api/http.proto",
    )
    # The generated modules import @bufbuild/protobuf: let Node find it from there.
    (out / "node_modules").symlink_to(node_modules, target_is_directory=True)
    return out / "gen"
