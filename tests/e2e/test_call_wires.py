"""``twofold call`` on every wire and every stream kind, run as a subprocess against
real servers: the catalog (``twofold serve``, HTTP and gRPC ports) and a probe
app with a bidi stream (tests/e2e/call_app.py).

The types come from where a user would get them: ``/openapi.json`` for the
JSON wires, server reflection for the binary ones, or the app's own
definition with ``--app``.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.cli import ROOT, twofold
from tests.e2e.server import Server, start
from tests.tokens import ADMIN
from twofold import Code
from twofold.cli.call import INTERRUPTED, exit_status

AUTH = f"authorization: Bearer {ADMIN}"
APP = "examples.catalog:app"
WAIT = 30.0  # how long a test waits for a line before calling the CLI stuck


def source(catalog: Server, protocol: str, how: str) -> list[str]:
    """URL and flags for ``protocol`` with the types from ``how``: the server or ``--app``."""
    url = catalog.grpc_target if protocol == "grpc" else catalog.url
    flags = ["--protocol", protocol]
    if how == "app":
        flags += ["--app", APP]
    elif protocol in ("connect-proto", "grpc-web"):
        flags += ["--reflect", catalog.grpc_target]
    return [url, *flags]


WIRES = ["rest", "jsonrpc", "connect", "connect-proto", "grpc-web", "grpc"]
STREAM_WIRES = ["connect", "connect-proto", "grpc-web", "grpc"]


@pytest.fixture(scope="module")
def product(catalog: Server) -> dict[str, str]:
    new = {"product": {"name": "Wired", "price": "12.50", "category": "call-wires"}}
    made = twofold("call", catalog.url, "CreateProduct", "-d", json.dumps(new), "-H", AUTH)
    assert made.returncode == 0, made.stderr
    result: dict[str, str] = json.loads(made.stdout)
    return result


@pytest.mark.parametrize("how", ["server", "app"])
@pytest.mark.parametrize("protocol", WIRES)
def test_a_unary_call_on_every_wire(
    catalog: Server, product: dict[str, str], protocol: str, how: str
) -> None:
    args = source(catalog, protocol, how)
    got = twofold("call", args[0], "GetProduct", f'{{"id": {product["id"]}}}', *args[1:])
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith("{\n  ")  # pretty by default
    answer = json.loads(got.stdout)
    assert (answer["name"], answer["price"]) == ("Wired", "12.50")
    missing = twofold("call", args[0], "GetProduct", '{"id": 987654321}', "--raw", *args[1:])
    assert missing.returncode == exit_status(Code.NOT_FOUND), missing.stderr
    error = json.loads(missing.stderr)
    assert error["code"] == "not_found" and "987654321" in error["message"]


def test_raw_output_is_one_line_per_message(catalog: Server, product: dict[str, str]) -> None:
    got = twofold("call", catalog.url, "GetProduct", "-d", f'{{"id": {product["id"]}}}', "--raw")
    assert got.returncode == 0, got.stderr
    assert got.stdout.count("\n") == 1 and json.loads(got.stdout)["id"] == product["id"]


def _lines(stream: IO[str]) -> queue.Queue[str]:
    """The lines a process prints, as it prints them ("" once it closes stdout)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def calling(*args: str) -> Iterator[subprocess.Popen[str]]:
    """``twofold call ARGS`` running, its stdin and stdout pipes; killed if still running."""
    process = subprocess.Popen(
        [sys.executable, "-m", "twofold", "call", *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As a person's shell starts it: Ctrl-C (SIGINT) interrupts. A test
        # run started in the background (nohup, `cmd &`) ignores SIGINT, and
        # Python keeps an ignored SIGINT ignored, so the test restores it.
        preexec_fn=_interruptible,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


@pytest.mark.parametrize("protocol", [*STREAM_WIRES, "rest"])
def test_a_server_stream_is_printed_as_it_arrives(
    catalog: Server, product: dict[str, str], protocol: str
) -> None:
    category = f"watched-{protocol}"
    url, *flags = source(catalog, protocol, "server")
    watch = f'{{"category": "{category}"}}'
    new = {"name": "Watched", "price": "1.00", "category": category}
    with (
        httpx.Client(base_url=catalog.url, headers={"authorization": f"Bearer {ADMIN}"}) as http,
        calling(url, "WatchPrices", watch, "--raw", "--deadline", "60", *flags) as process,
    ):
        made = http.post("/products", json=new)
        assert made.status_code == 201, made.text
        lines = _lines(process.stdout)  # type: ignore[arg-type]
        price, line = 100, None
        # The watch starts at some point after the process does: change the
        # price until a change is printed, the stream still open.
        while line is None and price < 100 + WAIT * 4:
            price += 1
            changed = http.patch(f"/products/{made.json()['id']}", json={"price": f"{price}.00"})
            assert changed.status_code == 200, changed.text
            try:
                line = lines.get(timeout=0.25)
            except queue.Empty:
                assert process.poll() is None, process.stderr.read()  # type: ignore[union-attr]
        assert line, process.stderr.read()  # type: ignore[union-attr]
        change = json.loads(line)
        assert change["category"] == category and change["name"] == "Watched"
        assert process.poll() is None  # printed while the stream goes on
        process.send_signal(signal.SIGINT)  # how a person ends a watch
        assert process.wait(timeout=WAIT) == INTERRUPTED


IMPORT = "".join(
    json.dumps({"product": {"name": name, "price": "3.00", "category": "{category}"}}) + "\n"
    for name in ("First", "Second")
)


@pytest.mark.parametrize("how", ["server", "app"])
@pytest.mark.parametrize("protocol", STREAM_WIRES)
def test_a_client_stream_reads_ndjson(
    catalog: Server, protocol: str, how: str, tmp_path: Path
) -> None:
    category = f"imported-{protocol}-{how}"
    url, *flags = source(catalog, protocol, how)
    if protocol == "connect" and how == "server":
        # /openapi.json cannot show a client stream: reflection can, for JSON too.
        flags += ["--reflect", catalog.grpc_target]
    ndjson = IMPORT.replace("{category}", category)
    piped = twofold("call", url, "ImportProducts", "-d", "@-", "-H", AUTH, *flags, input=ndjson)
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout) == {"created": "2", "failed": []}
    file = tmp_path / "import.ndjson"
    file.write_text(ndjson.replace("First", "Third").replace("Second", "Fourth"))
    filed = twofold("call", url, "ImportProducts", "-d", f"@{file}", "-H", AUTH, *flags)
    assert filed.returncode == 0, filed.stderr
    listed = twofold("call", catalog.url, "ListProducts", json.dumps({"category": category}))
    names = sorted(p["name"] for p in json.loads(listed.stdout)["products"])
    assert names == ["First", "Fourth", "Second", "Third"]


def test_a_refused_stream_message_sets_the_exit_status(catalog: Server) -> None:
    url, *flags = source(catalog, "grpc", "server")
    bad = '{"product": {"name": "Cents", "price": "1.001", "category": "refused"}}\n'
    refused = twofold("call", url, "ImportProducts", "-d", "@-", "-H", AUTH, *flags, input=bad)
    assert refused.returncode == exit_status(Code.INVALID_ARGUMENT), refused.stderr
    broken = twofold("call", url, "ImportProducts", "-d", "@-", *flags, input="{nope\n")
    assert broken.returncode == 2 and "line 1 is not JSON" in broken.stderr


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start("tests.e2e.call_app:app", tmp_path_factory.mktemp("probe"))
    yield server
    server.stop()


@pytest.mark.parametrize("how", ["server", "app"])
def test_a_bidi_stream_answers_while_it_is_typed(probe: Server, how: str) -> None:
    flags = ["--app", "tests.e2e.call_app:app"] if how == "app" else []
    with calling(probe.grpc_target, "Chat", "-d", "@-", "--protocol", "grpc", "--raw", *flags) as (
        process
    ):
        assert process.stdin is not None and process.stdout is not None
        lines = _lines(process.stdout)
        for number, text in enumerate(["hello", "again"], 1):
            process.stdin.write(json.dumps({"text": text}) + "\n")
            process.stdin.flush()
            # The answer to this line comes before the next line is typed.
            answer = json.loads(lines.get(timeout=WAIT))
            assert answer["text"] == text.upper() and int(answer["number"]) == number
        process.stdin.close()
        assert lines.get(timeout=WAIT) == ""
        assert process.wait(timeout=WAIT) == 0


def test_the_catalog_quotes_each_typed_id(catalog: Server, product: dict[str, str]) -> None:
    # QuotePrices' types from the catalog's reflection; no credentials: it is public.
    with calling(catalog.grpc_target, "QuotePrices", "-d", "@-", "--protocol", "grpc", "--raw") as (
        process
    ):
        assert process.stdin is not None and process.stdout is not None
        lines = _lines(process.stdout)
        for product_id, found in [(product["id"], True), ("1000000000000", False)]:
            process.stdin.write(json.dumps({"product_id": product_id}) + "\n")
            process.stdin.flush()
            # The answer to this line comes before the next line is typed.
            answer = json.loads(lines.get(timeout=WAIT))
            assert (answer["product_id"], answer.get("found", False)) == (product_id, found)
            assert answer.get("price") == ("12.50" if found else None)
        process.stdin.close()
        assert lines.get(timeout=WAIT) == ""
        assert process.wait(timeout=WAIT) == 0


def test_bidi_needs_native_grpc(probe: Server) -> None:
    over_http = twofold(
        "call", probe.url, "Chat", "-d", '{"text": "hi"}', "--app", "tests.e2e.call_app:app"
    )
    assert over_http.returncode == exit_status(Code.UNIMPLEMENTED)
    assert "call it over grpc" in json.loads(over_http.stderr)["message"]


@pytest.mark.parametrize("protocol", ["grpc", "grpc-web", "connect-proto", "connect"])
def test_headers_and_deadline_on_the_binary_wires(probe: Server, protocol: str) -> None:
    url = probe.grpc_target if protocol == "grpc" else probe.url
    flags = ["--protocol", protocol]
    if protocol in ("grpc-web", "connect-proto"):
        flags += ["--reflect", probe.grpc_target]
    echoed = twofold("call", url, "EchoHeader", "-H", "X-Probe: hello", *flags)
    assert echoed.returncode == 0 and json.loads(echoed.stdout) == {"header": "hello"}, (
        echoed.stderr
    )
    late = twofold("call", url, "Nap", '{"seconds": 5}', "--deadline", "0.2", *flags)
    assert late.returncode == exit_status(Code.DEADLINE_EXCEEDED), late.stderr
    assert json.loads(late.stderr)["code"] == "deadline_exceeded"


@pytest.mark.parametrize("protocol", WIRES)
def test_an_unknown_method_names_the_near_ones(catalog: Server, protocol: str) -> None:
    url, *flags = source(catalog, protocol, "server")
    wrong = twofold("call", url, "GetProdcut", "{}", *flags)
    assert wrong.returncode == 2, wrong.stderr
    assert "no method 'GetProdcut'; did you mean GetProduct" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_binary_wires_need_the_types(catalog: Server) -> None:
    for protocol in ("connect-proto", "grpc-web"):
        refused = twofold("call", catalog.url, "GetProduct", "--protocol", protocol)
        assert refused.returncode == 2 and "--reflect HOST:PORT" in refused.stderr
    listed = twofold("call", catalog.grpc_target, "--protocol", "grpc")
    assert listed.returncode == 0, listed.stderr
    kinds = {line.split()[0]: line.split()[1] for line in listed.stdout.splitlines()}
    assert kinds["ImportProducts"] == "client-stream" and kinds["WatchPrices"] == "server-stream"
    assert kinds["QuotePrices"] == "bidi-stream"
    typo = twofold("call", catalog.grpc_target, "GetProduct", '{"idd": 1}', "--protocol", "grpc")
    assert typo.returncode == exit_status(Code.INVALID_ARGUMENT) and "idd" in typo.stderr
