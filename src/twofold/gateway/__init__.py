"""Gateway mode: Twofold's wires in front of a gRPC service it did not define.

The schema comes from .proto files, a descriptor set or server reflection
(:mod:`~twofold.gateway.descriptors`, :mod:`~twofold.gateway.reflection`);
:class:`Gateway` is an ASGI app serving REST per google.api.http, SSE,
Connect, gRPC-Web, JSON-RPC and OpenAPI 3.1 over a grpcio upstream.
docs/gateway.md tells the whole story.
"""

from twofold.gateway.app import Gateway, GatewayOptions
from twofold.gateway.descriptors import (
    Schema,
    SchemaError,
    from_descriptor_set,
    from_proto_files,
)
from twofold.gateway.reflection import from_reflection
from twofold.gateway.upstream import Upstream

__all__ = [
    "Gateway",
    "GatewayOptions",
    "Schema",
    "SchemaError",
    "Upstream",
    "from_descriptor_set",
    "from_proto_files",
    "from_reflection",
]
