"""Development tokens for the tests that call the catalog.

``ADMIN`` may do anything the catalog guards (every write scope, and
``orders:admin`` for anyone's orders); it is signed with the development
secret the catalog uses when ``CATALOG_JWT_SECRET`` is not set.
"""

from __future__ import annotations

from typing import Any

import grpc

from twofold.interceptors.bearer import DEVELOPMENT_SECRET, issue

SCOPES = ["products:write", "users:write", "orders:write", "orders:admin"]
ADMIN = issue(DEVELOPMENT_SECRET, "tests", SCOPES, expires_in=86400)
AUTHORIZATION = {"authorization": f"Bearer {ADMIN}"}


class _Metadata(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds the admin token to every call of a grpcio channel."""

    def _with_token(self, details: Any) -> Any:
        metadata = [*(details.metadata or ()), *AUTHORIZATION.items()]
        return details._replace(metadata=metadata)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._with_token(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._with_token(details), requests)


def authorized(channel: grpc.Channel) -> grpc.Channel:
    """``channel``, sending the admin token with every call."""
    return grpc.intercept_channel(channel, _Metadata())
