"""The OpenAPI document declares what the App's interceptors answer: 401/403, 429, 504, ids."""

from __future__ import annotations

from typing import Any

import msgspec
from openapi_spec_validator import validate

from twofold import (
    App,
    Authentication,
    Deadlines,
    JwtBearer,
    RateLimit,
    RequestIds,
    Service,
    public,
    requires,
)

SECRET = "a test secret that is long enough for HS256"


class Note(msgspec.Struct):
    id: int
    text: str = ""


service = Service("notes.v1")
notes = service.resource("notes")


@notes.get
@public
async def get_note(id: int) -> Note:
    return Note(id)


@notes.create
@requires("notes:write")
async def create_note(note: Note) -> Note:
    return note


@service.procedure
@requires("notes:write")
async def purge() -> Note:
    return Note(0)


def document(*interceptors: Any) -> dict[str, Any]:
    authentication = Authentication(JwtBearer(secret=SECRET))
    doc = App(service, interceptors=[*interceptors, authentication]).openapi
    validate(doc)
    return doc


def test_guarded_operations_declare_401_and_403_with_their_challenge() -> None:
    doc = document()
    create = doc["paths"]["/notes"]["post"]
    assert create["security"] == [{"bearerAuth": ["notes:write"]}]
    assert create["responses"]["401"] == {"$ref": "#/components/responses/Unauthorized"}
    assert create["responses"]["403"] == {"$ref": "#/components/responses/Forbidden"}
    components = doc["components"]["responses"]
    assert "WWW-Authenticate" in components["Unauthorized"]["headers"]
    assert "WWW-Authenticate" in components["Forbidden"]["headers"]
    read = doc["paths"]["/notes/{id}"]["get"]
    assert read["security"] == [] and "401" not in read["responses"]
    # A procedure at its Connect path: Connect's error body, the same statuses.
    purge = doc["paths"]["/notes.v1.NotesService/Purge"]["post"]
    assert purge["responses"]["401"] == {"$ref": "#/components/responses/ConnectUnauthenticated"}
    assert purge["responses"]["403"] == {"$ref": "#/components/responses/ConnectPermissionDenied"}
    # Without the extra interceptors: no 429, no REST 504, no id headers.
    assert "429" not in create["responses"] and "504" not in create["responses"]
    assert "504" in purge["responses"]  # Connect-Timeout-Ms is always a client's to send
    names = {p["name"] for p in create.get("parameters", [])}
    assert "Request-Timeout" not in names and "X-Request-Id" not in names


def test_limits_deadlines_and_request_ids_are_declared_where_they_apply() -> None:
    doc = document(RequestIds(), RateLimit(rate=10, burst=10), Deadlines(default=5))
    components = doc["components"]["responses"]
    for path, verb in [("/notes", "post"), ("/notes/{id}", "get")]:
        op = doc["paths"][path][verb]
        assert op["responses"]["429"] == {"$ref": "#/components/responses/TooManyRequests"}
        assert op["responses"]["504"] == {"$ref": "#/components/responses/GatewayTimeout"}
        names = [p["name"] for p in op["parameters"]]
        assert "Request-Timeout" in names and "X-Request-Id" in names
        success = op["responses"]["201" if verb == "post" else "200"]
        assert "X-Request-Id" in success["headers"]
    assert components["TooManyRequests"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
    assert "X-Request-Id" in components["GatewayTimeout"]["headers"]
    assert "X-Request-Id" in components["Unauthorized"]["headers"]
    purge = doc["paths"]["/notes.v1.NotesService/Purge"]["post"]
    assert purge["responses"]["429"] == {"$ref": "#/components/responses/ConnectResourceExhausted"}
    assert "Request-Timeout" not in [p["name"] for p in purge["parameters"]]
    assert "Retry-After" in components["ConnectResourceExhausted"]["headers"]
