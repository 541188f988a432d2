"""tools/site_links.py: the offline link check of the built site."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.site_links import check_site, main


def _site(tmp_path: Path, pages: dict[str, str]) -> Path:
    site = tmp_path / "site"
    for name, body in pages.items():
        path = site / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"<!doctype html><html><body>{body}</body></html>")
    return site


def test_links_that_resolve_pass(tmp_path: Path) -> None:
    site = _site(
        tmp_path,
        {
            "index.html": '<h1 id="top">Home</h1><a href="guide/#part">guide</a>'
            '<a href="#top">top</a><a href="?q=1">same page</a>'
            '<link href="assets/site.css" rel="stylesheet"><a href="/guide/">absolute</a>',
            "guide/index.html": '<h2 id="part">Part</h2><a href="../">home</a>'
            '<a href="../guide/index.html#part">self</a><a name="old-anchor"></a>'
            '<a href="#old-anchor">old</a><a href="javascript:void(0)">js</a>',
        },
    )
    (site / "assets").mkdir()
    (site / "assets" / "site.css").write_text("")
    report = check_site(site)
    assert report.broken == []
    assert report.external == {}


def test_missing_files_and_anchors_are_reported(tmp_path: Path) -> None:
    site = _site(
        tmp_path,
        {
            "index.html": '<a href="nowhere/">gone</a><a href="guide/#missing">anchor</a>'
            '<img src="logo.png"><a href="../../etc/passwd">out</a><a href="#nope">self</a>',
            "guide/index.html": '<h2 id="part">Part</h2>',
        },
    )
    broken = sorted(check_site(site).broken)
    assert broken == [
        "index.html: #nope: no id 'nope' in index.html",
        "index.html: ../../etc/passwd: leaves the site",
        "index.html: guide/#missing: no id 'missing' in guide/index.html",
        "index.html: logo.png: no such file in the site",
        "index.html: nowhere/: no such file in the site",
    ]


def test_external_links_are_listed_not_fetched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = _site(
        tmp_path,
        {
            # An unresolvable host: fetching it would fail, listing it cannot.
            "index.html": '<a href="https://docs.invalid/x">x</a><a href="//cdn.invalid/y.js">y</a>'
            '<a href="mailto:team@example.invalid">mail</a>',
            "about/index.html": '<a href="https://docs.invalid/x">x</a>',
        },
    )
    report = check_site(site)
    assert report.broken == []
    assert dict(report.external) == {
        "https://docs.invalid/x": {"index.html", "about/index.html"},
        "//cdn.invalid/y.js": {"index.html"},
        "mailto:team@example.invalid": {"index.html"},
    }
    assert main([str(site)]) == 0
    out = capsys.readouterr().out
    assert "External links (3, listed, not fetched)" in out
    assert "https://docs.invalid/x  (about/index.html, index.html)" in out


def test_the_command_fails_on_a_broken_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = _site(tmp_path, {"index.html": '<a href="gone.html">gone</a>'})
    assert main([str(site)]) == 1
    assert "broken link: index.html: gone.html: no such file in the site" in capsys.readouterr().err


def test_the_command_wants_a_built_site(tmp_path: Path) -> None:
    assert main([str(tmp_path)]) == 2
