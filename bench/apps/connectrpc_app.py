"""The connectrpc peer app, run from the peer directory with stubs generated at bench time.

The peer's ``connect_app.py`` puts ``/tmp/peers/gen/pb`` first on ``sys.path``;
the benchmark generates its stubs into a temporary directory instead
(``$TWOFOLD_BENCH_STUBS``, see :mod:`bench.stubs`). Importing them here first
puts them in ``sys.modules``, so the peer's own imports resolve to them
whatever else is on disk.
"""

from __future__ import annotations

import importlib
import os
import sys

from bench.apps.catalog import STUBS_ENV, load_module, peers_dir

sys.path.insert(0, os.environ[STUBS_ENV])
importlib.import_module("catalog.v1.catalog_pb")
importlib.import_module("catalog.v1.catalog_connect")

app = load_module("connect_app", peers_dir() / "apps" / "connect_app.py").app
