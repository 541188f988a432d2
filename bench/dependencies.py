"""``python -m bench.dependencies``: what a dependency that opens nothing adds to a call.

One method, called in process through its composed call (interceptors and
dependencies, no wire), with no dependency and with one of each provider
kind that opens nothing. Each variant runs under ``valgrind --tool=cachegrind``
for a small and a large number of calls; the difference of the totals over
the difference of the counts is one call's instructions, start-up cancelled
out (as bench.instructions does for servers). Wall time per call is printed
too, from a plain run.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec

from twofold import App, Provide, Provided, Service


class Settings:
    """What the providers give: nothing to open, nothing to close."""


SETTINGS = Settings()


class Answer(msgspec.Struct):
    n: int


async def yielded() -> AsyncIterator[Settings]:
    yield SETTINGS


def made() -> Settings:
    return SETTINGS


def app_of(variant: str) -> App:
    service = Service("bench.v1")

    async def plain(n: int) -> Answer:
        return Answer(n)

    async def provided(n: int, settings: Provided[Settings]) -> Answer:
        return Answer(n)

    service.procedure(name="Call")(plain if variant == "none" else provided)

    provides = {
        "none": [],
        "function": [Provide(Settings, made)],
        "generator": [Provide(Settings, yielded)],
        "app": [Provide(Settings, made, scope="app")],
    }[variant]
    app = App(service, dependencies=provides)
    app.dependencies.values[Settings] = SETTINGS  # as the App's startup would
    return app


VARIANTS = ("none", "function", "generator", "app")


def run(variant: str, calls: int) -> float:
    """Seconds per call of ``calls`` calls, driven without an event loop."""
    method = app_of(variant).table.methods[0]
    call: Any = method.call
    request = method.input_type(n=1)
    ctx: Any = None
    start = time.perf_counter()
    for _ in range(calls):
        step = call(request, ctx)
        # Not contextlib.suppress: a with block would cost more than what is measured.
        try:  # noqa: SIM105
            step.send(None)
        except StopIteration:
            pass
    return (time.perf_counter() - start) / calls


def instructions(variant: str, calls: int, out: Path) -> int:
    result = out / f"cachegrind.{variant}.{calls}"
    subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={result}",
         sys.executable, "-m", "bench.dependencies", "--run", variant, str(calls)],
        check=True, capture_output=True,
    )  # fmt: skip
    match = re.search(r"^summary: (\d+)", result.read_text(), re.M)
    assert match is not None, result
    return int(match.group(1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.dependencies", description=__doc__)
    p.add_argument("--run", nargs=2, metavar=("VARIANT", "CALLS"), help=argparse.SUPPRESS)
    p.add_argument("--small", type=int, default=2000)
    p.add_argument("--large", type=int, default=12000)
    args = p.parse_args(argv)
    if args.run:
        run(args.run[0], int(args.run[1]))
        return 0
    out = Path(tempfile.mkdtemp(prefix="twofold-dependencies-"))
    base: dict[str, float] = {}
    for variant in VARIANTS:
        small = instructions(variant, args.small, out)
        large = instructions(variant, args.large, out)
        per_call = (large - small) / (args.large - args.small)
        seconds = min(run(variant, 100_000) for _ in range(5))
        base.setdefault("i", per_call)
        base.setdefault("s", seconds)
        print(
            f"{variant:<10} {per_call:>8,.0f} instructions/call ({per_call - base['i']:+,.0f})"
            f"   {seconds * 1e6:.3f} µs/call ({(seconds - base['s']) * 1e6:+.3f})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
