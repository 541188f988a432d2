"""The peers' stubs, generated at bench time and never committed.

For connectrpc, the same two plugins as the peer directory's ``gen.sh`` (its
``gen/pb`` flavour, connectrpc's default protobuf-py runtime); for the
grpcio peer, protoc's own upb messages and servicer (``catalog_pb2``,
``catalog_pb2_grpc``). All run through ``grpc_tools.protoc`` into one
temporary directory: the module names do not collide.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

PROTO = Path("catalog") / "v1" / "catalog.proto"


def _plugin(name: str) -> str:
    # The venv's bin directory first: `python -m bench` may run without it on PATH.
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install the [bench] extra")
    return found


def generate(peers: Path, out: Path) -> Path:
    """Generate both peers' stubs for catalog.proto into ``out``."""
    proto_root = peers / "proto"
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "grpc_tools.protoc", f"-I{proto_root}",
        f"--plugin=protoc-gen-py={_plugin('protoc-gen-py')}", f"--py_out={out}",
        f"--plugin=protoc-gen-connectrpc={_plugin('protoc-gen-connectrpc')}",
        f"--connectrpc_out={out}", f"--python_out={out}", f"--grpc_python_out={out}",
        str(proto_root / PROTO),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"protoc failed: {done.stderr.strip()}")
    return out
