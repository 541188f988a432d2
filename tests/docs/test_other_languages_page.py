"""docs/other-languages.md shows the programs that tests/e2e/test_other_languages.py
runs against the catalog, not look-alikes."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```(python|ts|js|go)\n(.*?)```", re.S)
NAMED = re.compile(r"(?:#|//) (\S+)\n")


def test_every_program_on_the_page_is_part_of_a_file_a_test_runs() -> None:
    blocks = BLOCK.findall((ROOT / "docs" / "other-languages.md").read_text())
    assert {language for language, _ in blocks} == {"python", "ts", "go"}
    for _, block in blocks:
        # Each block names its file on its first line ("// docs_src/x.ts").
        named = NAMED.match(block)
        assert named is not None, f"names no file:\n{block}"
        source = (ROOT / named.group(1)).read_text()
        assert block[named.end() :] in source, f"not in {named.group(1)}:\n{block}"
