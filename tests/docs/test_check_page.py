"""docs/compatibility.md shows what ``twofold check`` prints for docs_src/check, exactly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "compatibility.md"
BUF = ROOT / "node_modules" / ".bin" / "buf"


def _twofold(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "twofold", *args],
        cwd=ROOT,
        env={**os.environ, "TWOFOLD_BUF": str(BUF)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_example_output_is_what_the_command_prints(tmp_path: Path) -> None:
    if not BUF.exists():
        pytest.fail(f"{BUF} is missing: run `npm ci` (part of `make test`)", pytrace=False)
    page = PAGE.read_text()
    commands = re.search(r"```sh\n(twofold openapi docs_src.*?)```", page, re.S)
    shown = re.search(r"```text\n(.*?)```", page, re.S)
    assert commands is not None and shown is not None
    old = tmp_path / "old"
    old.mkdir()
    # The page's three commands, with old/ in a temporary directory.
    for line in commands.group(1).splitlines():
        args = [str(tmp_path / a) if a.split("/")[0] == "old" else a for a in line.split()]
        assert args[0] == "twofold"
        result = _twofold(*args[1:])
        if args[1] != "check":
            assert result.returncode == 0, result.stderr
    assert result.returncode == 1, result.stderr
    assert result.stdout == shown.group(1)
    assert result.stderr == f"twofold: 6 breaking changes against {old}\n"
