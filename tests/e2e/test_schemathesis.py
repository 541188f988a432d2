"""schemathesis, a fuzzer written by others, against the live catalog's /openapi.json.

Every check (``--checks all``) in every phase: the documented examples, the
coverage phase's edge cases, fuzzing in positive and negative mode, and
stateful sequences that follow the document's links (create -> get). The
run must find nothing. Writes carry the development admin token, so they are
exercised, not only refused with 401. A fixed seed and bounded examples keep
it deterministic and short; tests/e2e/schemathesis.toml holds the few things
a schema cannot say, each with its reason.

It runs asking for JSON answers (on SQLite and PostgreSQL), and with
``Accept: application/xml`` (on SQLite: the XML is rendered from the same
answers whatever the database), where every answer (problems too) is XML and
is read and checked the way the document's ``xml`` objects say
(tests/e2e/schemathesis_hooks.py).

The same run against a service that breaks its own contract
(tests/e2e/broken_app.py) must fail, in either representation: the proof
that this one could.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.databases import Database
from tests.e2e.server import Server, start
from tests.tokens import ADMIN
from tests.tools import tool

CONFIG = Path(__file__).with_name("schemathesis.toml")
# XML answers read by the document's xml objects, and what XML text cannot
# carry as generated left to JSON (the module says why).
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
SEED = "20261121"
ACCEPTS = ["application/json", "application/xml"]


def schemathesis(
    server: Server, tmp: Path, max_examples: int, accept: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    command = [
        str(tool("st")),
        "--config-file",
        str(CONFIG),
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "all",
        "--seed",
        SEED,
        "--max-examples",
        str(max_examples),
        # Nothing carried over from an earlier run: the same cases every time.
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--no-color",
        "--header",
        f"Authorization: Bearer {ADMIN}",
        "--header",
        f"Accept: {accept}",
        *extra,
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS), "TWOFOLD_FUZZ_ACCEPT": accept}
    return subprocess.run(command, cwd=tmp, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture
def fresh_catalog(database: Database, tmp_path: Path) -> Iterator[Server]:
    """A catalog of its own: the fuzzer writes thousands of rows other tests need not see."""
    # A long poll held no longer than the fuzzer waits for WatchPrices (schemathesis.toml).
    env = {**database.env(tmp_path), "CATALOG_MAX_POLL_WAIT": "0.2"}
    server = start("examples.catalog:app", tmp_path, env, "--no-grpc")
    yield server
    server.stop()


@pytest.mark.postgresql
def test_the_catalog_passes_every_check(fresh_catalog: Server, tmp_path: Path) -> None:
    passes_every_check(fresh_catalog, tmp_path, "application/json")


def test_the_catalog_passes_every_check_in_xml(fresh_catalog: Server, tmp_path: Path) -> None:
    """On SQLite only: XML is rendered from the same answers whatever the
    database keeps them in, and the JSON pass runs on both databases."""
    passes_every_check(fresh_catalog, tmp_path, "application/xml")


def passes_every_check(catalog: Server, tmp_path: Path, accept: str) -> None:
    paths = httpx.get(f"{catalog.url}/openapi.json").json()["paths"]
    operations = sum(len(item) for item in paths.values())
    run = schemathesis(catalog, tmp_path, max_examples=10, accept=accept)
    report = run.stdout + run.stderr
    # Zero failures. (A warning, a heuristic about how much generated data an
    # operation refused, may appear: deleting ordered products and cancelling
    # cancelled orders is FAILED_PRECONDITION, 400, see the config.)
    assert run.returncode == 0, report
    assert "FAILURES" not in report and "Failures:" not in report, report
    assert f"Tested: {operations}" in report, report  # every operation, none skipped
    # Every answer read: links followed out of XML answers too.
    assert "Cannot deserialize" not in report and "Failed to extract" not in report, report
    # Written with the token, not only refused: the fuzzer's products are there.
    listed = httpx.get(f"{catalog.url}/products", params={"page_size": 100}).json()
    assert listed["products"], report


@pytest.mark.parametrize("accept", ACCEPTS)
def test_the_same_run_fails_a_route_that_breaks_its_schema(tmp_path: Path, accept: str) -> None:
    server = start("tests.e2e.broken_app:app", tmp_path, None, "--no-grpc")
    try:
        # Its one broken route found, the run may stop: that is the proof.
        run = schemathesis(server, tmp_path, 5, accept, "--max-failures", "1")
    finally:
        server.stop()
    report = run.stdout + run.stderr
    assert run.returncode != 0, report
    assert "Response violates schema" in report and "GET /widgets/{id}" in report, report
