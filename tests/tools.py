"""Where the tests find the programs `make tools` installs (tools/requirements.txt)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS_BIN = ROOT / ".tools" / "bin"
# Go's build cache for the Go programs the tests build (tests/e2e/test_go_client.py,
# tests/gateway/test_go_upstream.py). Go keys every entry by its inputs (sources,
# flags, toolchain), so a stale one is never used; kept in the checkout, the
# grpc-go and protobuf-go packages are compiled once, not once per build and run.
GO_CACHE = ROOT / ".tools" / "go-build"


def tool(name: str) -> Path:
    """The path of an installed tool; a clear failure (not a skip) when it is missing,
    because CI installs every tool through `make test`."""
    path = TOOLS_BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make tools` (part of `make test`)", pytrace=False)
    return path
