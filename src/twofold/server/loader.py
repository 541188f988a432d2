"""Load ``MODULE:ATTR`` into an App, with one-line errors for the CLI.

The target may also be an App wrapped in ASGI middleware by hand: the
tools use the App found inside it, and ``twofold serve`` serves HTTP through
the wrapper and native gRPC from that App (docs/middleware.md).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from twofold.core.asgi import ASGIApp
from twofold.core.definition import DefinitionError, Service
from twofold.server.app import App
from twofold.server.middleware import find_app

# The env var through which worker processes (uvicorn --workers / --reload)
# learn what to load: they import this module fresh and call app_from_env().
ENV_TARGET = "TWOFOLD_APP"


class LoadError(Exception):
    """A target that cannot be loaded; the message is one line for the user."""


# The twofold package's directory: frames under it are ours, not the user's.
_PACKAGE = str(Path(__file__).resolve().parent.parent) + os.sep


def located(exc: DefinitionError) -> str | None:
    """``file:line: what — fix`` for a definition error, or None if no user code raised it.

    The place is the user's: the innermost frame outside Twofold (the
    decorator, the ``Service(...)`` call), as a compiler points at the line
    to change rather than at its own source.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    user = [
        f
        for f in frames
        if not f.filename.startswith("<")
        and not str(Path(f.filename).resolve()).startswith(_PACKAGE)
    ]
    if not user:
        return None
    frame = user[-1]
    path = Path(frame.filename)
    try:
        shown = str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        shown = str(path)
    return f"{shown}:{frame.lineno}: {exc}"


def load(target: str) -> App:
    """The App that ``target`` names, is, or wraps."""
    return load_served(target)[1]


def load_served(target: str) -> tuple[ASGIApp, App]:
    """What to serve over HTTP for ``target``, and the App in it (the same object
    unless the target is an App wrapped in middleware)."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise LoadError(f"expected MODULE:ATTR (like examples.catalog:app), got {target!r}")
    if os.getcwd() not in sys.path:
        # Like uvicorn and python -m: modules in the working directory are importable.
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise LoadError(f"cannot import module {module_name!r}: no such module") from None
        raise LoadError(f"importing {module_name!r} failed: {exc}") from None
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise LoadError(f"module {module_name!r} has no attribute {attr!r}") from None
    if isinstance(obj, App):
        return obj, obj
    if isinstance(obj, Service):
        app = App(obj)
        return app, app
    if isinstance(obj, Sequence) and obj and all(isinstance(s, Service) for s in obj):
        app = App(list(obj))
        return app, app
    if callable(obj) and not isinstance(obj, type):
        inner = find_app(obj, App)
        if inner is not None:
            return obj, inner
        raise LoadError(
            f"{target} ({type(obj).__name__}) has no twofold App that can be found inside "
            "(looked through .app, ._app, .application, .wrapped, __wrapped__ and closures): "
            "wrap the App with App(..., middleware=[...]) instead (docs/middleware.md)"
        )
    raise LoadError(f"{target} is a {type(obj).__name__}, not a twofold App or Service")


def app_from_env() -> ASGIApp:
    """The uvicorn factory worker processes call."""
    return load_served(os.environ[ENV_TARGET])[0]
