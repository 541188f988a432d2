"""MkDocs hooks for the docs site (`make docs`, mkdocs.yml's `hooks:`).

The pages in docs/ are written for GitHub as well: they link to the example
modules they quote (`../docs_src/...`), to tests and to `../examples/...`,
all outside docs/, where MkDocs finds nothing and, with `--strict`, fails.
These hooks make the same Markdown whole as a site:

- every file or folder of the repository that a page links to, outside
  docs/, becomes a generated page under `source/` showing its code
  (a folder: a list of its files, each with its own page), and the link is
  pointed there;
- README.md becomes the home page (there is no docs/index.md), its links
  (`docs/rest.md`, `docs_src/...`, `examples/catalog`) read from the
  repository's top as GitHub reads them.

A link that names a missing file is left as written, so MkDocs reports it
and the strict build fails. So does a code fence indented by one to three
spaces (in a list item, say): GitHub shows it as code, Python-Markdown as a
paragraph of text; four spaces, after a blank line, read alike in both.
"""

from __future__ import annotations

import logging
import posixpath
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from xml.etree.ElementTree import Element

from markdown import Extension, Markdown
from markdown.treeprocessors import Treeprocessor
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.structure.pages import Page

SOURCE_DIR = "source"
README = "README.md"

# Names a folder's listing leaves out: caches, build output, databases.
_SKIPPED = re.compile(r"^(\..*|__pycache__|.*\.pyc|.*\.db(-journal)?|node_modules)$")

# Pygments lexer names by suffix; anything else is shown as plain text.
_LANGUAGES = {
    ".py": "python",
    ".pyi": "python",
    ".ts": "typescript",
    ".js": "javascript",
    ".go": "go",
    ".json": "json",
    ".proto": "proto",
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".sh": "bash",
    ".sql": "sql",
    ".md": "markdown",
    ".ini": "ini",
    ".cfg": "ini",
    ".lua": "lua",
    ".html": "html",
}

# Inline links and images `](target)` and reference definitions `[x]: target`,
# outside fenced code. A link this misses is left unrewritten, and MkDocs then
# reports it: a miss fails the build, it never ships a broken link.
_INLINE_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)", re.MULTILINE)
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_SHALLOW_FENCE = re.compile(r"^ {1,3}(`{3,}|~{3,})", re.MULTILINE)

# Under "mkdocs." so that --strict counts its warnings.
_log = logging.getLogger("mkdocs.hooks.docs_site")


class _State:
    """What the hooks share across one build."""

    def __init__(self) -> None:
        self.root = Path()
        self.docs = "docs"
        # repository path -> generated page's src_uri, for every linked file or folder
        self.sources: dict[str, str] = {}
        # src_uri of the page being rendered -> its path in the repository
        self.origins: dict[str, str] = {}
        self.current: str | None = None


_state = _State()


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    _state.root = Path(config.config_file_path).resolve().parent
    _state.docs = Path(config.docs_dir).resolve().relative_to(_state.root).as_posix()
    _state.sources = {}
    _state.origins = {}
    config.markdown_extensions.append(_RepositoryLinks())  # type: ignore[arg-type]
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    pages: dict[str, str] = {}  # src_uri -> Markdown
    for file in files.documentation_pages():
        _state.origins[file.src_uri] = f"{_state.docs}/{file.src_uri}"
        pages[file.src_uri] = file.content_string
    if files.get_file_from_path("index.md") is None:
        readme = (_state.root / README).read_text(encoding="utf-8")
        files.append(File.generated(config, "index.md", content=readme))
        _state.origins["index.md"] = README
        pages["index.md"] = readme

    for src_uri, markdown in pages.items():
        origin = _state.origins[src_uri]
        for target in _link_targets(markdown):
            path = _repository_path(origin, target)
            if path is not None and _page_for(path) is None:
                _add_source(path, files, config)
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    _state.current = page.file.src_uri
    if page.file.src_uri in _state.origins:
        for match in _SHALLOW_FENCE.finditer(markdown):
            line = markdown.count("\n", 0, match.start()) + 1
            _log.warning(
                "Doc file '%s', line %d: a code fence indented by 1-3 spaces renders as text"
                " here (indent it by 4, after a blank line)",
                page.file.src_uri,
                line,
            )
    return markdown


