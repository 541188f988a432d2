"""The ``twofold`` command, run as a user runs it: a subprocess from the repository root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def twofold(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m twofold ARGS``: its exit status, stdout and stderr as text."""
    return subprocess.run(
        [sys.executable, "-m", "twofold", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
