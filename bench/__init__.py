"""Benchmarks: Twofold against pinned peers, same machine, same run (``python -m bench``)."""
