"""Dependencies over ``twofold serve``, on every wire: a session opened per call is
closed after it (committed on success; rolled back on an error, a deadline or a
client that leaves), held to the end of a stream; a provider's error is the
call's, with no traceback on the wire; the dependencies are in no contract."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e import dependency_app
from tests.e2e.server import Server, start
from twofold import Client, Code, Error
from twofold.protobuf import Schema

UNARY = ["rest", "jsonrpc", "connect", "connect-proto", "grpc-web", "grpc"]
STREAMING = ["rest", "connect", "connect-proto", "grpc-web", "grpc"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start("tests.e2e.dependency_app:app", tmp_path_factory.mktemp("deps"))
    try:
        yield server
    finally:
        server.stop()


def client(server: Server, protocol: str, **options: Any) -> Client:
    target = server.grpc_target if protocol == "grpc" else server.url
    return Client(dependency_app.service, target, protocol=protocol, **options)


def events(server: Server, until: str | None = None) -> list[str]:
    """How the sessions ended since the last look (waiting, bounded, for ``until``).

    Each session's opening is checked here: it came before its end.
    """
    seen: list[str] = []
    deadline = time.monotonic() + 10
    with Client(dependency_app.service, server.url) as c:
        while True:
            seen += c.take_events().events
            done = until is None or any(e.startswith(until) for e in seen)
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.02)
    ends = []
    for i, event in enumerate(seen):
        if event.startswith(("commit ", "rollback ", "close ")):
            number = event.split()[1]
            assert any(e.startswith(f"open {number} ") for e in seen[:i]), seen
            ends.append(event)
    return ends


@pytest.fixture(autouse=True)
def fresh(server: Server) -> None:
    events(server)  # forget what earlier tests did


def session_of(log: list[str]) -> int:
    return int(next(e for e in log if e.startswith("close ")).split()[1])


@pytest.mark.parametrize("protocol", UNARY)
def test_a_call_commits_and_closes_its_session(server: Server, protocol: str) -> None:
    with client(server, protocol) as c:
        note = c.get_note(id=1)
        created = c.create_note(note={"id": 2, "text": "new"})
    assert note.id == 1 and note.served_by > 0
    assert created.served_by == note.served_by + 1
    log = events(server)
    assert log == [
        f"commit {note.served_by}",
        f"close {note.served_by}",
        f"commit {created.served_by}",
        f"close {created.served_by}",
    ]


@pytest.mark.parametrize("protocol", UNARY)
def test_an_error_rolls_back_and_still_closes(server: Server, protocol: str) -> None:
    with client(server, protocol) as c:
        with pytest.raises(Error) as missing:
            c.get_note(id=-1)
        with pytest.raises(Error) as bug:
            c.get_note(id=13)
    assert missing.value.code is Code.NOT_FOUND
    assert bug.value.code is Code.INTERNAL
    log = events(server)
    first, second = int(log[0].split()[1]), int(log[2].split()[1])
    assert log == [
        f"rollback {first} NOT_FOUND",
        f"close {first}",
        f"rollback {second} ValueError",
        f"close {second}",
    ]


@pytest.mark.parametrize("protocol", UNARY)
def test_a_coded_error_from_a_provider_is_the_calls(server: Server, protocol: str) -> None:
    with client(server, protocol) as c, pytest.raises(Error) as refused:
        c.refused()
    assert refused.value.code is Code.PERMISSION_DENIED
    assert refused.value.message == "the session may not do that"
    log = events(server)
    number = session_of(log)
    # The session opened before the refusing provider is closed, told of the error.
    assert log == [f"rollback {number} PERMISSION_DENIED", f"close {number}"]


@pytest.mark.parametrize("protocol", UNARY)
def test_a_failing_provider_is_internal_without_its_insides(server: Server, protocol: str) -> None:
    with client(server, protocol) as c, pytest.raises(Error) as broken:
        c.broken()
    assert broken.value.code is Code.INTERNAL
    assert "secret" not in str(broken.value) and "Traceback" not in str(broken.value)
    log = events(server)
    number = session_of(log)
    assert log == [f"rollback {number} RuntimeError", f"close {number}"]


def test_a_failing_provider_leaks_nothing_on_the_raw_wires(server: Server) -> None:
    raw = httpx.post(f"{server.url}/deps.v1.Deps/Broken", json={})
    assert raw.status_code == 500
    assert "secret" not in raw.text and "Traceback" not in raw.text
    call = {"jsonrpc": "2.0", "id": 1, "method": "deps.v1.Deps/Broken", "params": {}}
    rpc = httpx.post(f"{server.url}/jsonrpc", json=call)
    assert rpc.json()["error"]["code"] == -32603
    assert "secret" not in rpc.text and "Traceback" not in rpc.text


@pytest.mark.parametrize("protocol", UNARY)
def test_a_deadline_rolls_back_and_closes(server: Server, protocol: str) -> None:
    with client(server, protocol, retry=None) as c, pytest.raises(Error) as late:
        c.slow(seconds=30)
    assert late.value.code is Code.DEADLINE_EXCEEDED
    log = events(server, until="close ")
    number = session_of(log)
    assert log == [f"rollback {number} CancelledError", f"close {number}"]


@pytest.mark.parametrize("protocol", STREAMING)
def test_a_stream_holds_its_session_to_the_end(server: Server, protocol: str) -> None:
    with client(server, protocol) as c:
        ticks = list(c.ticks(count=3))
    assert [t.n for t in ticks] == [0, 1, 2]
    assert all(t.still_open for t in ticks)
    number = ticks[0].served_by
    assert {t.served_by for t in ticks} == {number}
    assert events(server) == [f"commit {number}", f"close {number}"]


@pytest.mark.parametrize("protocol", STREAMING)
def test_a_stream_that_fails_rolls_back(server: Server, protocol: str) -> None:
    received = []
    with client(server, protocol) as c, pytest.raises(Error) as ended:
        for tick in c.ticks(count=4):
            received.append(tick)
    assert ended.value.code is Code.RESOURCE_EXHAUSTED
    assert len(received) == 4 and all(t.still_open for t in received)
    number = received[0].served_by
    assert events(server) == [f"rollback {number} RESOURCE_EXHAUSTED", f"close {number}"]


@pytest.mark.parametrize("protocol", STREAMING)
def test_a_stream_the_client_leaves_closes_its_session(server: Server, protocol: str) -> None:
    with client(server, protocol) as c:
        stream = c.ticks(count=1000, pause=0.05)
        first = next(iter(stream))
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    log = events(server, until="close ")
    assert log[-1] == f"close {first.served_by}"
    assert log[0].startswith(f"rollback {first.served_by} ")


def test_the_app_scoped_ledger_opened_once_at_startup(server: Server) -> None:
    with Client(dependency_app.service, server.url) as c:
        c.get_note(id=1)
        c.get_note(id=2)
    log = events(server)
    assert len([e for e in log if e.startswith("commit ")]) == 2
    assert "ledger open" not in log  # opened once, before the first test's call


def test_no_contract_mentions_a_dependency(server: Server) -> None:
    document = httpx.get(f"{server.url}/openapi.json").json()
    get = document["paths"]["/notes/{id}"]["get"]
    assert [p["name"] for p in get["parameters"] if p["in"] != "header"] == ["id"]
    ticks = document["paths"]["/ticks"]["get"]
    names = sorted(p["name"] for p in ticks["parameters"] if p["in"] != "header")
    assert names == ["count", "pause"]
    for name, schema in document["components"]["schemas"].items():
        assert not set(schema.get("properties", {})) & {"session", "ledger"}, name
    proto = "\n".join(Schema(dependency_app.app.table).text().values())
    assert "session" not in proto and "ledger" not in proto
    for method in dependency_app.app.table:
        fields = set(getattr(method.input_type, "__struct_fields__", ()))
        assert not fields & {"session", "ledger", "refused", "broken"}, method.full_name


@pytest.mark.parametrize("protocol", ["connect", "connect-proto", "grpc-web", "grpc"])
def test_a_stream_past_its_deadline_closes_its_session(server: Server, protocol: str) -> None:
    received = []
    with client(server, protocol, timeout=0.5, retry=None) as c, pytest.raises(Error) as late:
        for tick in c.ticks(count=1000, pause=0.05):
            received.append(tick)
    assert late.value.code is Code.DEADLINE_EXCEEDED
    assert received and all(t.still_open for t in received)
    number = received[0].served_by
    log = events(server, until="close ")
    assert log == [f"rollback {number} CancelledError", f"close {number}"]
