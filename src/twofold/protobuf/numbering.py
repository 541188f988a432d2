"""Stable field and enum value numbers: explicit ones, and the lock file.

A protobuf field is known on the wire by its number, never its name, so a
number must not change once clients exist. Numbers come from, in order:

1. an explicit :class:`FieldNumber` in the field's annotation;
2. the lock file (``twofold.lock.json``), a committed JSON record of every
   message's field numbers and every enum's value numbers;
3. for a field the lock does not know yet, the lowest number the message
   has never used (reserved ones count as used).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

LOCK_NAME = "twofold.lock.json"
LOCK_VERSION = 1
MAX_NUMBER = 2**29 - 1
# Numbers protobuf keeps for its own implementation; never assigned.
IMPL_RESERVED = range(19000, 20000)


@dataclasses.dataclass(frozen=True, slots=True)
class FieldNumber:
    """Pin a field's protobuf number: ``id: Annotated[int, FieldNumber(1)]``.

    Named so as not to be confused with msgspec's tags, which name the
    variants of a tagged union.
    """

    number: int

    def __post_init__(self) -> None:
        if not 1 <= self.number <= MAX_NUMBER or self.number in IMPL_RESERVED:
            raise ValueError(
                f"field number {self.number} is outside 1..{MAX_NUMBER} or in 19000..19999"
            )


class ProblemKind(enum.Enum):
    MISSING = "missing"
    """The lock lacks an entry: harmless, ``--update`` adds it."""
    BREAKING = "breaking"
    """Old clients would misread the wire: a type changed, a number moved or is reused."""


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    kind: ProblemKind
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclasses.dataclass(slots=True)
class Locked:
    """The numbers of one message (by field name) or enum (by member name)."""

    numbers: dict[str, int] = dataclasses.field(default_factory=dict)
    types: dict[str, str] = dataclasses.field(default_factory=dict)
    reserved: dict[str, int] = dataclasses.field(default_factory=dict)

    def used(self) -> set[int]:
        return {*self.numbers.values(), *self.reserved.values()}


@dataclasses.dataclass(slots=True)
class Lock:
    """The contents of a lock file; an empty one when the file does not exist yet."""

    messages: dict[str, Locked] = dataclasses.field(default_factory=dict)
    enums: dict[str, Locked] = dataclasses.field(default_factory=dict)
    path: Path | None = None
    exists: bool = False

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None) -> Lock:
        if path is None:
            return cls()
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path=path)
        except (OSError, ValueError) as exc:
            raise LockError(f"cannot read the lock file {path}: {exc}") from None
        if not isinstance(data, dict) or data.get("version") != LOCK_VERSION:
            raise LockError(f"{path}: not a version {LOCK_VERSION} twofold lock file")
        try:
            messages = {
                name: Locked(
                    {f: int(v["number"]) for f, v in entry.get("fields", {}).items()},
                    {f: str(v["type"]) for f, v in entry.get("fields", {}).items()},
                    {f: int(n) for f, n in entry.get("reserved", {}).items()},
                )
                for name, entry in data.get("messages", {}).items()
            }
            enums = {
                name: Locked(
                    {m: int(n) for m, n in entry.get("values", {}).items()},
                    {},
                    {m: int(n) for m, n in entry.get("reserved", {}).items()},
                )
                for name, entry in data.get("enums", {}).items()
            }
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise LockError(f"{path}: malformed entry ({exc!r})") from None
        return cls(messages, enums, path, True)

    def dumps(self) -> str:
        """JSON with one line per field or value, sorted, so that a change is a one-line diff."""
        out = [f'{{\n  "version": {LOCK_VERSION},\n  "messages": {{']
        out.append(",".join(_message_json(n, self.messages[n]) for n in sorted(self.messages)))
        out.append('\n  },\n  "enums": {')
        out.append(",".join(_enum_json(n, self.enums[n]) for n in sorted(self.enums)))
        out.append("\n  }\n}\n")
        return "".join(out)

    def write(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(self.dumps(), encoding="utf-8")


class LockError(Exception):
    """A lock file that cannot be read; the message is one line for the user."""


def _j(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _numbered(items: dict[str, int], render: Any, indent: str) -> str:
    ordered = sorted(items.items(), key=lambda kv: (kv[1], kv[0]))
    return ",".join(f"\n{indent}{_j(k)}: {render(k, n)}" for k, n in ordered)


def _message_json(name: str, m: Locked) -> str:
    fields = _numbered(
        m.numbers, lambda f, n: f'{{"number": {n}, "type": {_j(m.types.get(f, ""))}}}', " " * 8
    )
    reserved = _numbered(m.reserved, lambda _f, n: str(n), " " * 8)
    return (
        f'\n    {_j(name)}: {{\n      "fields": {{{fields}\n      }},'
        f'\n      "reserved": {{{reserved}{chr(10) + " " * 6 if reserved else ""}}}\n    }}'
    )


def _enum_json(name: str, e: Locked) -> str:
    values = _numbered(e.numbers, lambda _m, n: str(n), " " * 8)
    reserved = _numbered(e.reserved, lambda _m, n: str(n), " " * 8)
    return (
        f'\n    {_j(name)}: {{\n      "values": {{{values}\n      }},'
        f'\n      "reserved": {{{reserved}{chr(10) + " " * 6 if reserved else ""}}}\n    }}'
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Wanted:
    """A field or enum member to number: its name, type, and explicit number if any."""

    name: str
    type: str = ""
    explicit: int | None = None


class Numbering:
    """Assigns numbers for one build from a :class:`Lock`, and records the new lock.

    A field that disappears from a type keeps its number in the lock as
    *reserved*, so no later field can take it. :class:`Numbering` assigns the
    numbers for one build and collects :class:`Problem` s: entries the lock is
    missing (``twofold proto --update`` writes them) and breaking changes (a
    field whose type changed, a number moved or reused), which ``--check`` turns
    into a failing exit status.
    """

    def __init__(self, lock: Lock) -> None:
        self.lock = lock
        self.problems: list[Problem] = []
        self.result = Lock(dict(lock.messages), dict(lock.enums), lock.path, lock.exists)

    def message(self, full_name: str, wanted: Iterable[Wanted]) -> tuple[dict[str, int], Locked]:
        """Field numbers by name, and the message's lock entry (its reserved numbers)."""
        return self._assign(full_name, list(wanted), self.lock.messages, self.result.messages, 1)

    def enum(self, full_name: str, wanted: Iterable[Wanted]) -> tuple[dict[str, int], Locked]:
        """Value numbers by member name; 0 is left for the ``_UNSPECIFIED`` value."""
        return self._assign(full_name, list(wanted), self.lock.enums, self.result.enums, 1)

    def _assign(
        self,
        full_name: str,
        wanted: list[Wanted],
        old: dict[str, Locked],
        new: dict[str, Locked],
        first: int,
    ) -> tuple[dict[str, int], Locked]:
        locked = old.get(full_name)
        if locked is None:
            locked = Locked()
            if wanted and self.lock.exists:
                self._missing(full_name, "is not in the lock")
        names = {w.name for w in wanted}
        entry = Locked(
            reserved={
                **locked.reserved,
                **{n: num for n, num in locked.numbers.items() if n not in names},
            }
        )
        for name in entry.reserved.keys() - locked.reserved.keys():
            self._missing(f"{full_name}.{name}", "was removed: its number becomes reserved")
        explicit = {w.explicit for w in wanted if w.explicit is not None}
        taken = locked.used() | explicit
        numbers: dict[str, int] = {}
        for w in wanted:
            where = f"{full_name}.{w.name}"
            before = locked.numbers.get(w.name)
            number = w.explicit if w.explicit is not None else before
            if number is None:
                number = _next_free(taken, first)
                if self.lock.exists and full_name in old:
                    self._missing(where, "is not in the lock")
            elif before is not None and number != before:
                self._breaking(where, f"number changed from {before} to {number}")
            elif before is None and number in locked.used():
                holder = _holder(locked, number)
                if holder != w.name:  # a removed field restored with its own number is fine
                    self._breaking(where, f"reuses number {number}, which was {holder!r}'s")
            if number in numbers.values():
                holder = next(n for n, num in numbers.items() if num == number)
                raise LockError(f"{where}: number {number} is also {holder!r}'s")
            if before is not None and w.type and locked.types.get(w.name, w.type) != w.type:
                self._breaking(
                    where,
                    f"type changed from {locked.types[w.name]} to {w.type}; give the new "
                    "field a new name (it gets a new number, the old one is reserved)",
                )
            taken.add(number)
            numbers[w.name] = number
            entry.numbers[w.name] = number
            if w.type:
                entry.types[w.name] = w.type
        entry.reserved = {n: num for n, num in entry.reserved.items() if num not in explicit}
        new[full_name] = entry
        return numbers, entry

    def _missing(self, where: str, message: str) -> None:
        self.problems.append(Problem(ProblemKind.MISSING, where, message))

    def _breaking(self, where: str, message: str) -> None:
        self.problems.append(Problem(ProblemKind.BREAKING, where, message))


def _next_free(taken: set[int], first: int) -> int:
    # The lowest number never used: reserved ones count as used, so this is
    # safe, and it keeps numbers small (1-15 take one byte on the wire).
    number = first
    while number in taken or number in IMPL_RESERVED:
        number += 1
    if number > MAX_NUMBER:
        raise LockError("no field number left")
    return number


def _holder(locked: Locked, number: int) -> str:
    for name, n in (*locked.numbers.items(), *locked.reserved.items()):
        if n == number:
            return name
    return "?"
