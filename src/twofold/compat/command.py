"""``twofold check MODULE:ATTR --against OLD``: breaking changes of both contracts, one report.

Exit status 0 when nothing breaks, 1 when something does, 2 when a side
cannot be read (one line on stderr says why).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from twofold.compat import contracts, openapi, protobuf
from twofold.compat.report import ContractError, Finding, as_json, text
from twofold.server.loader import LoadError


def run(args: argparse.Namespace) -> int:
    try:
        findings, skipped = compare(args.target, args.against, lock=args.lock)
    except (ContractError, LoadError) as exc:
        print(f"twofold: error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(as_json(findings) if args.json else text(findings))
    for side in skipped:
        print(f"twofold: {args.against} has no {side} contract: not compared", file=sys.stderr)
    if findings:
        print(
            f"twofold: {len(findings)} breaking change{'s' if len(findings) != 1 else ''} "
            f"against {args.against}",
            file=sys.stderr,
        )
        return 1
    print(f"twofold: no breaking change against {args.against}", file=sys.stderr)
    return 0


def compare(
    target: str, against: str, *, lock: str | None = None
) -> tuple[list[Finding], list[str]]:
    """The breaking changes from ``against`` to ``target``'s contracts, OpenAPI first,
    and the sides ``against`` did not have."""
    with tempfile.TemporaryDirectory(prefix="twofold-check-") as scratch:
        work = Path(scratch)
        new = contracts.export(target, work / "new", lock)
        old = contracts.read(against, target, work, new.proto)
        findings: list[Finding] = []
        skipped = []
        if old.openapi is not None:
            findings += openapi.diff(old.openapi, new.openapi, old_label=against, new_label=target)
        else:
            skipped.append("OpenAPI")
        if old.proto is not None and new.proto is not None:
            buf = protobuf.find_buf()
            new_module = protobuf.module(new.proto, work / "new-module")
            old_module = old.proto
            if old.proto.is_dir():
                old_module = protobuf.module(old.proto, work / "old-module")
            findings += protobuf.breaking(old_module, new_module, buf)
        else:
            skipped.append(".proto")
        return findings, skipped
