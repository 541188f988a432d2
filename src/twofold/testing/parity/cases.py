"""Parity cases: a call and what it must answer, declared once, run on every wire.

A :class:`Case` is a method, a request and the expected output or error
code. :class:`Cases` bound to a name pytest collects (``test_books =
Cases(...)``) becomes one test per case and wire, ``get_book[grpc-web]``:
the pytest plugin collects it, and each test calls through the
``twofold_parity`` fixture. A wire that cannot carry the case skips it,
with the reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from twofold.core.code import Code
from twofold.core.method import Method, StreamKind
from twofold.testing.parity.answers import Outcome, Unsupported
from twofold.testing.parity.wires import CLIENT_WIRES, WIRES

if TYPE_CHECKING:
    import pytest

    from twofold.testing.parity.session import Wires


class _Anything:
    def __repr__(self) -> str:
        return "ANYTHING"


ANYTHING: Any = _Anything()


@dataclasses.dataclass(frozen=True)
class Case:
    """One call and its expected answer, the same on every wire.

    ``method`` is the RPC name (``"GetBook"``) or the Python name
    (``"get_book"``); ``request`` a dict of fields or an input message.
    Expect either an output, ``expect`` (a message, or a dict of its
    fields; a list of them for a server stream; compared after each wire's
    own decoding), or an ``error`` code
    (a :class:`~twofold.Code` or its wire name), with ``violations``, the
    fields a ``google.rpc.BadRequest`` must name, if given. With neither,
    any successful answer passes. ``headers`` go with the call.
    """

    name: str
    method: str
    request: Any = dataclasses.field(default_factory=dict)
    expect: Any = ANYTHING
    error: Code | str | None = None
    violations: Sequence[str] | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"a case's name is an identifier, got {self.name!r}")
        if self.error is not None:
            if self.expect is not ANYTHING:
                raise ValueError(f"case {self.name}: expect an output or an error, not both")
            code = self.error if isinstance(self.error, Code) else Code.from_wire_name(self.error)
            if code is Code.UNKNOWN and self.error not in (Code.UNKNOWN, "unknown"):
                # A misspelt code would read as UNKNOWN (as Connect parses one): refuse it.
                raise ValueError(f"case {self.name}: no code {self.error!r}")
            object.__setattr__(self, "error", code)
        elif self.violations is not None:
            raise ValueError(f"case {self.name}: violations go with an error")

    @property
    def payload(self) -> Any:
        """The request as JSON-like values (a message is turned into its fields)."""
        if isinstance(self.request, Mapping):
            return dict(self.request)
        return msgspec.to_builtins(self.request)

    def check(self, outcome: Outcome, method: Method, wire: str = "") -> None:
        """Raise AssertionError unless ``outcome`` is what this case expects."""
        where = f"{self.name} over {wire}" if wire else self.name
        if self.error is not None:
            code = Code.from_wire_name(self.error) if isinstance(self.error, str) else self.error
            if outcome.code != code.wire_name:
                raise AssertionError(
                    f"{where}: expected {code.wire_name}, got "
                    f"{outcome.code or 'success'}: {outcome}"
                )
            if self.violations is not None and outcome.violations != list(self.violations):
                raise AssertionError(
                    f"{where}: expected violations {list(self.violations)}, "
                    f"got {outcome.violations}"
                )
            return
        if outcome.code is not None:
            raise AssertionError(f"{where}: expected success, got {outcome.code}: {outcome}")
        if self.expect is ANYTHING:
            return
        expected = self.expect
        if method.kind is StreamKind.SERVER:
            # A server stream's expected output is the list of its messages.
            expected = [_typed(e, method.output_type) for e in expected]
        else:
            expected = _typed(expected, method.output_type)
        if outcome.data != expected:
            raise AssertionError(f"{where}: expected {expected!r}, got {outcome.data!r}")

    def run(self, wires: Wires, wire: str) -> Outcome:
        """Call this case over ``wire`` and check the answer; skip (pytest) if
        the wire cannot carry it."""
        import pytest

        try:
            outcome = wires.call(wire, self.method, self.payload, self.headers)
        except Unsupported as exc:
            pytest.skip(f"{wire}: {exc}")
        self.check(outcome, wires.wires.method(self.method), wire)
        return outcome


def _typed(value: Any, tp: type[Any]) -> Any:
    return value if isinstance(value, tp) else msgspec.convert(value, tp, strict=False)


class Cases:
    """Cases to run over ``wires``: bind them to a name pytest collects.

    ``test_books = Cases(Case(...), Case(...))`` in a test module gives one
    test per case and wire, named ``case[wire]``, each calling through the
    ``twofold_parity`` fixture (the plugin's serves ``twofold_app`` in
    process; override it to reach a running server). ``wires`` defaults to
    every wire of :data:`WIRES`; add :data:`CLIENT_WIRES` to go through
    :class:`twofold.AsyncClient` as well. ``marks`` apply to every test.
    """

    def __init__(
        self,
        *cases: Case,
        wires: Sequence[str] = WIRES,
        marks: Sequence[pytest.MarkDecorator] = (),
    ) -> None:
        names = [c.name for c in cases]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"two cases named {', '.join(twice)}")
        unknown = [w for w in wires if w not in WIRES + CLIENT_WIRES]
        if unknown:
            raise ValueError(f"no wire {unknown[0]!r}: one of {', '.join(WIRES + CLIENT_WIRES)}")
        self.cases = cases
        self.wires = tuple(wires)
        self.marks = tuple(marks)

    def __iter__(self) -> Any:
        return iter(self.cases)

    def as_class(self, name: str) -> type:
        """A class of one test method per case, parametrized by wire, for pytest."""
        import pytest

        def method(case: Case) -> Any:
            def test(self: object, twofold_parity: Wires, twofold_wire: str) -> None:
                case.run(twofold_parity, twofold_wire)

            test.__name__ = test.__qualname__ = case.name
            answer = case.error.wire_name if isinstance(case.error, Code) else "succeeds"
            test.__doc__ = f"{case.method}: {answer}"
            marked: Any = pytest.mark.parametrize("twofold_wire", self.wires)(test)
            for mark in self.marks:
                marked = mark(marked)
            return marked

        body: dict[str, Any] = {case.name: method(case) for case in self.cases}
        body["__cases__"] = frozenset(body)
        return type(name, (), body)
