"""Field numbers stay put as types evolve: the lock file and its check."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Annotated, Any

import msgspec
import pytest

from twofold import Service
from twofold.cli import main
from twofold.core.method import Empty
from twofold.protobuf import FieldNumber, Lock, LockError, ProblemKind, Schema


class Status(enum.Enum):
    NEW = "new"
    DONE = "done"


def version(*specs: Any, status: type[enum.Enum] = Status) -> Service:
    """A service whose one message, test.v1.Item, has the given fields."""
    item = msgspec.defstruct("Item", [*specs, ("status", status, next(iter(status)))])
    svc = Service("test.v1")

    async def put(item: Any, /) -> Empty:
        return Empty()

    put.__annotations__ = {"item": item, "return": Empty}
    svc.procedure(put)
    return svc


V1 = version(("id", int), ("name", str))
# V2 adds a field at the front and drops "name": nothing old moves.
V2 = version(("sku", str), ("id", int), ("price", str))


def numbers(schema: Schema, name: str = "test.v1.Item") -> dict[str, int]:
    return {f.name: f.number for f in schema.pool.FindMessageTypeByName(name).fields}


def test_a_lock_keeps_numbers_and_reserves_removed_fields(tmp_path: Path) -> None:
    path = tmp_path / "twofold.lock.json"
    first = Schema(V1, lock=path)
    assert numbers(first) == {"id": 1, "name": 2, "status": 3}
    assert first.problems == []  # no lock file yet: nothing to compare with
    first.lock.write(path)

    second = Schema(V2, lock=path)
    assert numbers(second) == {"id": 1, "status": 3, "sku": 4, "price": 5}
    message = second.descriptors[0].message_type[0]
    assert [(r.start, r.end) for r in message.reserved_range] == [(2, 3)]
    assert list(message.reserved_name) == ["name"]
    assert '  reserved 2;\n  reserved "name";' in second.text()["test/v1/test.proto"]
    assert {p.kind for p in second.problems} == {ProblemKind.MISSING}
    assert not second.breaking
    second.lock.write(path)

    # A field named like a removed one is new: it does not get the old number back.
    third = Schema(version(("id", int), ("name", str)), lock=path)
    assert numbers(third)["name"] == 6


def test_without_a_lock_numbers_follow_declaration_order() -> None:
    assert numbers(Schema(V2, lock=None)) == {"sku": 1, "id": 2, "price": 3, "status": 4}


def test_a_changed_type_is_breaking(tmp_path: Path) -> None:
    path = tmp_path / "lock.json"
    Schema(V1, lock=path).lock.write(path)
    changed = Schema(version(("id", str), ("name", str)), lock=path)
    (problem,) = changed.breaking
    assert problem.where == "test.v1.Item.id"
    assert "type changed from int64 to string" in problem.message


def test_an_explicit_number_that_moves_or_reuses_is_breaking(tmp_path: Path) -> None:
    path = tmp_path / "lock.json"
    Schema(V2, lock=None).lock.write(path)  # sku 1, id 2, price 3, status 4
    moved = Schema(
        version(("sku", str), ("id", Annotated[int, FieldNumber(7)]), ("price", str)), lock=path
    )
    assert "number changed from 2 to 7" in str(moved.breaking[0])
    Schema(V1, lock=None).lock.write(path)  # id 1, name 2, status 3
    Schema(version(("id", int)), lock=path).lock.write(path)  # name's 2 is now reserved
    reused = Schema(version(("id", int), ("title", Annotated[str, FieldNumber(2)])), lock=path)
    assert "reuses number 2, which was 'name''s" in str(reused.breaking[0])


def test_two_fields_with_one_number_are_an_error() -> None:
    with pytest.raises(LockError, match="number 1"):
        Schema(
            version(("a", Annotated[int, FieldNumber(1)]), ("b", Annotated[int, FieldNumber(1)])),
            lock=None,
        )


def test_enum_values_are_locked_too(tmp_path: Path) -> None:
    path = tmp_path / "lock.json"
    Schema(V1, lock=path).lock.write(path)

    class Status(enum.Enum):  # SHIPPED is new, and comes first
        SHIPPED = "shipped"
        NEW = "new"

    schema = Schema(version(("id", int), ("name", str), status=Status), lock=path)
    values = schema.pool.FindEnumTypeByName("test.v1.Status").values_by_name
    assert values["STATUS_NEW"].number == 1 and values["STATUS_SHIPPED"].number == 3
    assert "STATUS_DONE" in schema.text()["test/v1/test.proto"]  # reserved "STATUS_DONE"


def test_the_lock_file_is_sorted_json_with_one_line_per_entry(tmp_path: Path) -> None:
    path = tmp_path / "lock.json"
    Schema(V1, lock=None).lock.write(path)
    text = path.read_text()
    assert '"id": {"number": 1, "type": "int64"},' in text
    assert json.loads(text)["enums"]["test.v1.Status"]["values"] == {"NEW": 1, "DONE": 2}
    assert Lock.load(path).messages["test.v1.Item"].numbers == {"id": 1, "name": 2, "status": 3}
    path.write_text('{"version": 99}')
    with pytest.raises(LockError, match="version 1"):
        Lock.load(path)


# -- the command ----------------------------------------------------------------

TARGET = "tests.unit.protobuf.test_protobuf_numbering"


def test_update_then_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = str(tmp_path / "lock.json")
    assert main(["proto", f"{TARGET}:V1", "--lock", lock, "--check"]) == 1
    assert "no lock file" in capsys.readouterr().err
    assert main(["proto", f"{TARGET}:V1", "--lock", lock, "--update"]) == 0
    assert main(["proto", f"{TARGET}:V1", "--lock", lock, "--check"]) == 0
    assert main(["proto", f"{TARGET}:V2", "--lock", lock, "--check"]) == 1
    err = capsys.readouterr().err
    assert "test.v1.Item.sku: is not in the lock" in err
    assert "test.v1.Item.name: was removed" in err
    assert "--update" in err
    assert main(["proto", f"{TARGET}:V2", "--lock", lock, "--update"]) == 0
    assert main(["proto", f"{TARGET}:V2", "--lock", lock, "--check"]) == 0


CHANGED = version(("id", str), ("name", str))


def test_update_refuses_a_breaking_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = tmp_path / "lock.json"
    assert main(["proto", f"{TARGET}:V1", "--lock", str(lock), "--update"]) == 0
    before = lock.read_text()
    for mode in ("--update", "--check"):
        assert main(["proto", f"{TARGET}:CHANGED", "--lock", str(lock), mode]) == 1
        assert "breaking change: test.v1.Item.id: type changed" in capsys.readouterr().err
    assert lock.read_text() == before


def test_proto_writes_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["proto", f"{TARGET}:V1", "--lock", str(tmp_path / "none.json")]) == 0
    assert capsys.readouterr().out.startswith("// Generated by `twofold proto`")
    assert main(["proto", f"{TARGET}:V1", "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out/test/v1/test.proto").read_text().count("message Item {") == 1


def test_the_catalog_lock_is_committed_and_current() -> None:
    assert main(["proto", "examples.catalog:app", "--check"]) == 0
