"""``twofold proto MODULE:ATTR``: write ``.proto`` files, update or check the lock file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from twofold.core.definition import DefinitionError
from twofold.protobuf.numbering import LockError, ProblemKind
from twofold.protobuf.schema import Schema, default_lock_path
from twofold.server.loader import load


def run(args: argparse.Namespace) -> int:
    app = load(args.target)
    lock_path = Path(args.lock) if args.lock else default_lock_path(app.table.services)
    try:
        schema = Schema(app.table, lock=lock_path)
    except (DefinitionError, LockError) as exc:
        return _fail(str(exc))
    lock = schema.numbering.lock
    hint = f"twofold proto {args.target}" + (f" --lock {args.lock}" if args.lock else "")
    if args.update or args.check:
        if lock_path is None:
            return _fail("no lock file path: pass --lock PATH")
        if schema.breaking:
            for problem in schema.breaking:
                print(f"twofold: breaking change: {problem}", file=sys.stderr)
            return _fail(f"{lock_path} left as it is: these changes would break clients")
    if args.update:
        assert lock_path is not None
        schema.lock.write(lock_path)
        print(f"twofold: wrote {lock_path}", file=sys.stderr)
    elif args.check:
        if not lock.exists:
            return _fail(f"no lock file at {lock_path}; run `{hint} --update` and commit it")
        if schema.problems:
            for problem in schema.problems:
                print(f"twofold: not in the lock: {problem}", file=sys.stderr)
            return _fail(f"{lock_path} is out of date; run `{hint} --update` and commit it")
        print(f"twofold: {lock_path} is up to date", file=sys.stderr)
    elif lock.exists and schema.problems:
        kinds = {p.kind for p in schema.problems}
        what = "breaking changes" if ProblemKind.BREAKING in kinds else "new entries"
        print(f"twofold: warning: {lock_path} has {what}; see `{hint} --check`", file=sys.stderr)
    texts = schema.text()
    if args.output:
        for path, text in texts.items():
            target = Path(args.output) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    elif not (args.update or args.check):
        for path, text in texts.items():
            if len(texts) > 1:
                sys.stdout.write(f"// ---- {path}\n")
            sys.stdout.write(text)
    return 0


def _fail(message: str) -> int:
    print(f"twofold: error: {message}", file=sys.stderr)
    return 1
