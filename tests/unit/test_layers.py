"""The package's layers, read from its imports: a path tells the layer, imports point down.

The graph counts every import the interpreter can run, those inside
functions included; imports under ``if TYPE_CHECKING:`` run only for the
type checker and do not count. Importing ``twofold.x.y`` also runs the
package ``twofold.x``'s ``__init__``, so an ``__init__`` that imports is an
edge like any other.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import twofold

PACKAGE = Path(twofold.__file__).parent

# Lower imports nothing higher; equal ranks may import each other's modules
# only if the graph stays free of cycles. ``twofold`` itself (the public
# surface) and ``__main__`` sit on top.
RANKS = {
    "core": 0,
    "http": 1,
    "protobuf": 1,
    "interceptors": 2,
    "contracts": 3,
    "wires": 3,
    "client": 3,
    "server": 4,
    # Gateway mode: an ASGI app of its own over the wires, beside the server.
    "gateway": 4,
    "cli": 5,
    # ``twofold check``: loads an app (server.loader) to compare its contracts
    # with a released baseline; a tool beside the command line.
    "compat": 5,
    # Test clients: start an App (server) and call it (client), in process.
    "testing": 5,
}
SERVER_SIDE = ("twofold.wires", "twofold.server", "twofold.contracts", "twofold.interceptors")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                yield from _imports_in(child)
            continue
        yield from _imports_in(node)


def _imports_in(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    else:
        yield from _imports(node)


@cache
def lazy_exports(package: str) -> dict[str, str]:
    """The names a package exports lazily (PEP 562): declared for the type checker
    under ``if TYPE_CHECKING:`` in its ``__init__``, loaded on first access."""
    path = modules()[package]
    found: dict[str, str] = {}
    if path.name != "__init__.py":
        return found
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.body:
                if isinstance(child, ast.ImportFrom) and child.module:
                    found.update(
                        {alias.asname or alias.name: child.module for alias in child.names}
                    )
    return found


def _owner(name: str) -> str | None:
    """The module of ours that importing ``name`` runs (a module, or its package)."""
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


@cache
def graph() -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for name, path in modules().items():
        edges: set[str] = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                # `from pkg import sub` runs the submodule (its package is its
                # parent, always loaded first); `from mod import name` runs mod.
                # A name a package exports lazily runs the module that defines it.
                targets = [
                    f"{base}.{alias.name}"
                    if f"{base}.{alias.name}" in modules()
                    else lazy_exports(base).get(alias.name, base)
                    if base in modules()
                    else base
                    for alias in node.names
                ]
            for target in targets:
                owner = _owner(target)
                if owner is not None and owner != name:
                    edges.add(owner)
        out[name] = frozenset(edges)
    return out


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANKS else parts[-1]


def reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph()[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def cycles() -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph()[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph():
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_function_level_imports_and_not_type_checking_ones() -> None:
    # cli.main imports the serving module inside a function, and only there.
    assert "twofold.server.serving" in graph()["twofold.cli.main"]
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import a\nelse:\n    import b\n"
        "def f():\n    import c\n"
    )
    assert [n.names[0].name for n in _imports(tree) if isinstance(n, ast.Import)] == ["b", "c"]


def test_every_module_is_in_a_layer() -> None:
    top = {"twofold", "twofold.__main__"}
    assert {m for m in modules() if m not in top and layer(m) not in RANKS} == set()


def test_there_is_no_import_cycle() -> None:
    assert cycles() == []


def test_imports_point_down() -> None:
    upward = sorted(
        f"{a} -> {b}"
        for a, targets in graph().items()
        for b in targets
        if layer(a) in RANKS and layer(b) in RANKS and RANKS[layer(b)] > RANKS[layer(a)]
    )
    assert upward == []


# Machinery several wires run, and no wire of its own: the exchange loop of the
# enveloped streams, and the JSON-RPC WebSocket connection (an App's and the gateway's).
SHARED_WIRE_MODULES = {"twofold.wires.exchange", "twofold.wires.websocket_connection"}


def test_a_wire_imports_no_other_wire_and_core_no_wire() -> None:
    for a, targets in graph().items():
        wires = {b for b in targets if b.startswith("twofold.wires.")}
        if a.startswith("twofold.wires."):
            assert wires <= {*SHARED_WIRE_MODULES, a}, a
        if a.startswith("twofold.core"):
            assert not wires, a


def test_the_client_imports_no_server_side_module() -> None:
    server = sorted(
        m
        for start in modules()
        if start.startswith("twofold.client")
        for m in reachable(start)
        if m.startswith(SERVER_SIDE)
    )
    assert server == []


def test_the_grpc_server_does_not_import_the_asgi_app() -> None:
    assert "twofold.server.app" not in reachable("twofold.server.grpc")


def _loaded_after(code: str) -> set[str]:
    script = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return set(done.stdout.split())


def test_at_run_time_too() -> None:
    # What the static graph says, checked against what the interpreter loads.
    client = _loaded_after("import twofold.client")
    assert {m for m in client if m.startswith(SERVER_SIDE)} == set()
    grpc_only = _loaded_after("import twofold.server.grpc")
    assert "twofold.server.app" not in grpc_only
    assert {m for m in grpc_only if m.startswith("twofold.wires")} == set()