def _link_targets(markdown: str) -> list[str]:
    outside: list[str] = []
    fence: str | None = None
    for line in markdown.splitlines():
        match = _FENCE.match(line)
        if match:
            mark = match.group(1)
            if fence is None:
                fence = mark
            elif mark[0] == fence[0] and len(mark) >= len(fence):
                fence = None
            continue
        if fence is None:
            outside.append(line)
    text = "\n".join(outside)
    return _INLINE_LINK.findall(text) + _REFERENCE.findall(text)


def _repository_path(origin: str, url: str) -> str | None:
    """The repository path a relative link from `origin` names, if it exists."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path or parts.path.startswith("/"):
        return None
    path = posixpath.normpath(posixpath.join(posixpath.dirname(origin), parts.path))
    if path.startswith("../") or path == ".." or not (_state.root / path).exists():
        return None
    return path


def _page_for(path: str) -> str | None:
    """The site's page for a repository path that is one: a file of docs/, the
    docs folder itself (the home page), README.md when it is the home page."""
    if path.startswith(_state.docs + "/"):
        return path[len(_state.docs) + 1 :]
    if path == _state.docs or (path == README and _state.origins.get("index.md") == README):
        return "index.md"
    return None


def _add_source(path: str, files: Files, config: MkDocsConfig) -> None:
    if path in _state.sources:
        return
    full = _state.root / path
    if full.is_dir():
        src_uri = f"{SOURCE_DIR}/{path}/index.md"
        _state.sources[path] = src_uri
        children = sorted(
            child
            for child in full.iterdir()
            if not _SKIPPED.match(child.name) and (child.is_dir() or _is_text(child))
        )
        for child in children:
            _add_source(f"{path}/{child.name}", files, config)
        lines = [f"# `{path}/`", ""]
        for child in children:
            child_uri = _state.sources[f"{path}/{child.name}"]
            link = posixpath.relpath(child_uri, posixpath.dirname(src_uri))
            suffix = "/" if child.is_dir() else ""
            lines.append(f"- [`{child.name}{suffix}`]({link})")
        content = "\n".join(lines) + "\n"
    else:
        src_uri = f"{SOURCE_DIR}/{path}.md"
        _state.sources[path] = src_uri
        content = _code_page(path, full.read_text(encoding="utf-8"))
    files.append(
        File.generated(config, src_uri, content=content, inclusion=InclusionLevel.NOT_IN_NAV)
    )


def _is_text(path: Path) -> bool:
    try:
        path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return False
    return True


def _code_page(path: str, code: str) -> str:
    language = _LANGUAGES.get(Path(path).suffix, "text")
    # A fence longer than any run of backticks in the file, so none closes it.
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"# `{path}`\n\n{fence}{language}\n{code.rstrip()}\n{fence}\n"


class _RepositoryLinker(Treeprocessor):
    """Points links that leave docs/ at their generated pages, and the home
    page's links into docs/ at the pages, before MkDocs resolves them (it
    runs at priority 0, this at 2)."""

    def run(self, root: Element) -> None:
        src_uri = _state.current
        origin = _state.origins.get(src_uri or "")
        if src_uri is None or origin is None:
            return  # a generated source page: its links are already right
        for element in root.iter():
            attribute = {"a": "href", "img": "src"}.get(element.tag)
            url = element.get(attribute) if attribute else None
            if attribute is None or url is None:
                continue
            path = _repository_path(origin, url)
            if path is None:
                continue
            target = _page_for(path) or _state.sources.get(path)
            if target is None:
                continue
            new_path = posixpath.relpath(target, posixpath.dirname(src_uri) or ".")
            parts = urlsplit(url)
            element.set(attribute, urlunsplit(("", "", new_path, parts.query, parts.fragment)))


class _RepositoryLinks(Extension):
    def extendMarkdown(self, md: Markdown) -> None:
        md.treeprocessors.register(_RepositoryLinker(md), "twofold_repository_links", 2)
