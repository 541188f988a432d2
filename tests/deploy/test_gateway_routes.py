"""The HTTPRoute and GRPCRoute: valid Gateway API v1, and routing every wire of the catalog.

Validity is checked against tests/deploy/gateway_api.py (the v1 fields and
limits, written from the spec, with its CEL rules); that each of the
catalog's paths reaches the Service, by Gateway API's own matching rules,
against the App itself, so that a method added to the catalog and not
routed fails here.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonschema
import pytest

from examples.catalog import app
from examples.catalog.streams import WATCH_LIFETIME
from tests.deploy import gateway_api
from tests.deploy.manifests import load
from twofold.contracts import docs
from twofold.core.method import StreamKind


def problems(route: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(gateway_api.SCHEMAS[route["kind"]])
    found = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(route)
    ]
    return found + gateway_api.rule_violations(route)


@pytest.mark.parametrize("name", ["httproute.yaml", "grpcroute.yaml"])
def test_the_route_is_valid_gateway_api_v1(name: str) -> None:
    assert problems(load(name)) == []


@pytest.mark.parametrize(
    ("name", "break_it", "expected"),
    [
        # A misspelled field, which a cluster would prune without a word.
        ("httproute.yaml", lambda r: r["spec"]["rules"][0].update(timeout={}), "timeout"),
        (
            "httproute.yaml",
            lambda r: r["spec"]["rules"][0]["matches"][0].update(
                path={"type": "Exact", "value": "products"}
            ),
            "absolute path",
        ),
        (
            "httproute.yaml",
            lambda r: r["spec"]["rules"][0]["timeouts"].update(request="35"),
            "does not match",
        ),
        (
            "httproute.yaml",
            lambda r: r["spec"]["rules"].extend([r["spec"]["rules"][0]] * 16),
            "is too long",
        ),
        (
            "httproute.yaml",
            lambda r: r["spec"]["rules"][0].update(filters=[{"type": "URLRewrite"}]),
            "needs urlRewrite",
        ),
        (
            "grpcroute.yaml",
            lambda r: r["spec"]["rules"][0]["matches"][0].update(method={"type": "Exact"}),
            "one or both",
        ),
        (
            "grpcroute.yaml",
            lambda r: r["spec"]["rules"][0].update(timeouts={"request": "1s"}),
            "timeouts",
        ),
        (
            "grpcroute.yaml",
            lambda r: r["spec"]["rules"][0]["backendRefs"][0].update(port=0),
            "less than the minimum",
        ),
    ],
)
def test_the_checks_refuse_what_the_api_server_would(
    name: str, break_it: Any, expected: str
) -> None:
    route = copy.deepcopy(load(name))
    break_it(route)
    assert any(expected in problem for problem in problems(route)), problems(route)


def rule_for(route: dict[str, Any], path: str, method: str) -> dict[str, Any] | None:
    """The rule Gateway API picks for a request: an exact path first, then the longest prefix."""
    candidates = []
    for rule in route["spec"]["rules"]:
        for match in rule["matches"]:
            if gateway_api.path_matches(match, path) and match.get("method", method) == method:
                exact = match["path"]["type"] == "Exact"
                candidates.append((exact, len(match["path"]["value"]), rule))
    if not candidates:
        return None
    return max(candidates, key=lambda c: (c[0], c[1]))[2]


def sample(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "7", template)


def backend(rule: dict[str, Any]) -> tuple[str, int]:
    (ref,) = rule["backendRefs"]
    return ref["name"], ref["port"]


def service_port(app_protocol: str) -> tuple[str, int]:
    service = load("service.yaml")
    (port,) = [p for p in service["spec"]["ports"] if p["appProtocol"] == app_protocol]
    return service["metadata"]["name"], port["port"]


def http_requests() -> list[tuple[str, str, str]]:
    """(method, path, what) for every HTTP request the catalog answers through the gateway."""
    requests = []
    for method in app.table:
        if method.http is not None:
            requests.append((method.http.verb, sample(method.http.path), f"REST {method.name}"))
        requests.append(("POST", method.path, f"Connect/gRPC-Web {method.name}"))
        if method.kind is StreamKind.UNARY:
            requests.append(("GET", method.path, f"Connect GET {method.name}"))
    requests.append(("POST", app.options.jsonrpc_path, "JSON-RPC"))
    for path in docs.endpoints(app.options.docs_path, app.options.openapi_path, app.title):
        requests.append(("GET", path, "docs"))
    requests.append(("GET", app.options.openapi_path, "OpenAPI"))
    # The app answers OPTIONS (Allow, a CORS preflight) and HEAD on every path it serves.
    paths = {(path, what) for _, path, what in requests}
    requests += [
        (verb, path, f"{what} {verb}") for path, what in paths for verb in ("OPTIONS", "HEAD")
    ]
    return sorted(set(requests))


@pytest.mark.parametrize(("verb", "path", "what"), http_requests())
def test_every_http_wire_of_the_catalog_reaches_the_http_port(
    verb: str, path: str, what: str
) -> None:
    rule = rule_for(load("httproute.yaml"), path, verb)
    assert rule is not None, f"{what}: {verb} {path} is not routed"
    assert backend(rule) == service_port("http")


def test_metrics_and_unknown_paths_are_not_routed() -> None:
    route = load("httproute.yaml")
    assert rule_for(route, "/metrics", "GET") is None
    assert rule_for(route, "/productsX", "GET") is None


def test_unary_rules_outlast_the_catalogs_deadline_and_the_watch_its_lifetime() -> None:
    """The app answers first (DEADLINE_EXCEEDED, or a clean end of WatchPrices), not the gateway."""
    route = load("httproute.yaml")
    deadline = float(load("configmap.yaml")["data"]["CATALOG_TIMEOUT"])
    lifetime = float(load("configmap.yaml")["data"]["CATALOG_WATCH_LIFETIME"])
    assert lifetime == WATCH_LIFETIME  # the default the catalog has without the ConfigMap
    for verb, path, what in http_requests():
        rule = rule_for(route, path, verb)
        assert rule is not None, what
        timeout = gateway_api.duration_seconds(rule["timeouts"]["request"])
        watch = "WatchPrices" in what
        assert timeout > (lifetime if watch else deadline), what
        if not watch:
            assert timeout < lifetime, f"{what} shares the watch's long timeout"


def test_every_grpc_service_reaches_the_h2c_port() -> None:
    route = load("grpcroute.yaml")
    (rule,) = route["spec"]["rules"]
    services = {m["method"]["service"] for m in rule["matches"] if "method" not in m["method"]}
    assert {method.service for method in app.table} <= services
    assert "grpc.health.v1.Health" not in services  # the kubelet's, per pod
    assert backend(rule) == service_port("kubernetes.io/h2c")


def test_native_grpc_has_a_hostname_of_its_own_on_the_same_listener() -> None:
    """gRPC and Connect share their paths: on one hostname an HTTPRoute prefix could take gRPC."""
    http, grpc = load("httproute.yaml")["spec"], load("grpcroute.yaml")["spec"]
    assert http["parentRefs"] and http["parentRefs"] == grpc["parentRefs"]
    assert grpc["hostnames"] and not set(http["hostnames"]) & set(grpc["hostnames"])
