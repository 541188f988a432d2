"""Module docstrings stay short: what a module is for, in one screen.

Detail belongs beside the code it explains (a class's or function's
docstring, a comment at a protocol edge), where it is read when that code
is changed; a long module docstring drifts from the code under it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import twofold

PACKAGE = Path(twofold.__file__).parent
MAX_LINES = 14
MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_docstring_is_short(path: Path) -> None:
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    lines = len(docstring.splitlines()) if docstring else 0
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)}: {lines} lines (at most {MAX_LINES})"


def test_modules_are_found() -> None:
    # A moved package directory must not make the check above vacuous.
    assert len(MODULES) > 50
