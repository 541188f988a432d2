"""HTTPRoute and GRPCRoute of Gateway API v1 (standard channel, v1.2), checked offline.

No cluster and no network here, and the project vendors nothing it would
have to fetch: the CRDs' OpenAPI schemas are not at hand. So this module
writes down, from the API reference (gateway-api.sigs.k8s.io/reference/spec,
``apis/v1/httproute_types.go`` and ``grpcroute_types.go``), the fields of
both kinds with the limits their OpenAPI schema declares (types, enums,
patterns, lengths, list sizes), as a JSON Schema that refuses any field it
does not know, as the API server's structural schema would prune it
silently. :func:`rule_violations` adds the CEL rules (``x-kubernetes-
validations``) the schema alone cannot say.

What is left out is refused, not waved through: fields that came after
v1.2's standard channel or live only in the experimental one (rule names,
retries, session persistence, CORS filters). Filters are checked for their
shape, not every rule of their bodies.
"""

from __future__ import annotations

import re
from typing import Any

GROUP = "gateway.networking.k8s.io"
API_VERSION = f"{GROUP}/v1"

# The reference's own patterns and bounds (shared types, apis/v1/shared_types.go).
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
HOSTNAME: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 253,
    "pattern": r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
}
OBJECT_NAME: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 253}
SECTION_NAME: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 253,
    "pattern": _DNS_SUBDOMAIN,
}
GROUP_NAME: dict[str, Any] = {
    "type": "string",
    "maxLength": 253,
    "pattern": r"^$|" + _DNS_SUBDOMAIN,
}
KIND: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 63,
    "pattern": r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$",
}
NAMESPACE: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 63,
    "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
}
PORT: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": 65535}
# Gateway API's Duration: a subset of Go's, e.g. "35s", "1h30m", "500ms".
DURATION: dict[str, Any] = {"type": "string", "pattern": r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"}
HEADER_NAME: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 256,
    "pattern": r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$",
}


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


def _list(items: dict[str, Any], max_items: int, min_items: int = 0) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": items, "maxItems": max_items}
    if min_items:
        schema["minItems"] = min_items
    return schema


PARENT_REF = _object(
    {
        "group": GROUP_NAME,
        "kind": KIND,
        "namespace": NAMESPACE,
        "name": OBJECT_NAME,
        "sectionName": SECTION_NAME,
        "port": PORT,
    },
    required=("name",),
)
HEADER_MATCH = _object(
    {
        "type": {"enum": ["Exact", "RegularExpression"]},
        "name": HEADER_NAME,
        "value": {"type": "string", "minLength": 1, "maxLength": 4096},
    },
    required=("name", "value"),
)
_HEADER = _object(
    {"name": HEADER_NAME, "value": {"type": "string", "minLength": 1, "maxLength": 4096}},
    required=("name", "value"),
)
HEADER_MODIFIER = _object(
    {
        "set": _list(_HEADER, 16),
        "add": _list(_HEADER, 16),
        "remove": _list({"type": "string"}, 16),
    }
)
_LOCAL_OBJECT_REF = _object(
    {"group": GROUP_NAME, "kind": KIND, "name": OBJECT_NAME}, required=("group", "kind", "name")
)
_BACKEND_OBJECT_REF = {
    "group": GROUP_NAME,
    "kind": KIND,
    "name": OBJECT_NAME,
    "namespace": NAMESPACE,
    "port": PORT,
}
_MIRROR = _object({"backendRef": _object(_BACKEND_OBJECT_REF, ("name",))}, ("backendRef",))


# A filter's type, and the field that holds its configuration.
FILTER_FIELDS = {
    "RequestHeaderModifier": "requestHeaderModifier",
    "ResponseHeaderModifier": "responseHeaderModifier",
    "RequestMirror": "requestMirror",
    "RequestRedirect": "requestRedirect",
    "URLRewrite": "urlRewrite",
    "ExtensionRef": "extensionRef",
}


