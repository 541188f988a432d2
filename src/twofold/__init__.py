"""Twofold: one typed definition, served as REST and as RPC.

Everything an application imports is here (docs/api.md lists it); the
subpackages ``twofold.client`` and ``twofold.protobuf`` are public too.
Names load on first use, so a client or a gRPC-only server imports only
what it needs, not the whole HTTP stack.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twofold.client import AsyncClient, Client
    from twofold.core.chain import CallNext, Interceptor
    from twofold.core.code import Code
    from twofold.core.context import Context
    from twofold.core.decimals import Bounds
    from twofold.core.definition import DefinitionError, Resource, Service
    from twofold.core.dependencies import Provide, Provided
    from twofold.core.details import BadRequest, ErrorInfo, FieldViolation
    from twofold.core.errors import Error
    from twofold.core.files import File, Upload
    from twofold.core.method import Idempotency
    from twofold.core.options import Options, WebSocketOptions
    from twofold.core.policy import (
        AUTHENTICATED,
        Cache,
        Identity,
        lifetime,
        public,
        requires,
        resumable,
        timeout,
        upload_limit,
    )
    from twofold.http.caching import check_etag, check_unmodified
    from twofold.http.cors import Cors
    from twofold.http.pagination import PageTokens
    from twofold.interceptors.access import AccessLog
    from twofold.interceptors.auth import ApiKeys, Authentication, StoredApiKey
    from twofold.interceptors.bearer import JwtBearer
    from twofold.interceptors.idempotency import IdempotencyKeys
    from twofold.interceptors.limits import (
        Budget,
        ConcurrencyLimit,
        Deadlines,
        RateLimit,
        StreamLimit,
        credentials_of,
    )
    from twofold.interceptors.metrics import Metrics
    from twofold.interceptors.otel import Tracing
    from twofold.interceptors.tracing import RequestIds
    from twofold.server.app import App
    from twofold.server.grpc import GrpcServer
    from twofold.server.limits import ServerLimits
    from twofold.server.middleware import Middleware

__all__ = [
    "AUTHENTICATED",
    "AccessLog",
    "ApiKeys",
    "App",
    "AsyncClient",
    "Authentication",
    "BadRequest",
    "Bounds",
    "Budget",
    "Cache",
    "CallNext",
    "Client",
    "Code",
    "ConcurrencyLimit",
    "Context",
    "Cors",
    "Deadlines",
    "DefinitionError",
    "Error",
    "ErrorInfo",
    "FieldViolation",
    "File",
    "GrpcServer",
    "Idempotency",
    "IdempotencyKeys",
    "Identity",
    "Interceptor",
    "JwtBearer",
    "Metrics",
    "Middleware",
    "Options",
    "PageTokens",
    "Provide",
    "Provided",
    "RateLimit",
    "RequestIds",
    "Resource",
    "ServerLimits",
    "Service",
    "StoredApiKey",
    "StreamLimit",
    "Tracing",
    "Upload",
    "WebSocketOptions",
    "check_etag",
    "check_unmodified",
    "credentials_of",
    "lifetime",
    "public",
    "requires",
    "resumable",
    "timeout",
    "upload_limit",
]

# Where each public name lives. The clients import httpx, Tracing OpenTelemetry,
# GrpcServer grpcio: nobody pays for what they do not use.
_HOMES = {
    "AUTHENTICATED": "twofold.core.policy",
    "AccessLog": "twofold.interceptors.access",
    "ApiKeys": "twofold.interceptors.auth",
    "App": "twofold.server.app",
    "AsyncClient": "twofold.client",
    "Authentication": "twofold.interceptors.auth",
    "BadRequest": "twofold.core.details",
    "Bounds": "twofold.core.decimals",
    "Budget": "twofold.interceptors.limits",
    "Cors": "twofold.http.cors",
    "Cache": "twofold.core.policy",
    "CallNext": "twofold.core.chain",
    "Client": "twofold.client",
    "Code": "twofold.core.code",
    "ConcurrencyLimit": "twofold.interceptors.limits",
    "Context": "twofold.core.context",
    "Deadlines": "twofold.interceptors.limits",
    "DefinitionError": "twofold.core.definition",
    "Error": "twofold.core.errors",
    "ErrorInfo": "twofold.core.details",
    "FieldViolation": "twofold.core.details",
    "File": "twofold.core.files",
    "Upload": "twofold.core.files",
    "GrpcServer": "twofold.server.grpc",
    "Identity": "twofold.core.policy",
    "Idempotency": "twofold.core.method",
    "IdempotencyKeys": "twofold.interceptors.idempotency",
    "Interceptor": "twofold.core.chain",
    "JwtBearer": "twofold.interceptors.bearer",
    "Metrics": "twofold.interceptors.metrics",
    "Middleware": "twofold.server.middleware",
    "Options": "twofold.core.options",
    "PageTokens": "twofold.http.pagination",
    "Provide": "twofold.core.dependencies",
    "Provided": "twofold.core.dependencies",
    "RateLimit": "twofold.interceptors.limits",
    "RequestIds": "twofold.interceptors.tracing",
    "Resource": "twofold.core.definition",
    "ServerLimits": "twofold.server.limits",
    "Service": "twofold.core.definition",
    "StoredApiKey": "twofold.interceptors.auth",
    "StreamLimit": "twofold.interceptors.limits",
    "Tracing": "twofold.interceptors.otel",
    "WebSocketOptions": "twofold.core.options",
    "check_etag": "twofold.http.caching",
    "check_unmodified": "twofold.http.caching",
    "credentials_of": "twofold.interceptors.limits",
    "lifetime": "twofold.core.policy",
    "public": "twofold.core.policy",
    "requires": "twofold.core.policy",
    "resumable": "twofold.core.policy",
    "timeout": "twofold.core.policy",
    "upload_limit": "twofold.core.policy",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'twofold' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # the next access is an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
