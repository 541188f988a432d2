"""connectrpc stubs for the peer, generated at bench time and never committed.

The same two plugins as the peer directory's ``gen.sh`` (its ``gen/pb``
flavour, connectrpc's default protobuf-py runtime), run through
``grpc_tools.protoc`` into a temporary directory.
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
    """Generate protobuf-py messages and Connect stubs for catalog.proto into ``out``."""
    proto_root = peers / "proto"
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "grpc_tools.protoc", f"-I{proto_root}",
        f"--plugin=protoc-gen-py={_plugin('protoc-gen-py')}", f"--py_out={out}",
        f"--plugin=protoc-gen-connectrpc={_plugin('protoc-gen-connectrpc')}",
        f"--connectrpc_out={out}",
        str(proto_root / PROTO),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"protoc failed: {done.stderr.strip()}")
    return out
