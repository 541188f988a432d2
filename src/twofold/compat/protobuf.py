"""Breaking changes between two sets of ``.proto`` files, judged by ``buf breaking``.

buf is the tool the protobuf world trusts for this, so Twofold runs it rather
than second-guessing it, with the FILE and WIRE_JSON categories: FILE keeps
generated code compiling (no field, message or service deleted or renamed,
no package moved), and WIRE_JSON keeps both the binary and the JSON encoding
readable by old peers (Connect and REST clients read JSON field names).

Each side is laid out as one buf module: its ``.proto`` files, plus
``google/api/annotations.proto`` and ``http.proto`` (the HTTP bindings the
exported files import), always the copies googleapis-common-protos installed,
so that two googleapis versions are never reported as a change of the API.
A buf image (``buf build -o old.binpb``) may stand for the old side.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from google.api import http_pb2  # type: ignore[import-untyped]

from twofold.compat.report import PROTOBUF, ContractError, Finding

CONFIG = json.dumps({"version": "v2", "breaking": {"use": ["FILE", "WIRE_JSON"]}})
# buf's exit status when it ran and found breaking changes (1 is its own failure).
BUF_FOUND = 100
COMPILE = "COMPILE"
IMAGE_SUFFIXES = (".binpb", ".bin", ".pb")
# Where the .proto files of googleapis-common-protos are, beside its modules.
GOOGLEAPIS = Path(http_pb2.__file__).parents[2]
GOOGLE_API = ("google/api/annotations.proto", "google/api/http.proto")
BUF_ENV = "TWOFOLD_BUF"


def find_buf() -> str:
    """``$TWOFOLD_BUF``, else ``buf`` on PATH, else ``node_modules/.bin/buf`` of the
    working directory or a parent (``npm install @bufbuild/buf``)."""
    configured = os.environ.get(BUF_ENV)
    if configured:
        return configured
    found = shutil.which("buf")
    if found:
        return found
    here = Path.cwd()
    for directory in (here, *here.parents):
        candidate = directory / "node_modules" / ".bin" / "buf"
        if candidate.exists():
            return str(candidate)
    raise ContractError(
        "buf is needed for the protobuf side and was not found: install it "
        f"(npm install @bufbuild/buf) or set {BUF_ENV}"
    )


def module(files: Path, out: Path) -> Path:
    """A buf module at ``out``: the ``.proto`` files under ``files`` and what they import."""
    shutil.copytree(files, out, ignore=shutil.ignore_patterns("*.json", "*.yaml", "*.yml"))
    for name in GOOGLE_API:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(GOOGLEAPIS / name, out / name)
    return out


def breaking(old: Path, new: Path, buf: str | None = None) -> list[Finding]:
    """Every breaking change from ``old`` (a module directory or a buf image) to ``new``
    (a module directory)."""
    command = [
        buf or find_buf(),
        "breaking",
        ".",
        "--against",
        str(old.resolve()),
        "--config",
        CONFIG,
        "--error-format",
        "json",
    ]
    try:
        result = subprocess.run(
            command, cwd=new, capture_output=True, text=True, timeout=120, check=False
        )
    except OSError as exc:
        raise ContractError(f"cannot run buf ({command[0]}): {exc.strerror}") from None
    if result.returncode not in (0, BUF_FOUND):
        raise ContractError(f"buf: {_first_line(result.stderr or result.stdout)}")
    findings = [_finding(line) for line in result.stdout.splitlines() if line.strip()]
    for finding in findings:
        # A file that does not compile is reported like a finding, with exit status 100.
        if finding.rule == COMPILE:
            old_root = f"{old.resolve()}{os.sep}"
            side = "old" if finding.location.startswith(old_root) else "new"
            where = finding.location.removeprefix(old_root)
            raise ContractError(f"the {side} .proto does not compile: {where}: {finding.message}")
    return findings


def _finding(line: str) -> Finding:
    try:
        item = json.loads(line)
        where = str(item.get("path", ""))
        if item.get("start_line"):
            where += f":{item['start_line']}:{item.get('start_column', 1)}"
        return Finding(PROTOBUF, str(item["type"]), where, str(item["message"]))
    except (ValueError, KeyError, AttributeError):
        raise ContractError(f"buf said something unexpected: {line[:200]}") from None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "failed and said nothing"
    # buf prints "Failure: " before what went wrong, often a compile error of a file.
    return lines[0].removeprefix("Failure: ")
