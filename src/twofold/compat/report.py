"""What ``twofold check`` found: one :class:`Finding` per breaking change, and their renderings."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable

OPENAPI = "openapi"
PROTOBUF = "protobuf"


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    """One breaking change: which contract, which rule, where, and what a reader needs to know."""

    side: str  # OPENAPI or PROTOBUF
    rule: str  # PATH_REMOVED; on the protobuf side buf's rule id, FIELD_NO_DELETE
    location: str  # "GET /products/{id} response 200 body price", "catalog/v1/catalog.proto:12:3"
    message: str

    def line(self) -> str:
        return f"{self.side} {self.rule} {self.location}: {self.message}"


class ContractError(Exception):
    """A contract that cannot be read or compared; the message is one line for the user."""


def text(findings: Iterable[Finding]) -> str:
    return "".join(f"{finding.line()}\n" for finding in findings)


def as_json(findings: Iterable[Finding]) -> str:
    return (
        json.dumps([dataclasses.asdict(f) for f in findings], indent=2, ensure_ascii=False) + "\n"
    )
