"""``twofold check``, run as a user runs it: against exported contracts and git history.

A small shop service in a git repository of its own evolves: a field removed
is reported on both sides (OpenAPI and, by buf, protobuf) with exit status 1;
a field added is not, exit 0; an old contract that cannot be read is exit
status 2 with one line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.server import ROOT
from twofold.compat import protobuf

BUF = ROOT / "node_modules" / ".bin" / "buf"

SHOP = '''\
"""A shop."""

import msgspec

from twofold import Service


class Item(msgspec.Struct):
    """An item for sale."""

    id: int
    {fields}


service = Service("shop.v1")
items = service.resource("items")


@items.get
async def get_item(id: int) -> Item:
    """Get an item."""
    raise NotImplementedError
'''
V1 = "name: str\n    price: str"
WITHOUT_NAME = "price: str"
WITH_NOTE = "name: str\n    price: str\n    note: str | None = None"


def _twofold(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # The shop's directory has no node_modules: TWOFOLD_BUF says where buf is.
    return subprocess.run(
        [sys.executable, "-m", "twofold", *args],
        cwd=cwd,
        env={**os.environ, "TWOFOLD_BUF": str(BUF)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        capture_output=True,
        check=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def first_commit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository whose first commit holds shop.py and its lock file, made once."""
    if not BUF.exists():
        pytest.fail(f"{BUF} is missing: run `npm ci` (part of `make test`)", pytrace=False)
    repository = tmp_path_factory.mktemp("shop")
    (repository / "shop.py").write_text(SHOP.format(fields=V1))
    locked = _twofold("proto", "shop:service", "--update", cwd=repository)
    assert locked.returncode == 0, locked.stderr
    _git("init", "-q", cwd=repository)
    _git("add", "shop.py", "twofold.lock.json", cwd=repository)
    _git("commit", "-q", "-m", "v1", cwd=repository)
    return repository


@pytest.fixture
def shop(first_commit: Path, tmp_path: Path) -> Path:
    """A copy of that repository (.git included) of the test's own, to change."""
    shutil.copytree(first_commit, tmp_path / "shop")
    return tmp_path / "shop"


def test_a_removed_field_breaks_both_contracts(shop: Path) -> None:
    (shop / "shop.py").write_text(SHOP.format(fields=WITHOUT_NAME))
    result = _twofold("check", "shop:service", "--against", "git:HEAD", "--json", cwd=shop)
    assert result.returncode == 1, result.stderr
    findings = json.loads(result.stdout)
    assert all(set(f) == {"side", "rule", "location", "message"} for f in findings)
    openapi = [f for f in findings if f["side"] == "openapi"]
    assert [(f["rule"], f["location"]) for f in openapi] == [
        ("RESPONSE_PROPERTY_REMOVED", "GET /items/{id} response 200 body name")
    ]
    # The lock keeps price at number 3 and reserves 2: buf sees one field deleted
    # (FILE), with its number and name reserved (so WIRE_JSON has nothing to say),
    # and no field renumbered.
    protobuf = [f for f in findings if f["side"] == "protobuf"]
    assert [f["rule"] for f in protobuf] == ["FIELD_NO_DELETE"]
    assert protobuf[0]["location"].startswith("shop/v1/shop.proto:")
    assert '"name"' in protobuf[0]["message"]
    assert result.stderr.strip().splitlines()[-1] == "twofold: 2 breaking changes against git:HEAD"


def test_an_added_field_breaks_nothing(shop: Path) -> None:
    (shop / "shop.py").write_text(SHOP.format(fields=WITH_NOTE))
    result = _twofold("check", "shop:service", "--against", "git:HEAD", cwd=shop)
    assert (result.returncode, result.stdout) == (0, ""), result.stderr
    assert result.stderr == "twofold: no breaking change against git:HEAD\n"


def test_against_a_directory_of_exported_contracts(shop: Path) -> None:
    old = shop / "contracts"
    old.mkdir()
    assert (
        _twofold("openapi", "shop:service", "-o", str(old / "openapi.json"), cwd=shop).returncode
        == 0
    )
    assert _twofold("proto", "shop:service", "-o", str(old / "proto"), cwd=shop).returncode == 0
    (shop / "shop.py").write_text(SHOP.format(fields=WITHOUT_NAME))
    result = _twofold("check", "shop:service", "--against", str(old), cwd=shop)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "openapi RESPONSE_PROPERTY_REMOVED GET /items/{id} response 200 body name: "
        "removed (it was required): clients that read it break"
    )
    assert lines[1].startswith("protobuf FIELD_NO_DELETE shop/v1/shop.proto:")
    assert len(lines) == 2


