"""Programs other people wrote, run by the tests as their users run them: a
subprocess that must succeed, its output kept for the test to judge.

The Node programs (tests/e2e/node/*.mjs, the docs' TypeScript once compiled)
drive a server with a client nobody here wrote (connect-es, @grpc/grpc-js,
ws, eventsource, xmlrpc, openapi-fetch) and print what they saw as one JSON
document: :func:`node_json` runs one and reads it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.e2e.server import ROOT


def run(
    *args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` in ``cwd``; a failure, with what it printed, unless it exits 0."""
    done = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{args[0]}:\n{done.stdout}\n{done.stderr}"
    return done


def node_json(script: Path, *args: str | Path, env: dict[str, str] | None = None) -> Any:
    """Run ``node SCRIPT ARGS`` from the repository root; the JSON it printed."""
    return json.loads(run("node", script, *args, env=env, timeout=120).stdout)
