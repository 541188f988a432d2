"""A client needs no server: what importing the client (or a generated module) loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from examples.catalog import service
from twofold.client.generator import generate

SERVER_SIDE = ("uvicorn", "sqlalchemy", "aiosqlite", "starlette", "examples")


def modules_after(code: str, cwd: Path | None = None) -> set[str]:
    script = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, check=True
    )
    return set(result.stdout.split())


def top_level(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_the_client_imports_no_server_dependency() -> None:
    loaded = top_level(modules_after("import twofold.client, twofold.cli.call"))
    assert not loaded & set(SERVER_SIDE), loaded & set(SERVER_SIDE)
    assert "httpx" in loaded
    # grpcio comes with the first gRPC client, protobuf with the first binary call.
    assert "grpc" not in loaded
    assert "google.protobuf" not in modules_after("import twofold.client")


def test_a_server_does_not_import_httpx() -> None:
    loaded = top_level(modules_after("import twofold; twofold.App"))
    assert "httpx" not in loaded
    assert "httpx" in top_level(modules_after("import twofold; twofold.Client"))


def test_a_generated_module_needs_only_the_client(tmp_path: Path) -> None:
    (tmp_path / "catalog_client.py").write_text(generate([service]))
    loaded = top_level(modules_after("import catalog_client", cwd=tmp_path))
    assert not loaded & set(SERVER_SIDE), loaded & set(SERVER_SIDE)
    assert {"catalog_client", "msgspec", "httpx", "twofold"} <= loaded
