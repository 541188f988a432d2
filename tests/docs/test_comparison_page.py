"""docs/comparison.md quotes docs/benchmarks.md: every figure of its performance
section must be one that page records, so a new measurement cannot leave the
comparison quoting an old one."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Ratios (3.15x), thousands (10,776), instruction counts (54.7k), versions and dates.
_FIGURE = re.compile(
    r"\b\d+(?:\.\d+)?x\b|\b\d{1,3}(?:,\d{3})+\b|\b\d+\.\d+k\b|\b\d{4}-\d{2}-\d{2}\b"
)


def _section(page: str, title: str) -> str:
    start = page.index(f"## {title}\n")
    end = page.find("\n## ", start + 1)
    return page[start : end if end != -1 else None]


def test_every_figure_quoted_is_in_the_benchmarks_page() -> None:
    comparison = (ROOT / "docs" / "comparison.md").read_text()
    benchmarks = (ROOT / "docs" / "benchmarks.md").read_text()
    performance = _section(comparison, "Performance")
    figures = set(_FIGURE.findall(performance))
    assert len(figures) > 20  # the table and the instruction counts were found
    missing = sorted(figure for figure in figures if figure not in benchmarks)
    assert not missing, f"not in docs/benchmarks.md: {missing}"
    commit = re.search(r"Twofold at\s+`([0-9a-f]{7,})`", performance)
    assert commit is not None and f"`{commit.group(1)}`" in benchmarks
