"""The docs site (`make docs`): every page of docs/ is in it, it builds strictly, and
the hooks (tools/docs_site.py) turn links that leave docs/ into pages of code."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS_BIN = ROOT / ".docs-tools" / "bin"


def _mkdocs() -> Path:
    path = DOCS_BIN / "mkdocs"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make docs` (part of `make test`)", pytrace=False)
    return path


class _Loader(yaml.SafeLoader):
    """mkdocs.yml with its `!!python/...` tags read as nothing (only the nav matters here)."""


_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)


def _nav_pages(nav: Any) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in _nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    return []


def test_the_nav_lists_every_page_of_docs() -> None:
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_Loader)
    listed = _nav_pages(config["nav"])
    docs = ROOT / "docs"
    pages = sorted(path.relative_to(docs).as_posix() for path in docs.rglob("*.md"))
    missing = [page for page in pages if page not in listed]
    assert not missing, f"add these pages to mkdocs.yml's nav: {missing}"
    assert len(listed) == len(set(listed)), "a page is listed twice in mkdocs.yml's nav"
    # The home page is README.md (see tools/docs_site.py), the rest is docs/.
    assert sorted(page for page in listed if page != "index.md") == pages


def test_make_docs_builds_and_checks_every_page(tmp_path: Path) -> None:
    _mkdocs()
    site = tmp_path / "site"
    result = subprocess.run(
        ["make", "--no-print-directory", "docs", f"SITE={site}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all internal links resolve" in result.stdout
    for page in (ROOT / "docs").glob("*.md"):
        assert (site / page.stem / "index.html").is_file(), page
    home = (site / "index.html").read_text()
    assert "Define once" in home  # README.md's section
    # README's link to the quick-start module became a page showing its code.
    assert 'href="source/docs_src/quickstart/app.py/"' in home
    code = (site / "source" / "docs_src" / "quickstart" / "app.py" / "index.html").read_text()
    assert "shelf_stats" in code


def _project(tmp_path: Path, nav: list[str]) -> Path:
    """A small repository laid out like this one, built with the real mkdocs.yml
    (inherited) and the real hooks."""
    project = tmp_path / "project"
    (project / "tools").mkdir(parents=True)
    shutil.copy(ROOT / "tools" / "docs_site.py", project / "tools" / "docs_site.py")
    nav_lines = "".join(f"  - {page}\n" for page in nav)
    (project / "mkdocs.yml").write_text(f"INHERIT: {ROOT / 'mkdocs.yml'}\nnav:\n{nav_lines}")
    (project / "README.md").write_text(
        "# Home\n\nRead [the guide](docs/guide.md#part-two), the [code](src/tick.py)"
        " or [all of src](src).\n"
    )
    (project / "docs").mkdir()
    (project / "docs" / "guide.md").write_text(
        textwrap.dedent(
            """\
            # Guide

            ## Part one

            The module is [`src/tick.py`](../src/tick.py); see [part two](#part-two)
            or go back to [the README](../README.md).

            ```
            +--------+      +--------+
            | client | ---> | server |
            +--------+      +--------+
            ```

            ## Part two

            Done.
            """
        )
    )
    (project / "src" / "sub").mkdir(parents=True)
    tick = 'FENCE = "```"\n\n\ndef tick() -> int:\n    return 1\n'
    (project / "src" / "tick.py").write_text(tick)
    (project / "src" / "sub" / "notes.txt").write_text("notes\n")
    return project


def _build(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(_mkdocs()), "build", "--strict", "--site-dir", str(project / "site")],
        cwd=project,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_links_outside_docs_become_pages_of_code(tmp_path: Path) -> None:
    project = _project(tmp_path, ["index.md", "guide.md"])
    result = _build(project)
    assert result.returncode == 0, result.stderr
    site = project / "site"
    home = (site / "index.html").read_text()
    assert 'href="guide/#part-two"' in home
    assert 'href="source/src/tick.py/"' in home
    assert 'href="source/src/"' in home
    guide = (site / "guide" / "index.html").read_text()
    assert 'href="../source/src/tick.py/"' in guide
    assert 'href="../">the README</a>' in guide  # README.md is the home page
    assert not (site / "source" / "README.md").exists()
    # An ASCII diagram stays as written: plain text, not guessed as a language.
    assert "| client | ---&gt; | server |" in guide
    tick = (site / "source" / "src" / "tick.py" / "index.html").read_text()
    assert "tick" in tick and "FENCE" in tick  # the backticks inside did not close the block
    assert "return" in tick
    folder = (site / "source" / "src" / "index.html").read_text()
    assert 'href="tick.py/"' in folder and 'href="sub/"' in folder
    assert (site / "source" / "src" / "sub" / "notes.txt" / "index.html").is_file()


def test_a_page_missing_from_the_nav_fails_the_build(tmp_path: Path) -> None:
    project = _project(tmp_path, ["index.md", "guide.md"])
    (project / "docs" / "forgotten.md").write_text("# Forgotten\n")
    result = _build(project)
    assert result.returncode != 0
    assert "forgotten.md" in result.stderr


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("See [this](../src/missing.py).", "../src/missing.py"),
        ("See [this](#no-such-part).", "no-such-part"),
        ("See [this](guide.md#nowhere).", "nowhere"),
        # GitHub shows this as code, Python-Markdown as text.
        ("- a step:\n\n  ```sh\n  make docs\n  ```\n", "indented by 1-3 spaces"),
    ],
)
def test_what_would_render_wrong_fails_the_build(tmp_path: Path, text: str, complaint: str) -> None:
    project = _project(tmp_path, ["index.md", "guide.md"])
    guide = project / "docs" / "guide.md"
    guide.write_text(guide.read_text() + f"\n{text}\n")
    result = _build(project)
    assert result.returncode != 0
    assert re.search(rf"WARNING .*{re.escape(complaint)}", result.stderr), result.stderr


def test_no_fence_has_free_text_after_its_language() -> None:
    # pymdownx.superfences takes `title="..."` or `{...}` there; anything else
    # makes the line no fence at all, and the page renders as garbled text
    # (which --strict does not catch).
    bad = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if re.match(r"^```[\w+-]+ +(?!title=|\{)\S", line):
                bad.append(f"{page.name}:{number}: {line}")
    assert not bad, "\n".join(bad)