def _filter(fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    types = [t for t, field in FILTER_FIELDS.items() if field in fields]
    return _object({"type": {"enum": types}, **fields}, required=("type",))


_PATH_MODIFIER = _object(
    {
        "type": {"enum": ["ReplaceFullPath", "ReplacePrefixMatch"]},
        "replaceFullPath": {"type": "string", "maxLength": 1024},
        "replacePrefixMatch": {"type": "string", "maxLength": 1024},
    },
    ("type",),
)
HTTP_FILTER = _filter(
    {
        "requestHeaderModifier": HEADER_MODIFIER,
        "responseHeaderModifier": HEADER_MODIFIER,
        "requestMirror": _MIRROR,
        "requestRedirect": _object(
            {
                "scheme": {"enum": ["http", "https"]},
                "hostname": HOSTNAME,
                "path": _PATH_MODIFIER,
                "port": PORT,
                "statusCode": {"enum": [301, 302]},
            }
        ),
        "urlRewrite": _object({"hostname": HOSTNAME, "path": _PATH_MODIFIER}),
        "extensionRef": _LOCAL_OBJECT_REF,
    }
)
GRPC_FILTER = _filter(
    {
        "requestHeaderModifier": HEADER_MODIFIER,
        "responseHeaderModifier": HEADER_MODIFIER,
        "requestMirror": _MIRROR,
        "extensionRef": _LOCAL_OBJECT_REF,
    }
)


def _backend_ref(filter_: dict[str, Any]) -> dict[str, Any]:
    return _object(
        {
            **_BACKEND_OBJECT_REF,
            "weight": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
            "filters": _list(filter_, 16),
        },
        required=("name",),
    )


HTTP_ROUTE_MATCH = _object(
    {
        "path": _object(
            {
                "type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]},
                "value": {"type": "string", "maxLength": 1024},
            }
        ),
        "headers": _list(HEADER_MATCH, 16),
        "queryParams": _list(
            _object(
                {
                    "type": {"enum": ["Exact", "RegularExpression"]},
                    "name": HEADER_NAME,
                    "value": {"type": "string", "minLength": 1, "maxLength": 1024},
                },
                ("name", "value"),
            ),
            16,
        ),
        "method": {
            "enum": ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
        },
    }
)
GRPC_ROUTE_MATCH = _object(
    {
        "method": _object(
            {
                "type": {"enum": ["Exact", "RegularExpression"]},
                "service": {"type": "string", "maxLength": 1024},
                "method": {"type": "string", "maxLength": 1024},
            }
        ),
        "headers": _list(HEADER_MATCH, 16),
    }
)
_METADATA = {
    "type": "object",
    "properties": {"name": OBJECT_NAME, "namespace": NAMESPACE},
    "required": ["name"],
}


def _route(kind: str, rule: dict[str, Any]) -> dict[str, Any]:
    spec = _object(
        {
            "parentRefs": _list(PARENT_REF, 32),
            "hostnames": _list(HOSTNAME, 16),
            "rules": _list(rule, 16, min_items=1),
        }
    )
    return _object(
        {
            "apiVersion": {"const": API_VERSION},
            "kind": {"const": kind},
            "metadata": _METADATA,
            "spec": spec,
        },
        required=("apiVersion", "kind", "metadata", "spec"),
    )


HTTP_ROUTE = _route(
    "HTTPRoute",
    _object(
        {
            "matches": _list(HTTP_ROUTE_MATCH, 64),
            "filters": _list(HTTP_FILTER, 16),
            "backendRefs": _list(_backend_ref(HTTP_FILTER), 16),
            "timeouts": _object({"request": DURATION, "backendRequest": DURATION}),
        }
    ),
)
GRPC_ROUTE = _route(
    "GRPCRoute",
    _object(
        {
            "matches": _list(GRPC_ROUTE_MATCH, 64),
            "filters": _list(GRPC_FILTER, 16),
            "backendRefs": _list(_backend_ref(GRPC_FILTER), 16),
        }
    ),
)
SCHEMAS = {"HTTPRoute": HTTP_ROUTE, "GRPCRoute": GRPC_ROUTE}

# The CEL rules of the CRDs, in words and in code.
_GRPC_SERVICE = re.compile(r"^\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$", re.IGNORECASE)
_GRPC_METHOD = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")
_BAD_IN_PATH = ("//", "/./", "/../", "%2f", "%2F", "#")
MAX_MATCHES = 128  # across all the rules of one route


def duration_seconds(text: str) -> float:
    """A Gateway API Duration ("11m", "1h30m", "500ms") in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * units[u] for n, u in re.findall(r"([0-9]+)(h|ms|m|s)", text))


def rule_violations(route: dict[str, Any]) -> list[str]:
    """What the CRD's CEL validations would refuse in ``route``; empty when it passes."""
    problems: list[str] = []
    rules = route["spec"]["rules"]
    matches = sum(len(rule.get("matches", [])) for rule in rules)
    if matches > MAX_MATCHES:
        problems.append(f"{matches} matches across the rules: at most {MAX_MATCHES}")
    for r, rule in enumerate(rules):
        where = f"rules[{r}]"
        for m, match in enumerate(rule.get("matches", [])):
            if route["kind"] == "HTTPRoute":
                problems += _path_violations(match.get("path"), f"{where}.matches[{m}].path")
            else:
                problems += _method_violations(match.get("method"), f"{where}.matches[{m}].method")
        timeouts = rule.get("timeouts", {})
        if "request" in timeouts and "backendRequest" in timeouts:
            request = duration_seconds(timeouts["request"])
            backend = duration_seconds(timeouts["backendRequest"])
            if request and backend > request:
                problems.append(f"{where}.timeouts: backendRequest must be <= request")
        for f, filter_ in enumerate(rule.get("filters", [])):
            field = FILTER_FIELDS[filter_["type"]]
            if field not in filter_:
                problems.append(f"{where}.filters[{f}]: type {filter_['type']} needs {field}")
    return problems


def _path_violations(path: dict[str, Any] | None, where: str) -> list[str]:
    if path is None or path.get("type", "PathPrefix") not in ("Exact", "PathPrefix"):
        return []  # a regular expression is the implementation's to read
    value = path.get("value", "/")
    problems = []
    if not value.startswith("/"):
        problems.append(f"{where}: value must be an absolute path")
    for bad in _BAD_IN_PATH:
        if bad in value:
            problems.append(f"{where}: value must not contain {bad!r}")
    if value.endswith(("/..", "/.")):
        problems.append(f"{where}: value must not end with '/..' or '/.'")
    return problems


def _method_violations(method: dict[str, Any] | None, where: str) -> list[str]:
    if method is None:
        return []
    if "service" not in method and "method" not in method:
        return [f"{where}: one or both of service and method must be given"]
    if method.get("type", "Exact") != "Exact":
        return []
    problems = []
    if "service" in method and not _GRPC_SERVICE.match(method["service"]):
        problems.append(f"{where}: service {method['service']!r} is not a gRPC service name")
    if "method" in method and not _GRPC_METHOD.match(method["method"]):
        problems.append(f"{where}: method {method['method']!r} is not a gRPC method name")
    return problems


def path_matches(match: dict[str, Any], path: str) -> bool:
    """Whether an HTTPRoute path match (Exact or PathPrefix) selects ``path``.

    PathPrefix compares whole segments: "/products" selects "/products" and
    "/products/7", never "/productsX" nor "/products:watchPrices".
    """
    spec = match.get("path", {"type": "PathPrefix", "value": "/"})
    kind, value = spec.get("type", "PathPrefix"), spec.get("value", "/")
    if kind == "Exact":
        return path == value
    if kind == "PathPrefix":
        prefix = value.rstrip("/")
        return path == prefix or path.startswith(prefix + "/") or prefix == ""
    raise ValueError(f"{kind} matches are not checked here")
