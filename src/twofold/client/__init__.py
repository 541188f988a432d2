"""Clients of Twofold services over REST, JSON-RPC 2.0, Connect, gRPC-Web and gRPC.

``Client`` and ``AsyncClient`` call any method of a service by its Python
name; ``Stub`` and ``AsyncStub`` are what a generated client module (``twofold
client MODULE:ATTR``) subclasses with typed methods. Nothing here imports a
server: a generated module needs only this package and msgspec.
"""

from twofold.client.auth import ApiKey, Auth, BearerToken
from twofold.client.base import AsyncClientOptions, ClientOptions
from twofold.client.errors import RawDetail
from twofold.client.retry import Retry
from twofold.client.rpc import Rpc
from twofold.client.stubs import AsyncClient, AsyncStub, Client, Stub
from twofold.client.transports import Target
from twofold.core.method import Empty, HttpBinding, Idempotency, StreamKind

__all__ = [
    "ApiKey",
    "AsyncClient",
    "AsyncClientOptions",
    "AsyncStub",
    "Auth",
    "BearerToken",
    "Client",
    "ClientOptions",
    "Empty",
    "HttpBinding",
    "Idempotency",
    "RawDetail",
    "Retry",
    "Rpc",
    "StreamKind",
    "Stub",
    "Target",
]