def test_against_one_contract_says_the_other_was_not_compared(shop: Path) -> None:
    exported = _twofold("openapi", "shop:service", "-o", "old.json", cwd=shop)
    assert exported.returncode == 0
    result = _twofold("check", "shop:service", "--against", "old.json", cwd=shop)
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        "twofold: old.json has no .proto contract: not compared",
        "twofold: no breaking change against old.json",
    ]


def test_the_catalog_against_its_own_contracts(tmp_path: Path) -> None:
    """The example catalog's documents are large and use every feature: the same
    contracts on both sides must give nothing, however they are compared."""
    cwd = ROOT
    assert (
        _twofold(
            "openapi", "examples.catalog:app", "-o", str(tmp_path / "openapi.json"), cwd=cwd
        ).returncode
        == 0
    )
    assert (
        _twofold("proto", "examples.catalog:app", "-o", str(tmp_path / "proto"), cwd=cwd).returncode
        == 0
    )
    result = _twofold("check", "examples.catalog:app", "--against", str(tmp_path), cwd=cwd)
    assert (result.returncode, result.stdout) == (0, ""), result.stderr


BAD: list[tuple[str, str, str]] = [
    ("empty.json", "", "the file is empty"),
    ("broken.json", '{"openapi": "3.1.0", "paths": {', "not JSON"),
    ("swagger.json", '{"swagger": "2.0", "paths": {}}', "not an OpenAPI 3 document"),
    ("list.json", "[1, 2]", "an OpenAPI document is a JSON object"),
    ("empty.proto", "\n", "the file is empty"),
    ("broken.proto", 'syntax = "proto3"; package shop.v1; message {', "does not compile"),
    ("nopackage.proto", 'syntax = "proto3"; message Item {}', "no package statement"),
    ("image.binpb", "", "the file is empty"),
    ("deep.json", "[" * 100_000 + "]" * 100_000, "nested too deeply to read"),
]


@pytest.mark.parametrize(("name", "content", "why"), BAD, ids=[b[0] for b in BAD])
def test_an_old_contract_that_cannot_be_read(shop: Path, name: str, content: str, why: str) -> None:
    (shop / name).write_text(content)
    result = _twofold("check", "shop:service", "--against", name, cwd=shop)
    assert (result.returncode, result.stdout) == (2, "")
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("twofold: error: ") and why in result.stderr


@pytest.mark.parametrize(
    ("against", "why"),
    [
        ("missing.json", "missing.json: no such file or directory"),
        ("empty-dir", "holds no contract"),
        ("git:no-such-ref", "git:no-such-ref is not a commit of this repository"),
        ("git:HEAD:shop.py", "git:HEAD:shop.py is not a commit of this repository"),
        ("git:--output=x", "git:--output=x names no ref"),
        ("git:", "git: names no ref"),
    ],
)
def test_an_old_contract_that_is_not_there(shop: Path, against: str, why: str) -> None:
    (shop / "empty-dir").mkdir()
    result = _twofold("check", "shop:service", "--against", against, cwd=shop)
    assert (result.returncode, result.stdout) == (2, "")
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert why in result.stderr


def test_an_old_definition_that_does_not_load(shop: Path) -> None:
    (shop / "shop.py").write_text("raise RuntimeError('half-written')\n")
    _git("commit", "-q", "-am", "broken", cwd=shop)
    (shop / "shop.py").write_text(SHOP.format(fields=V1))
    result = _twofold("check", "shop:service", "--against", "git:HEAD", cwd=shop)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("twofold: error: cannot export shop:service as of git:HEAD")
    assert len(result.stderr.splitlines()) == 1


def test_another_copy_of_googleapis_is_not_a_change(shop: Path) -> None:
    """The old export may carry its own google/api files; they are imports, not the API."""
    old = shop / "contracts"
    assert _twofold("proto", "shop:service", "-o", str(old), cwd=shop).returncode == 0
    http = (protobuf.GOOGLEAPIS / "google/api/http.proto").read_text()
    assert "bool fully_decode_reserved_expansion = 2;" in http
    (old / "google/api").mkdir(parents=True)
    # A field the installed copy lacks: compared, it would be a deletion.
    (old / "google/api/http.proto").write_text(
        http.replace(
            "bool fully_decode_reserved_expansion = 2;",
            "bool fully_decode_reserved_expansion = 2;\n  string from_elsewhere = 99;",
        )
    )
    result = _twofold("check", "shop:service", "--against", str(old), cwd=shop)
    assert (result.returncode, result.stdout) == (0, ""), result.stderr
