"""Twofold: one typed definition, served as REST and as RPC."""

from typing import TYPE_CHECKING, Any

from twofold.core.chain import CallNext, Interceptor
from twofold.core.code import Code
from twofold.core.context import Context
from twofold.core.definition import DefinitionError, Resource, Service
from twofold.core.details import BadRequest, ErrorInfo, FieldViolation
from twofold.core.errors import Error
from twofold.core.method import Empty, HttpBinding, Idempotency, Method, StreamKind
from twofold.core.options import Options
from twofold.core.policy import Cache
from twofold.server.app import App

if TYPE_CHECKING:
    from twofold.client import AsyncClient, Client

__all__ = [
    "App",
    "AsyncClient",
    "BadRequest",
    "Cache",
    "CallNext",
    "Client",
    "Code",
    "Context",
    "DefinitionError",
    "Empty",
    "Error",
    "ErrorInfo",
    "FieldViolation",
    "HttpBinding",
    "Idempotency",
    "Interceptor",
    "Method",
    "Options",
    "Resource",
    "Service",
    "StreamKind",
]


def __getattr__(name: str) -> Any:
    # The clients import httpx: a server that never calls out does not pay for it.
    if name in ("AsyncClient", "Client"):
        from twofold import client

        return getattr(client, name)
    raise AttributeError(f"module 'twofold' has no attribute {name!r}")
