"""The tests' Node programs (tests/e2e/node/*.mjs, the docs' TypeScript once
compiled): run one, read the JSON it prints.

Each program drives a server with a client other people wrote (connect-es,
@grpc/grpc-js, ws, eventsource, xmlrpc, openapi-fetch) and prints what it saw
as one JSON document; the test judges that. A program that fails fails the
test, with its stderr.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.e2e.server import ROOT


def node_json(script: Path, *args: str | Path, env: dict[str, str] | None = None) -> Any:
    """Run ``node SCRIPT ARGS`` from the repository root; the JSON it printed."""
    done = subprocess.run(
        ["node", str(script), *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
