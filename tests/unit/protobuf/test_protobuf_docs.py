"""docs/protobuf.md: its example module runs, and the page says what the code does."""

from __future__ import annotations

from pathlib import Path

from docs_src.protobuf import shipping
from twofold.cli import main
from twofold.protobuf import Schema

ROOT = Path(__file__).resolve().parents[3]


def test_the_example_round_trips_and_its_lock_is_current() -> None:
    assert shipping.codec.decode(shipping.data) == shipping.shipment
    assert shipping.schema.problems == []
    assert main(["proto", "docs_src.protobuf.shipping:service", "--check"]) == 0


def test_the_proto_fragments_on_the_page_are_what_twofold_proto_writes() -> None:
    text = Schema(shipping.service).text()["shipping/v1/shipping.proto"]
    page = (ROOT / "docs/protobuf.md").read_text()
    blocks = page.split("```proto\n")[1:]
    assert blocks
    for block in blocks:
        assert block.split("```")[0] in text
