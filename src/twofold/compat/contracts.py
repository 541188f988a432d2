"""The two sides ``twofold check`` compares: the contracts of a definition and old ones.

The new side is exported from ``MODULE:ATTR``: its OpenAPI document, and its
``.proto`` files numbered by the lock file. The old side is a file, a
directory of exported contracts or ``git:REF`` (:func:`read`).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

from twofold.compat.protobuf import IMAGE_SUFFIXES
from twofold.compat.report import ContractError
from twofold.contracts import openapi
from twofold.core.definition import DefinitionError
from twofold.protobuf.mapping import file_path
from twofold.protobuf.numbering import LockError
from twofold.protobuf.schema import DEFAULT, Schema
from twofold.server.loader import load

GIT_PREFIX = "git:"
OPENAPI_NAMES = ("openapi.json",)
_PACKAGE = re.compile(r"(?:^|;)\s*package\s+([A-Za-z_][\w.]*)\s*;", re.M)


@dataclasses.dataclass(frozen=True, slots=True)
class Contracts:
    """One side: the OpenAPI document (parsed JSON) and the ``.proto`` files (a directory,
    their import root, or a buf image); None where the side has no such contract."""

    label: str
    openapi: object | None
    proto: Path | None


def export(target: str, out: Path, lock: str | None = None) -> Contracts:
    """The contracts of ``MODULE:ATTR``, the ``.proto`` files written under ``out``."""
    app = load(target)
    try:
        schema = Schema(app.table, lock=lock if lock is not None else DEFAULT)
    except (DefinitionError, LockError) as exc:
        raise ContractError(f"{target}: {exc}") from None
    for path, text in schema.text().items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_text(text, encoding="utf-8")
    document = json.loads(openapi.encode(app.openapi))
    return Contracts(target, document, out)


def read(spec: str, target: str, work: Path, new_proto: Path | None) -> Contracts:
    """The old side named by ``--against``; ``work`` is a scratch directory. A lone
    ``.proto`` file is placed where the new side keeps its package (``new_proto``). It is one of

    - a file: an OpenAPI document (``.json``), a ``.proto`` file, or a buf image
      (``.binpb``, from ``buf build -o``);
    - a directory of exported contracts: ``openapi.json`` at its top and the
      ``.proto`` files under ``proto/`` (or under the directory itself), as
      ``twofold openapi -o DIR/openapi.json`` and ``twofold proto -o DIR/proto``
      write them;
    - ``git:REF``: the definition as it was at a commit, exported from a copy of
      that commit's tree (``git archive``) by ``twofold openapi`` and ``twofold
      proto`` run in a subprocess whose import path puts that tree first, so
      that the old module, and everything else the repository holds, is the old
      one, with the old lock file.
    """
    if spec.startswith(GIT_PREFIX):
        exported = from_git(spec.removeprefix(GIT_PREFIX), target, work)
        return _directory(exported, spec)
    path = Path(spec)
    if path.is_dir():
        return _directory(path, spec)
    if not path.is_file():
        raise ContractError(f"{spec}: no such file or directory")
    if path.suffix in IMAGE_SUFFIXES:
        if path.stat().st_size == 0:
            raise ContractError(f"{spec}: the file is empty")
        return Contracts(spec, None, path)
    if path.suffix == ".proto":
        return Contracts(spec, None, _lone_proto(path, work, new_proto))
    return Contracts(spec, _json(path), None)


def _directory(path: Path, label: str) -> Contracts:
    document = next((_json(path / n) for n in OPENAPI_NAMES if (path / n).is_file()), None)
    root = path / "proto" if (path / "proto").is_dir() else path
    proto = root if any(root.rglob("*.proto")) else None
    if document is None and proto is None:
        raise ContractError(f"{label}: holds no contract (no openapi.json, no .proto file)")
    return Contracts(label, document, proto)


def _json(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractError(f"{path}: cannot read it ({exc})") from None
    if not text.strip():
        raise ContractError(f"{path}: the file is empty")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ContractError(f"{path}: not JSON ({exc})") from None
    except RecursionError:
        raise ContractError(f"{path}: nested too deeply to read") from None


def _lone_proto(path: Path, work: Path, new_proto: Path | None) -> Path:
    """A directory holding ``path`` at the import path its package has on the new side
    (``catalog/v1/catalog.proto``), so buf compares the file with its successor."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractError(f"{path}: cannot read it ({exc})") from None
    if not text.strip():
        raise ContractError(f"{path}: the file is empty")
    match = _PACKAGE.search(text)
    if match is None:
        raise ContractError(f"{path}: no package statement, so it matches no exported file")
    package = match.group(1)
    name = file_path(package)
    if new_proto is not None:
        for candidate in sorted(new_proto.rglob("*.proto")):
            found = _PACKAGE.search(candidate.read_text(encoding="utf-8"))
            if found and found.group(1) == package:
                name = candidate.relative_to(new_proto).as_posix()
                break
    out = work / "old-proto"
    (out / name).parent.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(text, encoding="utf-8")
    return out


