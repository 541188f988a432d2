"""The ``twofold`` command, run as a user runs it: a subprocess from the repository root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def twofold(
    *args: str, timeout: float = 60, cwd: Path = ROOT, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m twofold ARGS`` (in ``cwd``, ``input`` on its stdin): its exit status,
    stdout and stderr as text."""
    return subprocess.run(
        [sys.executable, "-m", "twofold", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        check=False,
    )
