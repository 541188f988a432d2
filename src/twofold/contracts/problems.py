"""The error side of the OpenAPI document: the shared responses (RFC 9457
problem documents on REST, Connect's JSON error body on Connect paths), the
headers some of them carry, and the schemas they refer to."""

from __future__ import annotations

from twofold.contracts.schemas import Schema, ref
from twofold.core.code import Code

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
PROBLEM_XML = "application/problem+xml"
# The schemas this module writes itself; no message type may take these names.
PROBLEM, CONNECT_ERROR, ERROR_CODE = "Problem", "ConnectError", "ErrorCode"

# Shared responses. REST errors are problem documents whatever the status;
# Connect errors are Connect's JSON error body, with the status from its table.
RESPONSES = {
    "BadRequest": (
        PROBLEM_JSON,
        "Bad Request: malformed JSON, a field that fails validation (`violations` names "
        "it), or a request the handler refused (`code` says why).",
    ),
    "NotFound": (PROBLEM_JSON, "Not Found: nothing exists at this path."),
    "NotAcceptable": (
        PROBLEM_JSON,
        "Not Acceptable: `Accept` admits none of application/json, application/xml and "
        "their problem types; nothing was done.",
    ),
    "UnprocessableContent": (
        PROBLEM_JSON,
        "Unprocessable Content: this `Idempotency-Key` was first used with a different "
        "request; nothing was written.",
    ),
    "PreconditionFailed": (
        PROBLEM_JSON,
        "Precondition Failed: the item has changed since the ETag in `If-Match` was read "
        "(or that ETag is weak), or since the time in `If-Unmodified-Since`; nothing was "
        "written. Read it again.",
    ),
    "ContentTooLarge": (PROBLEM_JSON, "Content Too Large: the body is over the size limit."),
    "UnsupportedMediaType": (
        PROBLEM_JSON,
        "Unsupported Media Type: send the body as `application/json` or `application/xml`, "
        "as it is or with "
        "`Content-Encoding: gzip` (another coding is answered with `Accept-Encoding`).",
    ),
    PROBLEM: (PROBLEM_JSON, "An error, as an RFC 9457 problem document."),
    CONNECT_ERROR: (
        JSON,
        "A Connect error; the HTTP status follows its `code` (Connect's status table).",
    ),
    # What the App's interceptors answer (twofold.core.chain: auth, limits), as
    # problem documents on REST and Connect errors on the Connect paths.
    "Unauthorized": (
        PROBLEM_JSON,
        "Unauthorized (`unauthenticated`): credentials are missing or invalid; "
        "`WWW-Authenticate` says which are wanted.",
    ),
    "Forbidden": (
        PROBLEM_JSON,
        "Forbidden (`permission_denied`): the credentials are valid but lack a scope, "
        "or this caller may not act on this item.",
    ),
    "TooManyRequests": (
        PROBLEM_JSON,
        "Too Many Requests (`resource_exhausted`): a rate or concurrency limit; "
        "retry after `Retry-After` seconds.",
    ),
    "GatewayTimeout": (
        PROBLEM_JSON,
        "Gateway Timeout (`deadline_exceeded`): the deadline (`Request-Timeout` or the "
        "server's own) passed; the call was cancelled.",
    ),
    "ConnectUnauthenticated": (JSON, "`unauthenticated`: credentials are missing or invalid."),
    "ConnectPermissionDenied": (JSON, "`permission_denied`: the credentials lack a scope."),
    "ConnectResourceExhausted": (
        JSON,
        "`resource_exhausted`: a rate, concurrency or size limit; see `Retry-After`.",
    ),
    "ConnectDeadlineExceeded": (
        JSON,
        "`deadline_exceeded`: the deadline (`Connect-Timeout-Ms` or the server's own) passed.",
    ),
}
# The headers some of those answers carry.
ERROR_HEADERS: dict[str, list[str]] = {
    "Unauthorized": ["WWW-Authenticate"],
    "Forbidden": ["WWW-Authenticate"],
    "TooManyRequests": ["Retry-After"],
    "UnsupportedMediaType": ["Accept-Encoding"],
    "ConnectUnauthenticated": ["WWW-Authenticate"],
    "ConnectPermissionDenied": ["WWW-Authenticate"],
    "ConnectResourceExhausted": ["Retry-After"],
}
HEADERS: dict[str, Schema] = {
    "WWW-Authenticate": {
        "description": "The challenge: the scheme and realm, and for a missing scope "
        '`error="insufficient_scope"` with the `scope` wanted.',
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
    },
    "Accept-Encoding": {
        "description": "The content codings a request body may have (RFC 9110 §15.5.16), "
        "sent when it had another.",
        "schema": {"type": "string"},
    },
    "X-Request-Id": {
        "description": "The request's id: the caller's `X-Request-Id` when it was sane, "
        "else one the server made. The access log line of the call carries it too.",
        "schema": {"type": "string"},
    },
}


def response(content_type: str, description: str) -> Schema:
    if content_type == PROBLEM_JSON:
        # REST's problems: problem+xml to a client that prefers XML.
        content = {PROBLEM_JSON: {"schema": ref(PROBLEM)}, PROBLEM_XML: {"schema": ref(PROBLEM)}}
        return {"description": description, "content": content}
    return {"description": description, "content": {content_type: {"schema": ref(CONNECT_ERROR)}}}


def error_schemas() -> dict[str, Schema]:
    violation = {
        "type": "object",
        "properties": {
            "field": {"type": "string", "description": "Dotted path into the request."},
            "description": {"type": "string"},
        },
        "required": ["field", "description"],
    }
    detail = {"type": "object", "properties": {"type": {"type": "string"}}, "required": ["type"]}
    problem = {
        "title": PROBLEM,
        "description": "An RFC 9457 problem document: the body of every REST error.",
        "type": "object",
        "properties": {
            "type": {"type": "string", "description": "Always about:blank."},
            "title": {"type": "string", "description": "The HTTP status phrase."},
            "status": {"type": "integer", "format": "int32"},
            "detail": {"type": "string", "description": "What went wrong, for people."},
            "instance": {"type": "string", "description": "The request path."},
            "code": ref(ERROR_CODE),
            "violations": {"type": "array", "items": violation},
            "details": {"type": "array", "items": detail},
        },
        "required": ["type", "title", "status", "detail", "instance", "code"],
    }
    connect_detail = {
        "type": "object",
        "properties": {
            "type": {"type": "string", "description": "The detail's protobuf type name."},
            "value": {"type": "string", "contentEncoding": "base64"},
            "debug": {"description": "The detail as JSON, for people."},
        },
        "required": ["type", "value"],
    }
    connect = {
        "title": CONNECT_ERROR,
        "description": "Connect's JSON error body.",
        "type": "object",
        "properties": {
            "code": ref(ERROR_CODE),
            "message": {"type": "string"},
            "details": {"type": "array", "items": connect_detail},
        },
        "required": ["code"],
    }
    code = {
        "title": ERROR_CODE,
        "description": "A canonical error code (google.rpc.Code), by its wire name.",
        "type": "string",
        "enum": [c.wire_name for c in Code],
    }
    return {PROBLEM: problem, CONNECT_ERROR: connect, ERROR_CODE: code}
