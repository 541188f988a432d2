"""The shared workload data, loaded by path from the peer benchmark directory.

Every server in a run serves the same 1000 products, so the data comes from
one file, ``catalog_data.py`` in the peer directory (``../shared/bench-peers``
beside the repository, or ``$TWOFOLD_BENCH_PEERS``). It is loaded by path,
not copied, and not put on ``sys.path``: that directory also holds a
``bench.py`` that would shadow this package.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PEERS_ENV = "TWOFOLD_BENCH_PEERS"
STUBS_ENV = "TWOFOLD_BENCH_STUBS"  # where bench.stubs put the connectrpc stubs


def peers_dir() -> Path:
    """Where the peer apps, protos and catalog data live."""
    path = Path(os.environ.get(PEERS_ENV) or REPO.parent / "shared" / "bench-peers")
    if not (path / "catalog_data.py").is_file():
        raise SystemExit(
            f"peer benchmark directory not found at {path}: check out ../shared beside the "
            f"repository or set {PEERS_ENV}"
        )
    return path


def load_module(name: str, path: Path) -> ModuleType:
    """Import one file as module ``name`` without touching ``sys.path``.

    It is registered in ``sys.modules`` first, as an import would be:
    frameworks resolve the handlers' annotations through it.
    """
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_data = load_module("catalog_data", peers_dir() / "catalog_data.py")
PRODUCTS: dict[int, dict[str, Any]] = _data.PRODUCTS
NEW_PRODUCT: dict[str, Any] = _data.NEW_PRODUCT
