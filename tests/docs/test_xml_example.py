"""docs_src/xml: the stations served by ``twofold serve``, called in XML with httpx;
the XML shown in docs/xml.md is what the server answers."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from docs_src.xml.client import main
from tests.e2e.server import ROOT, start

DOC = ROOT / "docs" / "xml.md"


def test_docs_python_examples_are_the_modules() -> None:
    blocks = re.findall(r"```python\n# (\S+)\n(.*?)```", DOC.read_text(), flags=re.S)
    assert {path for path, _ in blocks} == {"docs_src/xml/service.py", "docs_src/xml/client.py"}
    for path, text in blocks:
        assert text == (ROOT / path).read_text(), f"{path} and docs/xml.md differ"


def test_the_stations_in_xml(tmp_path: Path) -> None:
    shown = re.findall(r"```xml\n(.*?)\n```", DOC.read_text(), flags=re.S)
    server = start("docs_src.xml.service:app", tmp_path, None, "--no-grpc")
    try:
        made, as_xml, as_json, missing = main(server.url)
    finally:
        server.stop()
    assert made.status_code == 201 and made.headers["content-type"] == "application/xml"
    assert made.text == shown[0] == as_xml.text
    assert ET.fromstring(as_xml.content).findtext("bytes_served") == "5000000000"
    assert as_json.json()["name"] == "North & East"
    # One resource, two representations, two strong tags.
    assert as_xml.headers["etag"] != as_json.headers["etag"]
    assert as_xml.headers["vary"].startswith("Accept")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+xml"
    assert missing.text == shown[1]
