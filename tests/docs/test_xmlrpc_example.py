"""docs_src/xmlrpc: the meter served by ``twofold serve``, called with ``xmlrpc.client``."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from docs_src.xmlrpc.client import main
from tests.e2e.server import ROOT, start

DOC = ROOT / "docs" / "xmlrpc.md"


def test_docs_python_examples_are_the_modules() -> None:
    blocks = re.findall(r"```python\n# (\S+)\n(.*?)```", DOC.read_text(), flags=re.S)
    assert {path for path, _ in blocks} == {
        "docs_src/xmlrpc/service.py",
        "docs_src/xmlrpc/client.py",
    }
    for path, text in blocks:
        assert text == (ROOT / path).read_text(), f"{path} and docs/xmlrpc.md differ"


def test_the_meter_over_xmlrpc(tmp_path: Path) -> None:
    server = start("docs_src.xmlrpc.service:app", tmp_path, None, "--no-grpc")
    try:
        north, scaled, missing, names, answers = main(server.url)
        raw = httpx.post(
            f"{server.url}/RPC2",
            content=b"<methodCall><methodName>ReadMeter</methodName><params><param>"
            b"<value>north</value></param></params></methodCall>",
            headers={"content-type": "text/xml"},
        ).content
    finally:
        server.stop()
    assert north == {
        "site": "north",
        "bytes_served": 5_000_000_000,
        "cost": "12.50",
        "taken_at": "2026-01-02T03:04:05.678000Z",
    }
    assert b"<i8>5000000000</i8>" in raw and b"<name>note</name>" not in raw
    assert scaled["bytes_served"] == 3072
    assert missing == (5, "NOT_FOUND: no site west")
    assert "ReadMeter" in names and "meter.v1.MeterService/ReadMeter" in names
    assert answers[0] == [{**north, "site": "south", "bytes_served": 1024}]
    assert answers[1]["faultCode"] == 3
