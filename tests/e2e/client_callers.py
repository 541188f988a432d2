"""The parity callers again, through ``twofold.Client``: one per protocol it speaks.

Each sends the test's payload as keyword fields to the method's Python name
(``client.get_product(id=1)``) and reports what came back in the same
:class:`~tests.e2e.callers.Outcome` the raw-HTTP callers use, so the parity
tests run unchanged.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.callers import Caller, Outcome
from tests.tokens import ADMIN
from twofold import Client, Error
from twofold.client import BearerToken, Rpc
from twofold.core.code import HTTP_STATUS
from twofold.core.method import Method


class _Through(httpx.BaseTransport):
    """Sends through the test's own httpx client, so its pool (and its closing) is shared."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.client.send(request, stream=True)


class ClientCaller(Caller):
    protocol = ""

    def __init__(self, client: httpx.Client, methods: dict[str, Method], target: str = "") -> None:
        super().__init__(client, methods)
        self.target = target
        rpcs = [Rpc.from_method(m) for m in methods.values()]
        self.twofold = self.connect(rpcs, client)

    def connect(self, rpcs: list[Rpc[Any, Any]], client: httpx.Client) -> Client:
        return Client(
            rpcs,
            str(client.base_url),
            protocol=self.protocol,
            transport=_Through(client),
            auth=BearerToken(ADMIN),  # the catalog's writes need a token
        )

    def __call__(self, rpc: str, payload: dict[str, Any] | None = None) -> Outcome:
        method = getattr(self.twofold, self.methods[rpc].python_name)
        try:
            output = method(**(payload or {}))
        except Error as exc:
            fields = [v.field for v in exc.violations]
            return Outcome(HTTP_STATUS[exc.code], code=exc.code.wire_name, violations=fields)
        assert isinstance(output, self.methods[rpc].output_type)
        return Outcome(200, output)


class RestClientCaller(ClientCaller):
    name, protocol = "client-rest", "rest"


class JsonRpcClientCaller(ClientCaller):
    name, protocol = "client-jsonrpc", "jsonrpc"


class ConnectClientCaller(ClientCaller):
    name, protocol = "client-connect", "connect"


class ConnectProtoClientCaller(ClientCaller):
    name, protocol = "client-connect-proto", "connect-proto"


class GrpcWebClientCaller(ClientCaller):
    name, protocol = "client-grpc-web", "grpc-web"


class GrpcClientCaller(ClientCaller):
    """Over the catalog's native gRPC port: grpcio, not the test's httpx client."""

    name, protocol = "client-grpc", "grpc"

    def connect(self, rpcs: list[Rpc[Any, Any]], client: httpx.Client) -> Client:
        return Client(rpcs, self.target, protocol="grpc", auth=BearerToken(ADMIN))


CLIENT_CALLERS: dict[str, type[Caller]] = {
    c.name: c
    for c in (
        RestClientCaller,
        JsonRpcClientCaller,
        ConnectClientCaller,
        ConnectProtoClientCaller,
        GrpcWebClientCaller,
        GrpcClientCaller,
    )
}
