"""Load ``MODULE:ATTR`` into an App, with one-line errors for the CLI."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

from twofold.core.definition import Service
from twofold.server.app import App

# The env var through which worker processes (uvicorn --workers / --reload)
# learn what to load: they import this module fresh and call app_from_env().
ENV_TARGET = "TWOFOLD_APP"


class LoadError(Exception):
    """A target that cannot be loaded; the message is one line for the user."""


def load(target: str) -> App:
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
        return obj
    if isinstance(obj, Service):
        return App(obj)
    if isinstance(obj, Sequence) and obj and all(isinstance(s, Service) for s in obj):
        return App(list(obj))
    raise LoadError(f"{target} is a {type(obj).__name__}, not a twofold App or Service")


def app_from_env() -> App:
    """The uvicorn factory worker processes call."""
    return load(os.environ[ENV_TARGET])