def from_git(ref: str, target: str, work: Path) -> Path:
    """Export ``target`` as it was at ``ref``: a directory as :func:`_directory` reads."""
    if not ref or ref.startswith("-"):
        raise ContractError(f"git:{ref} names no ref: give one like git:main or git:v1.2.0")
    top = Path(_git("rev-parse", "--show-toplevel").strip())
    prefix = _git("rev-parse", "--show-prefix").strip()
    # The commit itself, so that git archive is given a name it cannot take for an option.
    commit = _git(
        "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", what=ref
    )
    tree = work / "tree"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit.strip(), "--"],
        cwd=top,
        capture_output=True,
        timeout=300,
        check=False,
    )
    if archive.returncode != 0:
        raise ContractError(
            f"git archive {ref}: {_last_line(archive.stderr.decode(errors='replace'))}"
        )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tree, filter=_inside)
    out = work / "old"
    cwd = tree / prefix
    if not cwd.is_dir():
        raise ContractError(f"git:{ref} has no directory {prefix!r}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(_mirrored_path(top, tree))}
    for command in (
        ["openapi", target, "-o", str(out / "openapi.json")],
        ["proto", target, "-o", str(out / "proto")],
    ):
        out.mkdir(exist_ok=True)
        result = subprocess.run(
            [sys.executable, "-m", "twofold", *command],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            why = _last_line(result.stderr).removeprefix("twofold: error: ")
            raise ContractError(f"cannot export {target} as of git:{ref}: {why}")
    return out


def _inside(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's "data" filter, skipping what it refuses (a link to an absolute path or
    out of the tree) instead of failing: an export needs no such file."""
    try:
        return tarfile.data_filter(member, dest)
    except tarfile.FilterError:
        return None


def _mirrored_path(top: Path, tree: Path) -> list[str]:
    """The import path for the subprocess: every entry of ours (and of PYTHONPATH) that
    lies in the repository, pointed at the same place in the old tree, first; so an
    editable install of the project (a ``src`` directory) is the old one too."""
    entries = [*os.environ.get("PYTHONPATH", "").split(os.pathsep), *sys.path]
    out: list[str] = []
    for entry in entries:
        if not entry:
            continue
        absolute = Path(entry).resolve()
        if absolute == top or top in absolute.parents:
            mirrored = tree / absolute.relative_to(top)
            # A virtualenv inside the repository is not in the archive: leave it.
            if mirrored.is_dir() and str(mirrored) not in out:
                out.append(str(mirrored))
    return out


def _git(*args: str, what: str = "") -> str:
    try:
        result = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError as exc:
        raise ContractError(f"git: cannot run it ({exc.strerror})") from None
    if result.returncode != 0:
        if what and not result.stderr.strip():
            raise ContractError(f"git:{what} is not a commit of this repository")
        raise ContractError(f"git: {_last_line(result.stderr)}")
    return result.stdout


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "failed and said nothing"
