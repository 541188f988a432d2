"""How the envelope RPC wires (JSON-RPC, XML-RPC) name a method of the table."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Generic, TypeVar

from twofold.core.code import Code
from twofold.core.errors import Error
from twofold.core.method import Method, StreamKind
from twofold.core.table import MethodTable

T = TypeVar("T")


class RpcNames(Generic[T]):
    """Each method by its RPC name (``GetProduct``) when no other service has a
    method of that name, and always by its qualified name
    (``catalog.v1.CatalogService/GetProduct``), mapped to what a wire built for it.

    Qualified names contain "/", short names cannot: the two never clash.
    """

    def __init__(self, table: MethodTable, build: Callable[[Method], T]) -> None:
        self.targets: dict[str, T] = {}
        self.methods: dict[str, Method] = {}
        by_short_name: dict[str, list[str]] = defaultdict(list)
        for method in table:
            self.targets[method.full_name] = build(method)
            self.methods[method.full_name] = method
            by_short_name[method.name].append(method.full_name)
        self.ambiguous: dict[str, list[str]] = {}
        for short, full_names in by_short_name.items():
            if len(full_names) == 1:
                self.targets[short] = self.targets[full_names[0]]
                self.methods[short] = self.methods[full_names[0]]
            else:
                self.ambiguous[short] = full_names

    def names(self) -> list[str]:
        """Every name a caller may use, qualified and short, sorted."""
        return sorted(self.targets)

    def resolve(self, name: str, wire: str, streams: bool = False) -> T:
        """What was built for ``name``; UNIMPLEMENTED for an unknown or
        ambiguous method, or a stream where the transport (``streams`` False:
        one envelope in, one out) carries only unary calls."""
        target = self.targets.get(name)
        if target is not None:
            method = self.methods[name]
            if not streams and method.kind is not StreamKind.UNARY:
                kind = method.kind.value
                raise Error(Code.UNIMPLEMENTED, f"{name} is {kind} streaming: not over {wire}")
            return target
        if name in self.ambiguous:
            choices = ", ".join(self.ambiguous[name])
            message = f"{name} is defined by several services; call one of {choices}"
        else:
            message = f"no method {name}"
        raise Error(Code.UNIMPLEMENTED, message)
