"""Twofold: one typed definition, served as REST and as RPC."""

from typing import TYPE_CHECKING, Any

from twofold.app import App
from twofold.caching import Cache
from twofold.code import Code
from twofold.context import Context
from twofold.definition import DefinitionError, Resource, Service
from twofold.details import BadRequest, ErrorInfo, FieldViolation
from twofold.errors import Error
from twofold.interceptors import CallNext, Interceptor
from twofold.method import Empty, HttpBinding, Idempotency, Method, StreamKind
from twofold.options import Options

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
