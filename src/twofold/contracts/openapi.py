"""OpenAPI 3.1 (or 3.2), derived from the method table: a contract for what the app serves.

Two kinds of operation are documented. Every REST route (a method with an
HTTP binding) exactly as :mod:`twofold.wires.rest` serves it: path and
query parameters, the JSON body, 200, 201 with ``Location`` or 204, and RFC
9457 problem documents for the errors that route can return. And every
procedure at its Connect path (``POST /{service}/{method}``, plus Connect's
GET for side-effect-free ones), since that may be its only HTTP address.
Connect speaks proto3 JSON, so those operations reference the ``.ProtoJSON``
schema variants, in which an int64 may be a string (:mod:`twofold.contracts.schemas`).

Resource methods are reachable over Connect too, but documenting each twice
would bury the REST API under its RPC shadow; the ``.proto`` export is the
contract for RPC clients.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import msgspec

from twofold.contracts import problems
from twofold.contracts.problems import (
    CONNECT_ERROR,
    ERROR_CODE,
    JSON,
    PROBLEM,
)
from twofold.contracts.schemas import PROTO_JSON, Schema, Schemas, ref, used
from twofold.core import messages
from twofold.core.method import Idempotency, Method, StreamKind
from twofold.core.options import MAX_POLL_WAIT
from twofold.core.table import MethodTable
from twofold.http import caching, resumption
from twofold.http.operation import Operation
from twofold.http.routing import Template
from twofold.http.xmlmessage import PROBLEM_NS
from twofold.interceptors import idempotency

# The versions a document can be written in, by the name users give them; 3.1
# stays the default while most tools read 3.1 only (Swagger UI 5 among them).
VERSIONS = {"3.1": "3.1.0", "3.2": "3.2.0"}
DEFAULT_VERSION = "3.1"
OPENAPI_VERSION = VERSIONS[DEFAULT_VERSION]
# REST's other representation (twofold.http.xmlmessage), chosen by Accept.
XML = "application/xml"
EVENT_STREAM = "text/event-stream"


@dataclass(frozen=True, slots=True)
class Policies:
    """What the App's interceptors add to every operation's contract."""

    request_ids: bool = False
    """``RequestIds``: ``X-Request-Id`` is taken from the request and echoed in every answer."""
    deadlines: bool = False
    """``Deadlines``: REST reads ``Request-Timeout`` and answers 504 when a deadline passes."""
    limits: bool = False
    """``RateLimit`` / ``ConcurrencyLimit``: any call may be answered 429 with ``Retry-After``."""


def document(
    table: MethodTable,
    *,
    title: str,
    version: str,
    security_schemes: dict[str, Schema] | None = None,
    policies: Policies = Policies(),
    openapi_version: str = DEFAULT_VERSION,
    max_poll_wait: float = MAX_POLL_WAIT,
) -> dict[str, Any]:
    """The OpenAPI document of every REST route and procedure in ``table``.

    With ``security_schemes`` (twofold.interceptors.auth), each operation says what it
    requires: ``security: []`` for a public one, else the schemes with its
    scopes, and its 401 and 403 answers. ``policies`` add the answers and
    headers of the App's other interceptors (429, 504, ``X-Request-Id``).

    ``openapi_version`` is ``"3.1"`` or ``"3.2"``. The 3.2 document says the
    same with what 3.2 added: an event stream's ``itemSchema`` (each event,
    where 3.1 can only stretch ``schema`` over the whole stream) and tags
    with a display ``summary``, a ``kind`` and a ``parent`` (a resource's tag
    under its service's).

    ``max_poll_wait`` is the App's longest long poll, which the ``wait``
    parameter of a resumable stream's route states.
    """
    if openapi_version not in VERSIONS:
        raise ValueError(
            f"OpenAPI {openapi_version!r} cannot be written: choose one of {', '.join(VERSIONS)}"
        )
    built = _Document(table, security_schemes, policies, openapi_version, max_poll_wait)
    doc = built.build(title, version)
    if security_schemes:
        doc["components"]["securitySchemes"] = security_schemes
    return doc


def encode(doc: dict[str, Any]) -> bytes:
    """Indented JSON with a stable key order, so that two versions diff line by line."""
    return msgspec.json.format(msgspec.json.encode(doc), indent=2) + b"\n"


class _Document:
    def __init__(
        self,
        table: MethodTable,
        security_schemes: dict[str, Schema] | None = None,
        policies: Policies = Policies(),
        openapi_version: str = DEFAULT_VERSION,
        max_poll_wait: float = MAX_POLL_WAIT,
    ) -> None:
        self.table = table
        self.version = openapi_version
        self.max_poll_wait = max_poll_wait
        self.security_schemes = security_schemes
        self.policies = policies
        self.services = {s.full_name: s for s in table.services}
        self.bodies = {m: _body_type(m) for m in table if m.http and m.http.body is not None}
        self.schemas = Schemas(self._types())
        taken = {PROBLEM, CONNECT_ERROR, ERROR_CODE} & set(self.schemas.components)
        if taken:
            raise ValueError(f"message type names {sorted(taken)} are reserved by OpenAPI")
        self.paths: dict[str, dict[str, Schema]] = {}
        self.tags: dict[str, str] = {}  # name -> description, in order of first use
        self.responses: set[str] = set()
        self.operations: list[tuple[Method, Schema]] = []

    def _types(self) -> Iterator[Any]:
        for method in self.table:
            yield method.input_type
            yield method.output_type
            for field in messages.fields(method.input_type):
                yield field.type
        yield from self.bodies.values()

    def build(self, title: str, version: str) -> dict[str, Any]:
        for method in self.table:
            if method.http is not None:
                path, verb, op = self._rest(method)
                self._add(method, path, verb, self._guarded(method, op, rest=True))
            # A stream's Connect path takes enveloped messages (application/
            # connect+json), a framing JSON Schema cannot describe: the .proto
            # is the contract there, as for every RPC of a resource.
            if not method.resource and method.kind is StreamKind.UNARY:
                for verb, op in self._connect(method):
                    self._add(method, method.path, verb, self._guarded(method, op, rest=False))
        _unique_operation_ids(self.operations)
        info: Schema = {"title": title, "version": version}
        described = [s for s in self.table.services if s.description]
        if len(self.table.services) == 1 and described:
            info["description"] = described[0].description
        elif described:
            info["description"] = "\n\n".join(
                f"**{s.full_name}**: {s.description}" for s in described
            )
        responses = {
            name: self._with_request_id(problems.response(*problems.RESPONSES[name]), name)
            for name in sorted(self.responses)
        }
        # Only what the operations reference: a resource method's request
        # message, say, is never a body, and needs no component.
        schemas = used([self.paths, responses], {**self.schemas.all(), **problems.error_schemas()})
        _xml_objects(schemas)
        return {
            "openapi": VERSIONS[self.version],
            "info": info,
            "tags": self._tags(),
            "paths": self.paths,
            "components": {"schemas": schemas, "responses": responses},
        }

    def _tags(self) -> list[Schema]:
        """The tags, in order of first use; in 3.2 a navigation tree.

        3.2's ``parent`` nests a tag under another: a tag that only methods of
        one service carry (a resource's plural, say) goes under the service's
        own tag, which is then listed even if no operation carries it itself.
        The service's tag gets its short name as ``summary``, for display in
        place of the qualified name; every tag is ``kind: nav`` (the registry's
        value for navigation).
        """
        if self.version == "3.1":
            return [
                {"name": n, "description": d} if d else {"name": n} for n, d in self.tags.items()
            ]
        owners: dict[str, set[str]] = {}
        for method, _ in self.operations:
            for name in method.tags or (method.service,):
                owners.setdefault(name, set()).add(method.service)
        listed: dict[str, Schema] = {}
        for name, description in self.tags.items():
            services = owners.get(name, set())
            parent = next(iter(services)) if len(services) == 1 else None
            if parent is not None and parent != name and parent not in listed:
                listed[parent] = self._service_tag(parent)
            if name in self.services:
                listed.setdefault(name, self._service_tag(name))
                continue
            tag: Schema = {"name": name}
            if description:
                tag["description"] = description
            if parent is not None and parent != name:
                tag["parent"] = parent
            tag["kind"] = "nav"
            listed[name] = tag
        return list(listed.values())

    def _service_tag(self, name: str) -> Schema:
        service = self.services[name]
        tag: Schema = {"name": name, "summary": service.name}
        if service.description:
            tag["description"] = service.description
        tag["kind"] = "nav"
        return tag

    def _add(self, method: Method, path: str, verb: str, op: Schema) -> None:
        item = self.paths.setdefault(path, {})
        if verb in item:
            other = item[verb]["operationId"]
            raise ValueError(f"{verb.upper()} {path} is both {other} and {op['operationId']}")
        item[verb] = op
        self.operations.append((method, op))

    def _guarded(self, method: Method, op: Schema, rest: bool) -> Schema:
        """The operation with what the App's interceptors add: security, 401/403, 429, 504."""
        responses: Schema = op["responses"]
        need = method.security
        if self.security_schemes:
            if need is None or need.public:
                op["security"] = []
            else:
                op["security"] = [{name: list(need.scopes)} for name in self.security_schemes]
                responses["401"] = self._shared(
                    "Unauthorized" if rest else "ConnectUnauthenticated"
                )
                responses["403"] = self._shared("Forbidden" if rest else "ConnectPermissionDenied")
        if self.policies.limits:
            responses["429"] = self._shared(
                "TooManyRequests" if rest else "ConnectResourceExhausted"
            )
        # Connect's clients always may send a deadline (Connect-Timeout-Ms);
        # REST's Request-Timeout and @timeout are the Deadlines interceptor's.
        if not rest or self.policies.deadlines:
            responses["504"] = self._shared("GatewayTimeout" if rest else "ConnectDeadlineExceeded")
        parameters: list[Schema] = op.setdefault("parameters", [])
        if rest and self.policies.deadlines:
            parameters.append(_REQUEST_TIMEOUT)
        if self.policies.request_ids:
            parameters.append(_REQUEST_ID)
            for status, answer in responses.items():
                if "$ref" not in answer:  # the shared answers get it in build()
                    self._with_request_id(answer, status)
        if not parameters:
            del op["parameters"]
        op["responses"] = dict(
            sorted(responses.items(), key=lambda kv: (kv[0] == "default", kv[0]))
        )
        return op

    def _with_request_id(self, answer: Schema, name: str) -> Schema:
        headers = {h: problems.HEADERS[h] for h in problems.ERROR_HEADERS.get(name, ())}
        if self.policies.request_ids:
            headers["X-Request-Id"] = problems.HEADERS["X-Request-Id"]
        if headers:
            answer.setdefault("headers", {}).update(headers)
        return answer

    def _shared(self, name: str) -> Schema:
        self.responses.add(name)
        return {"$ref": f"#/components/responses/{name}"}

    def _operation(self, method: Method, operation_id: str) -> Schema:
        tags = list(method.tags) or [method.service]
        for tag in tags:
            service = self.services.get(tag)
            self.tags.setdefault(tag, service.description if service else "")
        op: Schema = {"tags": tags}
        if method.summary:
            op["summary"] = method.summary
        if method.description and method.description != method.summary:
            op["description"] = method.description
        op["operationId"] = operation_id
        return op

    def _rest(self, method: Method) -> tuple[str, str, Schema]:
        binding = method.http
        assert binding is not None
        # The route and request exactly as REST serves them.
        shape = Operation.build(method)
        template = shape.template
        read = shape.read
        fields = {f.name: f for f in messages.fields(method.input_type)}
        params = [self._parameter(fields[name], "path") for name in template.variables]
        query = [f for name, f in fields.items() if name in shape.query_fields]
        params += [self._parameter(f, "query") for f in query]
        op = self._operation(method, method.name)
        streams = method.kind is not StreamKind.UNARY
        # A stream is live: no validator to revalidate it against.
        headers = (
            [] if streams else [_IF_NONE_MATCH] if read else [_IF_MATCH] if shape.if_match else []
        )
        if not streams and read and _declares_modified(method):
            headers.append(_IF_MODIFIED_SINCE)
        if shape.unmodified:
            headers.append(_IF_UNMODIFIED_SINCE)
        if shape.keyed:
            headers.append(_IDEMPOTENCY_KEY)
        if method.resume is not None:
            # The header is the request's `after` field: it takes that field's values.
            after = _without_null(self.schemas.schema(fields[method.resume.after].type))
            headers.append(_last_event_id(method.resume.after, after))
            params.append(_wait(method.resume.after, self.max_poll_wait))
        if params or headers:
            op["parameters"] = params + headers
        if binding.body is not None:
            if binding.body == "*":
                required = any(f.required for n, f in fields.items() if n not in template.variables)
            else:
                required = fields[binding.body].required
            schema = self.schemas.schema(self.bodies[method])
            content: Schema = {JSON: {"schema": schema}}
            if shape.upload is None:
                content[XML] = {"schema": self.schemas.schema(self.bodies[method])}
            else:
                # The file raw or as a form part (twofold.http.files); JSON (base64) still works.
                content = {**_upload_content(shape.upload), **content}
            op["requestBody"] = {"required": required, "content": content}
        if shape.download:
            op.setdefault("parameters", []).extend(_RANGE_HEADERS)
        op["responses"] = self._rest_responses(method, shape, bool(params))
        if shape.download:
            _download_responses(op["responses"], str(shape.status))
        return _openapi_path(template), binding.verb.lower(), op

    def _parameter(self, field: messages.Field, where: str) -> Schema:
        # A query value is text and an absent one takes the default: "null"
        # cannot be sent, so an Optional field is documented without it.
        schema = _without_null(self.schemas.schema(field.type))
        if field.default is not msgspec.NODEFAULT and field.default is not None:
            schema["default"] = msgspec.to_builtins(field.default)
        param: Schema = {"name": field.name, "in": where}
        if isinstance(schema.get("description"), str):
            param["description"] = schema.pop("description")
        param["required"] = where == "path" or field.required
        param["schema"] = schema
        if where == "query" and messages.is_repeated(field.type):
            # ?tag=a&tag=b, which is how http.operation.add_query collects a repeated field.
            param["style"], param["explode"] = "form", True
        return param

    def _rest_responses(self, method: Method, shape: Operation, has_params: bool) -> Schema:
        binding = method.http
        assert binding is not None
        template, status = shape.template, shape.status
        success: Schema = {"description": _phrase(status)}
        if binding.location:
            success["headers"] = {
                "Location": {
                    "description": "The path of the created item.",
                    "required": True,
                    "schema": {"type": "string", "format": "uri-reference"},
                }
            }
            if any(m.http and m.http.verb == "GET" and m.http.path == binding.location
                   for m in self.table):  # fmt: skip
                success["links"] = _get_created_link(binding.location, binding.location_field)
        streams = method.kind is not StreamKind.UNARY
        if streams:
            # 3.2 has a keyword for what each item of a sequential media type
            # is; 3.1 tools read an event stream's `schema` as one event.
            key = "schema" if self.version == "3.1" else "itemSchema"
            success["content"] = {EVENT_STREAM: {key: self._event(method)}}
            if method.resume is not None:
                # ?wait= asks for a long poll: the same 200 as one batch, in
                # JSON or XML (twofold.wires.longpoll).
                batch = self._batch(method)
                success["content"][JSON] = {"schema": batch}
                success["content"][XML] = {"schema": batch}
        elif status != 204:
            schema = self.schemas.schema(method.output_type)
            success["content"] = {
                JSON: {"schema": schema},
                XML: {"schema": self.schemas.schema(method.output_type)},
            }
        read = binding.verb == "GET" and not streams
        success.setdefault("headers", {}).update(_success_headers(method, read))
        out: Schema = {str(status): success}
        if streams and method.resume is not None:
            success["headers"]["Link"] = _NEXT_POLL
            out["204"] = {
                "description": "No Content: a long poll's `wait` passed with no event. "
                "`Link` is the next poll, after the same cursor.",
                "headers": {
                    "Cache-Control": success["headers"]["Cache-Control"],
                    "Link": _NEXT_POLL,
                },
            }
        if read:
            out["304"] = {
                "description": "Not Modified: the ETag in `If-None-Match` is still current.",
                "headers": _success_headers(method, read),
            }
        # Only what this route can really answer: decoding input gives 400,
        # a path variable can name nothing (404), only a body can be too
        # large or of the wrong type; anything else a handler raises is default.
        if has_params or binding.body is not None:
            out["400"] = self._shared("BadRequest")
        if template.variables:
            out["404"] = self._shared("NotFound")
        # An event stream is not negotiated (twofold.wires.sse); a long poll
        # answers JSON only (twofold.wires.longpoll).
        if not streams or method.resume is not None:
            out["406"] = self._shared("NotAcceptable")
        if shape.if_match or shape.unmodified:
            out["412"] = self._shared("PreconditionFailed")
        if shape.keyed:
            out["422"] = self._shared("UnprocessableContent")
        if binding.body is not None:
            out["413"] = self._shared("ContentTooLarge")
            out["415"] = self._shared("UnsupportedMediaType")
        out["default"] = self._shared(PROBLEM)
        return dict(sorted(out.items(), key=lambda kv: (kv[0] == "default", kv[0])))

    def _batch(self, method: Method) -> Schema:
        """A long poll's 200 (twofold.wires.longpoll): the events, and the cursor."""
        resume = method.resume
        assert resume is not None
        return {
            "type": "object",
            "properties": {
                "events": {
                    "type": "array",
                    "items": {**self.schemas.schema(method.output_type), "xml": {"name": "events"}},
                    "minItems": 1,
                    "maxItems": resumption.MAX_POLL_EVENTS,
                    "xml": {"wrapped": False},
                },
                "cursor": {
                    "type": "string",
                    "description": f"The last event's `{resume.event_id}`: the next poll's "
                    f"`{resume.after}`.",
                },
            },
            "required": ["events", "cursor"],
            "description": "A long poll's answer (`wait` given): the events after the "
            "cursor sent, oldest first, as many as were ready.",
            "xml": {"name": "Batch"},
        }

    def _event(self, method: Method) -> Schema:
        """One Server-Sent Event of a stream (twofold.wires.sse): 3.2's
        ``itemSchema``, or 3.1's ``schema`` as tools read an event stream: each
        event on its own, its ``data`` a message as JSON, or a last ``error``
        event's problem."""

        def data(schema: Schema) -> Schema:
            return {"type": "string", "contentMediaType": JSON, "contentSchema": schema}

        self.responses.add(PROBLEM)  # so that the Problem schema is in the document
        resume = method.resume
        if resume is None:
            about_id = "The event's place in the stream (1, 2, ...)."
        else:
            about_id = (
                f"The message's `{resume.event_id}`: send the last one seen as "
                "`Last-Event-ID` to resume after it."
            )
        return {
            "type": "object",
            "properties": {
                "event": {"type": "string", "enum": ["message", "error"]},
                "data": {"type": "string"},
                "id": {"type": "string", "description": about_id},
                "retry": {
                    "type": "integer",
                    "description": "Milliseconds to wait before reconnecting (on the first event).",
                },
            },
            "required": ["data"],
            "if": {"properties": {"event": {"const": "error"}}, "required": ["event"]},
            "then": {"properties": {"data": data(ref(PROBLEM))}},
            "else": {
                "properties": {"data": data(self.schemas.schema(method.output_type))},
                "required": ["id"],
            },
            "description": "Each output message is one event whose data is its JSON, with "
            "an id; a failure after the first is a last `error` event whose data is a "
            "problem document.",
        }

    def _connect(self, method: Method) -> list[tuple[str, Schema]]:
        base = method.name if method.http is None else f"{method.name}Connect"
        request = self.schemas.proto_json(method.input_type)
        # A GET with no message is the empty message, so the message is only
        # required when a field is. A POST always needs its Content-Type (the
        # app cannot tell the protocol without it: 415), hence a body, if only {}.
        required = any(f.required for f in messages.fields(method.input_type))
        post = self._operation(method, base)
        post["parameters"] = [_connect_version_header(), _connect_timeout_header()]
        post["requestBody"] = {"required": True, "content": {JSON: {"schema": request}}}
        post["responses"] = self._connect_responses(method)
        ops = [("post", post)]
        if method.idempotency is Idempotency.NO_SIDE_EFFECTS:
            # Connect's GET carries the message in the query string, so that
            # HTTP caches can keep side-effect-free calls.
            get = self._operation(method, f"{base}Get")
            parameters = _connect_get_parameters(request, required)
            get["parameters"] = [*parameters, _connect_timeout_header()]
            get["responses"] = self._connect_responses(method)
            ops.append(("get", get))
        return ops

    def _connect_responses(self, method: Method) -> Schema:
        schema = self.schemas.proto_json(method.output_type)
        return {
            "200": {"description": "OK", "content": {JSON: {"schema": schema}}},
            "default": self._shared(CONNECT_ERROR),
        }


def _get_created_link(location: str, id_field: str) -> Schema:
    """The OpenAPI link from a create to the Get of what it created, for tools
    that chain calls (stateful tests): the new id from the body, the parents'
    from the request's path."""
    template = Template.parse(location)
    *parents, last = template.variables
    parameters = {name: f"$request.path.{name}" for name in parents}
    parameters[last] = f"$response.body#/{id_field}"
    pointer = _openapi_path(template).replace("~", "~0").replace("/", "~1")
    return {"GetCreated": {"operationRef": f"#/paths/{pointer}/get", "parameters": parameters}}


_IF_NONE_MATCH: Schema = {
    "name": "If-None-Match",
    "in": "header",
    "description": "ETags the client holds: a current one is answered 304 without a body.",
    "required": False,
    "schema": {"type": "string"},
}
_IF_MATCH: Schema = {
    "name": "If-Match",
    "in": "header",
    "description": "Write only if the item's ETag is still this one (else 412); * for any.",
    "required": False,
    # An ETag's characters (RFC 9110 §8.8.3: 0x21 and 0x23-0x7E) spelled as
    # themselves, not as \x escapes, which not every generator reads.
    "schema": {"type": "string", "pattern": '^(\\*|"[!#-~]+")$'},
}

_FRACTION = "(\\.[0-9]+)?"
_SECONDS_PATTERN = (
    "^0*("
    + "|".join(
        [
            f"[1-9][0-9]{{0,3}}{_FRACTION}",  # 1 to 9999.x
            f"[1-7][0-9]{{4}}{_FRACTION}",  # 10000 to 79999.x
            f"8[0-5][0-9]{{3}}{_FRACTION}",  # 80000 to 85999.x
            f"86[0-3][0-9]{{2}}{_FRACTION}",  # 86000 to 86399.x
            "86400(\\.0+)?",
            "\\.[0-9]*[1-9][0-9]*",  # 0.x, not all zeros
        ]
    )
    + ")$"
)
_REQUEST_TIMEOUT: Schema = {
    "name": "Request-Timeout",
    "in": "header",
    "description": "The call's deadline, in seconds from now (decimal, e.g. 2.5; at most "
    "86400): when it passes the call is cancelled and answered 504.",
    "required": False,
    # Exactly what twofold.interceptors.limits takes: decimal seconds in (0, 86400]; "0"
    # fits the shape of a number but not the range, so the pattern spells it.
    "schema": {"type": "string", "pattern": _SECONDS_PATTERN, "maxLength": 32},
}
_REQUEST_ID: Schema = {
    "name": "X-Request-Id",
    "in": "header",
    "description": "An id for this request, echoed in the answer and logged with the call "
    "(1 to 128 characters of A-Za-z0-9._:/+=-; anything else is replaced).",
    "required": False,
    "schema": {"type": "string"},
}
# An HTTP-date (IMF-fixdate), as Last-Modified gives it.
_HTTP_DATE = {"type": "string", "examples": ["Sun, 06 Nov 1994 08:49:37 GMT"]}
_IF_MODIFIED_SINCE: Schema = {
    "name": "If-Modified-Since",
    "in": "header",
    "description": "A Last-Modified the client holds: answered 304 without a body if the "
    "item has not changed since. Ignored when If-None-Match is given.",
    "required": False,
    "schema": _HTTP_DATE,
}
_IF_UNMODIFIED_SINCE: Schema = {
    "name": "If-Unmodified-Since",
    "in": "header",
    "description": "Write only if the item has not changed since this time, its "
    "Last-Modified (else 412). Ignored with If-Match, or when not an HTTP-date.",
    "required": False,
    "schema": _HTTP_DATE,
}

_IDEMPOTENCY_KEY: Schema = {
    "name": "Idempotency-Key",
    "in": "header",
    "description": "A retry with the same key (and the same request) returns the first "
    "answer instead of writing again.",
    "required": False,
    "schema": {"type": "string", "maxLength": idempotency.MAX_KEY_LENGTH, "pattern": "^[ -~]*$"},
}


def _last_event_id(after: str, schema: Schema) -> Schema:
    """SSE's reconnection header, for a stream that can resume (``@resumable``)."""
    return {
        "name": "Last-Event-ID",
        "in": "header",
        "description": f"The id of the last event received: the stream resumes after it "
        f"(it is the request's `{after}`, and takes precedence over the query's).",
        "required": False,
        "schema": schema,
    }


_NEXT_POLL: Schema = {
    "description": 'A long poll\'s next poll, after its cursor: `<url>; rel="next"`.',
    "schema": {"type": "string"},
}


def _wait(after: str, maximum: float) -> Schema:
    """A resumable stream's long-poll switch (twofold.wires.longpoll)."""
    return {
        "name": resumption.WAIT,
        "in": "query",
        "description": "Long polling: answer with the events after "
        f"`{after}` (200, JSON) as soon as there are any, or 204 after this many "
        f"seconds. Held {maximum:g} s at most: a longer wait is taken as {maximum:g}. "
        "0 answers with what is there now. Without it the route is an event stream.",
        "required": False,
        "schema": {"type": "number", "minimum": 0},
    }


def _declares_modified(method: Method) -> bool:
    """Whether the method's output has a modification time (twofold.http.caching)."""
    return caching.MODIFIED_FIELD in {f.name for f in messages.fields(method.output_type)}


def _success_headers(method: Method, read: bool) -> Schema:
    """The caching headers of a successful answer (twofold.http.caching)."""
    text = {"type": "string"}
    headers: Schema = {
        "Cache-Control": {"description": "How caches may keep this answer.", "schema": text}
    }
    if method.kind is StreamKind.UNARY and _declares_modified(method):
        headers["Last-Modified"] = {
            "description": "When the item last changed, to whole seconds: send it in "
            + ("If-Modified-Since to revalidate." if read else "If-Unmodified-Since."),
            "required": True,
            "schema": _HTTP_DATE,
        }
    if read:
        headers["ETag"] = {
            "description": "A strong validator: send it in If-None-Match to revalidate.",
            "required": True,
            "schema": text,
        }
        headers["Vary"] = {"description": "Request headers the answer depends on.", "schema": text}
        output = {f.name for f in messages.fields(method.output_type)}
        if "next_page_token" in output:
            headers["Link"] = {
                "description": 'The next page, as `<url>; rel="next"`, when there is one.',
                "schema": text,
            }
    return headers


_BINARY: Schema = {"type": "string", "contentMediaType": "application/octet-stream"}
_RANGE_HEADERS: list[Schema] = [
    {
        "name": "Range",
        "in": "header",
        "description": "Bytes to send (`bytes=0-99`); several are answered as one span.",
        "schema": {"type": "string"},
    },
    {
        "name": "If-Range",
        "in": "header",
        "description": "The ETag the range must be of; otherwise the whole file is sent.",
        "schema": {"type": "string"},
    },
]


def _upload_content(field: str) -> Schema:
    """The upload's media types: the file itself, or a form with it in part ``field``."""
    form = {"type": "object", "required": [field], "properties": {field: _BINARY}}
    return {
        "application/octet-stream": {"schema": _BINARY},
        "multipart/form-data": {"schema": form, "encoding": {field: {"contentType": "*/*"}}},
    }


def _download_responses(responses: Schema, status: str) -> None:
    """A download answers with the file's bytes, in full or as a range (twofold.http.files)."""
    success = responses[status]
    # application/octet-stream stands for any media type here: generators
    # (openapi-python-client) read it as bytes, and refuse */*.
    success["content"] = {"application/octet-stream": {"schema": _BINARY}}
    text = {"type": "string"}
    success["headers"]["Content-Disposition"] = {
        "description": "`attachment` and the file name, when the file has one.",
        "schema": text,
    }
    success["headers"]["Accept-Ranges"] = {"description": "`bytes`.", "schema": text}
    partial = dict(success)
    partial["description"] = "Partial Content: the span the `Range` header asked for."
    partial["headers"] = {
        **success["headers"],
        "Content-Range": {"description": "`bytes first-last/size`.", "required": True,
                          "schema": text},
    }  # fmt: skip
    responses["206"] = partial
    responses["416"] = {
        "description": "Range Not Satisfiable: no byte of the range exists, or too many ranges.",
        "headers": {"Content-Range": {"description": "`bytes */size`.", "schema": text}},
        "content": {
            "application/problem+json": {"schema": {"$ref": f"#/components/schemas/{PROBLEM}"}}
        },
    }
    responses.pop("406", None)  # a file is sent in its own media type, whatever Accept says
    ordered = dict(sorted(responses.items(), key=lambda kv: (kv[0] == "default", kv[0])))
    responses.clear()
    responses.update(ordered)


def _body_type(method: Method) -> Any:
    """What a REST body decodes into: the message, the message less its path
    fields (the same subset rest.py decodes), or one field's type."""
    binding = method.http
    assert binding is not None
    fields = messages.fields(method.input_type)
    if binding.body != "*":
        return next(f.type for f in fields if f.name == binding.body)
    path = set(binding.path_params)
    if not path:
        return method.input_type
    names = [f.name for f in fields if f.name not in path]
    module = method.input_type.__module__
    return messages.subset(f"{method.name}Body", method.input_type, names, module)


def _openapi_path(template: Template) -> str:
    # Variables are already whole segments named {name}; a custom verb stays
    # literal text after the colon (/orders/{order_id}:cancel).
    path = "/" + "/".join(template.segments)
    return f"{path}:{template.verb}" if template.verb else path


def _without_null(schema: Schema) -> Schema:
    branches = schema.get("anyOf")
    if isinstance(branches, list) and {"type": "null"} in branches:
        rest = [b for b in branches if b != {"type": "null"}]
        outer = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
        return {**outer, **rest[0]} if len(rest) == 1 else {**outer, "anyOf": rest}
    return schema


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"Status {status}"


def _xml_objects(schemas: dict[str, Schema]) -> None:
    """The XML mapping (twofold.http.xmlmessage) in OpenAPI's terms: a message's
    root element is its name, a list is its element repeated (not wrapped);
    the problem document is RFC 9457 Appendix B's."""
    for name, schema in schemas.items():
        if "properties" not in schema or name.endswith(PROTO_JSON):
            continue
        if name == PROBLEM:
            schema["xml"] = {"name": "problem", "namespace": PROBLEM_NS}
            for member in ("violations", "details"):
                array = schema["properties"][member]
                array["xml"] = {"wrapped": True}
                array["items"] = {**array["items"], "xml": {"name": "i"}}
            continue
        schema["xml"] = {"name": name}
        for key, prop in schema["properties"].items():
            # Named where the element is, never left to a referenced schema's
            # own `xml.name` (its root name), which OpenAPI readers differ on
            # applying to a property or a list's items: the element is the field's.
            options = prop.get("anyOf", [prop])
            for option in options:
                if isinstance(option, dict) and option.get("type") == "array":
                    prop["xml"] = {"wrapped": False}
                    if "$ref" in option.get("items", {}):
                        option["items"] = {**option["items"], "xml": {"name": key}}
            if any(isinstance(o, dict) and "$ref" in o for o in options):
                prop["xml"] = {"name": key}


def _connect_version_header() -> Schema:
    return {
        "name": "Connect-Protocol-Version",
        "in": "header",
        "description": "The Connect protocol version; Connect clients send 1.",
        "required": False,
        "schema": {"type": "string", "enum": ["1"]},
    }


def _connect_timeout_header() -> Schema:
    return {
        "name": "Connect-Timeout-Ms",
        "in": "header",
        "description": "The call's deadline, in milliseconds from now.",
        "required": False,
        # A positive integer of at most 10 digits, as the Connect protocol asks.
        "schema": {"type": "string", "pattern": "^(?=[0-9]{1,10}$)0*[1-9][0-9]*$"},
    }


def _connect_get_parameters(request: Schema, required: bool) -> list[Schema]:
    def text(name: str, values: list[str], description: str, required: bool) -> Schema:
        schema = {"type": "string", "enum": values}
        return {"name": name, "in": "query", "description": description,
                "required": required, "schema": schema}  # fmt: skip

    message = {
        "name": "message",
        "in": "query",
        "description": "The request message as JSON, URL-encoded.",
        "required": required,
        "content": {JSON: {"schema": request}},
    }
    return [
        message,
        text("encoding", ["json"], "The codec of `message`.", True),
        # Not `base64=1` (message base64url-encoded), which connect.py also
        # takes: it changes what `message` must be, and OpenAPI has no way to
        # say so; a client that sets it follows the Connect protocol anyway.
        text("connect", ["v1"], "The Connect protocol version.", False),
    ]


def _unique_operation_ids(operations: list[tuple[Method, Schema]]) -> None:
    """RPC names are unique within a service only: qualify the ones two services share."""
    counts = Counter(op["operationId"] for _, op in operations)
    for method, op in operations:
        if counts[op["operationId"]] > 1:
            op["operationId"] = f"{method.service.replace('.', '_')}_{op['operationId']}"
    clashes = [n for n, c in Counter(op["operationId"] for _, op in operations).items() if c > 1]
    if clashes:
        raise ValueError(f"operationIds {clashes} are not unique")
