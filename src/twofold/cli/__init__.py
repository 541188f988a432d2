"""The ``twofold`` command."""

from twofold.cli.main import main

__all__ = ["main"]
