"""The twofold command, run as a user runs it: a subprocess."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
from openapi_spec_validator import validate

from examples.catalog import service
from tests.cli import twofold
from tests.e2e.server import Server, start
from tests.tokens import AUTHORIZATION


def test_routes_lists_every_method() -> None:
    result = twofold("routes", "examples.catalog:app")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["RPC", "REST", "JSON-RPC", "CONNECT"]
    for method in service.methods.values():
        row = next(line for line in lines if line.startswith(method.name + " "))
        assert method.full_name in row and f"POST {method.path}" in row
        if method.http:
            assert f"{method.http.verb} {method.http.path}" in row
    assert "POST /users/{user_id}/orders/{order_id}:cancel" in result.stdout


def test_openapi_command_prints_a_valid_document(tmp_path: Path) -> None:
    result = twofold("openapi", "examples.catalog:app")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    validate(doc)
    assert "/products/{id}" in doc["paths"]
    out = tmp_path / "openapi.json"
    assert twofold("openapi", "examples.catalog:app", "-o", str(out)).returncode == 0
    assert json.loads(out.read_text()) == doc


def test_served_document_matches_the_command(catalog: Server) -> None:
    served = httpx.get(f"{catalog.url}/openapi.json").json()
    validate(served)
    assert served == json.loads(twofold("openapi", "examples.catalog:app").stdout)


def test_bad_targets_are_one_line_errors() -> None:
    for target, expected in [
        ("nosuchmodule:app", "cannot import module 'nosuchmodule'"),
        ("examples.catalog:nope", "has no attribute 'nope'"),
        ("examples.catalog", "expected MODULE:ATTR"),
        ("examples.catalog:models", "not a twofold App or Service"),
    ]:
        result = twofold("routes", target)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1, result.stderr
        assert expected in result.stderr


def test_taken_port_is_a_one_line_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = twofold("serve", "examples.catalog:app", "--port", str(port))
    assert result.returncode == 1
    assert result.stderr == f"twofold: error: port {port} on 127.0.0.1 is already in use\n"


def test_serve_with_workers(tmp_path: Path) -> None:
    env = {"CATALOG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'w.db'}"}
    server = start("examples.catalog:app", tmp_path, env, "--workers", "2")
    try:
        created = [
            httpx.post(
                f"{server.url}/products",
                json={"name": f"W{i}", "price": "1.00", "category": "w"},
                headers=AUTHORIZATION,
            ).status_code
            for i in range(20)
        ]
        assert created == [201] * 20
        page = httpx.get(f"{server.url}/products", params={"category": "w", "page_size": 5})
        token = page.json()["next_page_token"]
        # A token made by one worker is good on every worker.
        for _ in range(6):
            r = httpx.get(
                f"{server.url}/products",
                params={"category": "w", "page_size": 5, "page_token": token},
            )
            assert r.status_code == 200, r.text
    finally:
        server.stop()
