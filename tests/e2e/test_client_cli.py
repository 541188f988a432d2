"""``twofold call`` and ``twofold client`` run as a user runs them: subprocesses.

``twofold call`` knows nothing of the server's code: it reads
``/openapi.json``. ``twofold client`` writes a module that is then used, in
a fresh interpreter, against the running catalog.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import twofold
from tests.e2e import call_app
from tests.e2e.server import Server, free_port
from tests.e2e.threaded import serve
from tests.tokens import ADMIN
from twofold import Code, cli
from twofold.cli.call import exit_status

AUTH = f"authorization: Bearer {ADMIN}"  # the catalog's writes need a token


def call(*args: str) -> subprocess.CompletedProcess[str]:
    """``twofold call`` in this process (what the subprocess runs, minus start-up)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(["call", *args])
    return subprocess.CompletedProcess(args, status, out.getvalue(), err.getvalue())


def test_exit_statuses_follow_the_code() -> None:
    assert [exit_status(c) for c in Code] == list(range(11, 27))


def test_call_lists_the_methods(catalog: Server) -> None:
    result = twofold("call", catalog.url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.split()[:3] == ["GetProduct", "GET", "/products/{id}"] for line in lines)
    report = next(line for line in lines if line.startswith("GenerateReport"))
    assert report.split() == ["GenerateReport", "-", "catalog.v1.CatalogService"]


def test_call_over_each_protocol(catalog: Server) -> None:
    product = {"product": {"name": "Lamp", "price": "30.00", "category": "cli"}}
    created = call(catalog.url, "CreateProduct", json.dumps(product), "-H", AUTH)
    assert created.returncode == 0, created.stderr
    made = json.loads(created.stdout)
    assert made["id"].isdigit()  # Connect's JSON: an int64 is a string
    assert created.stdout.startswith('{\n  "id"')  # indented for people

    for protocol in ("rest", "jsonrpc", "connect"):
        got = twofold(
            "call", catalog.url, "GetProduct", f'{{"id": {made["id"]}}}', "--protocol", protocol
        )
        assert got.returncode == 0, (protocol, got.stderr)
        assert json.loads(got.stdout)["name"] == "Lamp"

    patched = twofold(
        "call",
        catalog.url,
        "UpdateProduct",
        json.dumps({"id": int(made["id"]), "product": {"price": "25.00"}}),
        "--protocol=rest",
        "-H",
        AUTH,
    )
    assert json.loads(patched.stdout)["price"] == "25.00", patched.stderr
    report = call(catalog.url, "catalog.v1.CatalogService/GenerateReport", "{}")
    assert report.returncode == 0 and "categories" in json.loads(report.stdout)


@pytest.mark.parametrize("protocol", ["rest", "jsonrpc", "connect"])
def test_errors_set_the_exit_status(catalog: Server, protocol: str) -> None:
    missing = call(catalog.url, "GetUser", '{"id": 987654}', "--protocol", protocol)
    assert missing.returncode == exit_status(Code.NOT_FOUND) == 15
    assert json.loads(missing.stderr) == {
        "code": "not_found",
        "message": "user 987654 does not exist",
    }
    invalid = twofold(
        "call",
        catalog.url,
        "CreateUser",
        '{"user": {"name": "A", "email": "nope"}}',
        "--protocol",
        protocol,
        "-H",
        AUTH,  # without credentials the body is not even looked at: 401
    )
    assert invalid.returncode == 13
    problem = json.loads(invalid.stderr)
    assert problem["details"][0]["fieldViolations"][0]["field"] == "user.email"


def test_what_the_user_got_wrong(catalog: Server) -> None:
    assert call(catalog.url, "GetProduct", "{not json").returncode == 2
    assert call(catalog.url, "GetProduct", "[1]").returncode == 2
    assert call(catalog.url, "GetProduct", "-H", "no colon").returncode == 2
    proto = call(catalog.url, "GetProduct", "--protocol", "connect-proto")
    # The binary wires need the message types, which /openapi.json does not give.
    assert proto.returncode == 2 and "--reflect HOST:PORT" in proto.stderr
    assert call(catalog.url, "GetProduct", "--protocol", "soap").returncode == 2
    unknown = call(catalog.url, "GetProdcut")
    assert unknown.returncode == 2
    assert "did you mean GetProduct" in unknown.stderr
    rest_only = call(catalog.url, "GenerateReport", "--protocol", "rest")
    assert rest_only.returncode == exit_status(Code.UNIMPLEMENTED)


def test_a_server_that_is_down() -> None:
    result = call(f"http://127.0.0.1:{free_port()}", "GetProduct", '{"id": 1}')
    assert result.returncode == exit_status(Code.UNAVAILABLE) == 24
    assert json.loads(result.stderr)["code"] == "unavailable"


@pytest.fixture(scope="module")
def probe_url() -> Iterator[str]:
    with serve(call_app.app) as url:
        yield url


def test_headers_and_timeout(probe_url: str) -> None:
    echoed = call(probe_url, "EchoHeader", "-H", "X-Probe: hello", "--header=x-other: 1")
    assert json.loads(echoed.stdout) == {"header": "hello"}, echoed.stderr
    late = call(probe_url, "Nap", '{"seconds": 2}', "--timeout", "0.2")
    assert late.returncode == exit_status(Code.DEADLINE_EXCEEDED) == 14
    on_time = call(probe_url, "Nap", '{"seconds": 0}', "--timeout", "5")
    assert on_time.returncode == 0 and json.loads(on_time.stdout) == {"header": "awake"}


GENERATED_USE = """
import sys
from decimal import Decimal

import catalog_client as cc
from twofold import Code, Error
from twofold.client import BearerToken

token = BearerToken(sys.argv[2])
for protocol in ("rest", "jsonrpc", "connect"):
    with cc.CatalogServiceClient(sys.argv[1], protocol=protocol, timeout=10, auth=token) as client:
        new = cc.NewProduct(name="Gen", price=Decimal("4.20"), category="generated")
        made = client.create_product(product=new)
        assert client.get_product(id=made.id) == made
        listed = client.list_products(category="generated", page_size=100)
        assert made in listed.products
        try:
            client.get_product(id=10**12)
        except Error as exc:
            assert exc.code is Code.NOT_FOUND
        else:
            raise AssertionError("no error")
heavy = {"sqlalchemy", "uvicorn", "examples"} & {m.split(".")[0] for m in sys.modules}
assert not heavy, heavy
print("ok")
"""


def test_generated_client_calls_the_running_catalog(catalog: Server, tmp_path: Path) -> None:
    written = twofold("client", "examples.catalog:app", "-o", str(tmp_path / "catalog_client.py"))
    assert written.returncode == 0, written.stderr
    (tmp_path / "use.py").write_text(textwrap.dedent(GENERATED_USE))
    result = subprocess.run(
        [sys.executable, "use.py", catalog.url, ADMIN],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr


def test_client_command_bad_target() -> None:
    result = twofold("client", "examples.catalog:nope")
    assert result.returncode == 2 and "has no attribute 'nope'" in result.stderr
