"""Check the links of a built static site, offline: `python tools/site_links.py site/`.

Every internal link of every HTML page (`a`, `link`, `img`, `script`,
`iframe`, `source`) must name a file of the site, and its `#fragment` an
`id` (or `a name`) on the page it lands on. External links (any scheme,
or `//host`) are listed and never fetched: the build runs without a
network, and a link that is down today says nothing about the docs.

Exit status 1 and one line per broken link when any is broken; 0 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

# The attributes that make a browser load or go to a URL.
_URL_ATTRIBUTES = {
    "a": "href",
    "link": "href",
    "img": "src",
    "script": "src",
    "iframe": "src",
    "source": "src",
}
# Schemes that are no place to check or list.
_IGNORED_SCHEMES = {"javascript", "data", "blob"}


@dataclass
class PageLinks:
    """What one HTML page offers (its ids) and what it points at (its URLs)."""

    ids: set[str] = field(default_factory=set)
    urls: list[str] = field(default_factory=list)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = PageLinks()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.page.ids.add(values["id"] or "")
        if tag == "a" and values.get("name"):
            self.page.ids.add(values["name"] or "")
        attribute = _URL_ATTRIBUTES.get(tag)
        url = values.get(attribute) if attribute else None
        if url is not None:
            self.page.urls.append(url.strip())


def read_page(html: str) -> PageLinks:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.page


@dataclass
class Report:
    broken: list[str] = field(default_factory=list)
    # external URL -> the pages that link to it
    external: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def check_site(site: Path) -> Report:
    """Read every HTML page under `site` and check its internal links."""
    site = site.resolve()
    pages = {
        path.relative_to(site).as_posix(): read_page(path.read_text(encoding="utf-8"))
        for path in sorted(site.rglob("*.html"))
        # The page of a quoted source file `x.html` is the folder `x.html/`.
        if path.is_file()
    }
    report = Report()
    for name, page in pages.items():
        for url in page.urls:
            problem = _check(site, pages, name, url, report)
            if problem:
                report.broken.append(f"{name}: {url}: {problem}")
    return report


def _check(
    site: Path, pages: dict[str, PageLinks], name: str, url: str, report: Report
) -> str | None:
    parts = urlsplit(url)
    if parts.scheme in _IGNORED_SCHEMES:
        return None
    if parts.scheme or parts.netloc:
        report.external[url].add(name)
        return None
    target: str | None = name  # "#fragment" (or "?query") alone: this very page
    if parts.path:
        base = PurePosixPath("/") / name
        path = unquote(parts.path)
        joined = PurePosixPath(path) if path.startswith("/") else base.parent / path
        resolved = _normalize(joined)
        if resolved is None:
            return "leaves the site"
        target = _existing(site, resolved)
        if target is None:
            return "no such file in the site"
    fragment = unquote(parts.fragment)
    if fragment and target in pages and fragment not in pages[target].ids:
        return f"no id {fragment!r} in {target}"
    return None


def _normalize(path: PurePosixPath) -> str | None:
    """The site-relative form of an absolute path, `..` resolved; None above the root."""
    stack: list[str] = []
    for part in path.parts[1:]:
        if part == "..":
            if not stack:
                return None
            stack.pop()
        elif part not in (".", ""):
            stack.append(part)
    return "/".join(stack)


def _existing(site: Path, relative: str) -> str | None:
    """The file a browser gets for `relative`: itself, or a folder's index.html."""
    candidate = site / relative if relative else site
    if candidate.is_dir():
        index = candidate / "index.html"
        return index.relative_to(site).as_posix() if index.is_file() else None
    return relative if candidate.is_file() else None


def _where(pages: list[str]) -> str:
    if len(pages) <= 3:
        return ", ".join(pages)
    return f"{', '.join(pages[:2])} and {len(pages) - 2} more pages"


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the built site's folder")
    args = parser.parse_args(None if argv is None else list(argv))
    if not (args.site / "index.html").is_file():
        print(f"{args.site}: no index.html: build the site first", file=sys.stderr)
        return 2
    report = check_site(args.site)
    pages = len(list(args.site.rglob("*.html")))
    if report.external:
        print(f"External links ({len(report.external)}, listed, not fetched):")
        for url in sorted(report.external):
            print(f"  {url}  ({_where(sorted(report.external[url]))})")
    for line in report.broken:
        print(f"broken link: {line}", file=sys.stderr)
    verdict = f"{len(report.broken)} broken" if report.broken else "all internal links resolve"
    print(f"{pages} pages checked: {verdict}")
    return 1 if report.broken else 0


if __name__ == "__main__":
    sys.exit(main())
