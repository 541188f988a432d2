"""The hand-written grpcio peer, run from the peer directory with stubs generated at bench time.

``python -m bench.apps.grpcio_app PORT [--uvloop]``. The peer's ``grpc_server.py``
puts ``/tmp/peers/gen/google`` first on ``sys.path``; the benchmark
generates protoc's upb messages and servicer into ``$TWOFOLD_BENCH_STUBS``
instead (:mod:`bench.stubs`). Importing them here first puts them in
``sys.modules``, so the peer's own imports resolve to them; its ``main``
then runs as the peer's ``__main__`` would run it (``asyncio.run``, the
default event loop), or with ``--uvloop`` on uvloop's, as the issue also
asks it measured.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys

from bench.apps.catalog import STUBS_ENV, load_module, peers_dir


def main() -> None:
    sys.path.insert(0, os.environ[STUBS_ENV])
    importlib.import_module("catalog.v1.catalog_pb2")
    importlib.import_module("catalog.v1.catalog_pb2_grpc")
    peer = load_module("grpc_server", peers_dir() / "apps" / "grpc_server.py")
    if sys.argv[2:] == ["--uvloop"]:
        import uvloop

        uvloop.run(peer.main(int(sys.argv[1])))
    else:
        asyncio.run(peer.main(int(sys.argv[1])))


if __name__ == "__main__":
    main()
