"""The parity kit (twofold.testing.parity): cases run as pytest tests, one per
case and wire, run by pytest itself (pytester) on a small app."""

from __future__ import annotations

import pytest

from docs_src.testing.shelf import app
from twofold import Code
from twofold.testing.parity import CLIENT_WIRES, WIRES, Case, Cases, Wires

HEADER = """
import pytest
from twofold import App, Code
from twofold.testing.parity import CLIENT_WIRES, WIRES, Case, Cases
from docs_src.testing.shelf import Book, app, service

@pytest.fixture
def twofold_app():
    return app
"""


def lines(*texts: str) -> list[str]:
    """fnmatch patterns that match ``texts`` literally, anywhere in a line."""
    return ["*" + t.replace("[", "[[]").replace("*", "[*]") + "*" for t in texts]


def run(pytester: pytest.Pytester, body: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_cases=HEADER + body)
    return pytester.runpytest("-p", "no:cacheprovider", "-v", "-rs", "--tb=short", *args)


def test_one_test_per_case_and_wire(pytester: pytest.Pytester) -> None:
    result = run(pytester, 'test_shelf = Cases(Case("found", "GetBook", {"id": 1}))')
    result.assert_outcomes(passed=len(WIRES))
    result.stdout.fnmatch_lines(lines(*(f"test_shelf::found[{wire}] PASSED" for wire in WIRES)))


def test_a_wrong_expectation_fails_on_every_wire(pytester: pytest.Pytester) -> None:
    body = 'test_shelf = Cases(Case("found", "get_book", {"id": 1}, expect=Book(1, "Emma")))'
    result = run(pytester, body)
    result.assert_outcomes(failed=len(WIRES))
    result.stdout.fnmatch_lines(lines("found over grpc-web: expected Book(id=1, title='Emma')"))


def test_a_wrong_code_fails_and_says_what_came(pytester: pytest.Pytester) -> None:
    body = 'test_shelf = Cases(Case("gone", "get_book", {"id": 9}, error=Code.PERMISSION_DENIED))'
    result = run(pytester, body)
    result.assert_outcomes(failed=len(WIRES))
    result.stdout.fnmatch_lines(
        lines("gone over connect-get: expected permission_denied, got not_found")
    )


def test_violations_are_compared(pytester: pytest.Pytester) -> None:
    body = """
test_shelf = Cases(
    Case("zero", "get_book", {"id": 0}, error="invalid_argument", violations=["title"]),
)
"""
    result = run(pytester, body)
    result.assert_outcomes(failed=len(WIRES))
    result.stdout.fnmatch_lines(lines("zero over rest: expected violations ['title'], got ['id']"))


def test_a_case_a_wire_cannot_carry_is_skipped_with_the_reason(pytester: pytest.Pytester) -> None:
    body = """
test_shelf = Cases(
    Case("adds", "add_book", {"title": "Emma"}),
    Case("text", "get_book", {"id": "one"}, error=Code.INVALID_ARGUMENT),
)
"""
    result = run(pytester, body)
    result.assert_outcomes(passed=2 * len(WIRES) - 6, skipped=6)
    result.stdout.fnmatch_lines(
        lines(
            "adds[rest] SKIPPED",
            "adds[rest-xml] SKIPPED",
            "adds[connect-get] SKIPPED",
            "text[grpc] SKIPPED",
        )
    )
    result.stdout.fnmatch_lines(
        lines(
            ": rest: AddBook has no REST route",
            ": rest-xml: AddBook has no REST route",
            ": connect-get: AddBook has side effects: Connect GET is for reads only",
            ": grpc: protobuf cannot hold the request",
        )
    )


