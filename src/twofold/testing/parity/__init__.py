"""The parity kit: one call, every wire, the same answer.

Declare each :class:`Case` once (a call and its expected output or error
code); :class:`Cases` bound to a test name becomes one pytest test per case
and wire (``get_book[connect-proto]``), collected by the plugin. A case a
wire cannot carry is skipped there with the reason, never passed.
:class:`Wires` (sync) and :class:`AsyncWires` are the callers beneath, for
tests that chain calls: ``wires.call("grpc-web", "GetBook", {"id": 1})``
answers an :class:`Outcome`. See docs/testing-parity.md.
"""

from twofold.testing.parity.answers import Outcome, Unsupported
from twofold.testing.parity.cases import Case, Cases
from twofold.testing.parity.session import Wires, connect, serve
from twofold.testing.parity.wires import CLIENT_WIRES, WIRES, AsyncWires

__all__ = [
    "CLIENT_WIRES",
    "WIRES",
    "AsyncWires",
    "Case",
    "Cases",
    "Outcome",
    "Unsupported",
    "Wires",
    "connect",
    "serve",
]