def test_a_wire_that_answers_otherwise_fails_alone(pytester: pytest.Pytester) -> None:
    # An interceptor that breaks parity on one wire: only that wire's test fails.
    body = """
from twofold import Error

async def unfair(ctx, request, call_next):
    if ctx.protocol == "grpc-web":
        raise Error(Code.UNAVAILABLE, "not today")
    return await call_next(request, ctx)

@pytest.fixture
def twofold_app():
    return App(service, interceptors=[unfair])

test_shelf = Cases(Case("found", "get_book", {"id": 1}, expect={"id": 1, "title": "Dune"}))
"""
    result = run(pytester, body)
    result.assert_outcomes(passed=len(WIRES) - 1, failed=1)
    result.stdout.fnmatch_lines(lines("test_shelf::found[grpc-web] FAILED"))


def test_a_server_stream_is_a_list_of_messages(pytester: pytest.Pytester) -> None:
    body = """
from docs_src.testing.app import app as greeter

@pytest.fixture
def twofold_app():
    return greeter

hellos = [{"text": "Hello, Ada!"}, {"text": "Hello, Grace!"}]
test_greeter = Cases(
    Case("many", "greet_many", {"names": ["Ada", "Grace"]}, expect=hellos),
    Case("wrong", "greet_many", {"names": ["Ada"]}, expect=hellos),
    wires=WIRES + CLIENT_WIRES,
)
"""
    result = run(pytester, body)
    # JSON-RPC over HTTP, XML-RPC and Connect GET carry no streams: skipped, four per case.
    carried = len(WIRES + CLIENT_WIRES) - 4
    result.assert_outcomes(passed=carried, failed=carried, skipped=8)
    result.stdout.fnmatch_lines(
        lines(
            "many[jsonrpc] SKIPPED",
            "many[xmlrpc] SKIPPED",
            "many[client-grpc-web] PASSED",
            "wrong[rest] FAILED",
            ": connect-get: Connect GET carries unary calls only",
        )
    )


def test_through_the_client_as_well(pytester: pytest.Pytester) -> None:
    body = """
test_shelf = Cases(
    Case("found", "get_book", {"id": 1}, expect={"id": 1, "title": "Dune"}),
    wires=CLIENT_WIRES,
)
"""
    result = run(pytester, body)
    result.assert_outcomes(passed=len(CLIENT_WIRES))
    result.stdout.fnmatch_lines(lines("found[client-connect-proto] PASSED"))


def test_only_names_pytest_collects_are_collected(pytester: pytest.Pytester) -> None:
    result = run(pytester, 'shelf_cases = Cases(Case("found", "GetBook", {"id": 1}))')
    result.assert_outcomes()


def test_marks_apply_to_every_test(pytester: pytest.Pytester) -> None:
    body = """
test_shelf = Cases(
    Case("found", "get_book", {"id": 1}),
    wires=["rest", "grpc"],
    marks=[pytest.mark.skip(reason="marked")],
)
"""
    result = run(pytester, body)
    result.assert_outcomes(skipped=2)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Case("x y", "GetBook"), "a case's name is an identifier"),
        (lambda: Case("x", "GetBook", expect={}, error=Code.NOT_FOUND), "not both"),
        (lambda: Case("x", "GetBook", violations=["id"]), "violations go with an error"),
        (lambda: Case("x", "GetBook", error="no_such_code"), "no_such_code"),
        (lambda: Cases(Case("x", "GetBook"), Case("x", "GetBook")), "two cases named x"),
        (lambda: Cases(Case("x", "GetBook"), wires=["smoke-signals"]), "no wire 'smoke-signals'"),
    ],
)
def test_a_malformed_declaration_is_refused(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


def test_wires_in_a_plain_test() -> None:
    with Wires.serve(app) as wires:
        for wire in WIRES:
            outcome = wires.call(wire, "GetBook", {"id": 9})
            assert (outcome.code, outcome.ok) == ("not_found", False), wire
        assert wires.call("grpc-web", "get_book", {"id": 1}).data.title == "Dune"
        with pytest.raises(KeyError, match="no method 'Nope'"):
            wires.call("rest", "Nope")
        with pytest.raises(ValueError, match="no wire 'decoded'"):
            wires.call("decoded", "GetBook", {"id": 1})
    with pytest.raises(AttributeError, match="enter the Wires first"):
        wires.call("rest", "GetBook", {"id": 1})
