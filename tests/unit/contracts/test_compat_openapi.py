"""The OpenAPI side of ``twofold check``: a corpus of changes, each with its verdict.

Each case edits a copy of one document and names the rules the change must
raise (an empty set: not breaking, and nothing may be reported). Requests
must accept what they accepted; responses must return nothing new.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from twofold.compat import ContractError, openapi

Doc = dict[str, Any]

ITEM_REF = {"$ref": "#/components/schemas/Item"}
JSON = "application/json"


def _base() -> Doc:
    return {
        "openapi": "3.1.0",
        "info": {"title": "shop", "version": "1"},
        "paths": {
            "/items": {
                "get": {
                    "operationId": "ListItems",
                    "summary": "List items.",
                    "parameters": [
                        {
                            "name": "page_size",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "format": "int32", "maximum": 100},
                        },
                        {"name": "category", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "shop",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {
                                JSON: {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "items": {"type": "array", "items": ITEM_REF}
                                        },
                                        "required": ["items"],
                                    }
                                }
                            },
                        }
                    },
                },
                "post": {
                    "operationId": "CreateItem",
                    "requestBody": {
                        "required": True,
                        "content": {JSON: {"schema": {"$ref": "#/components/schemas/NewItem"}}},
                    },
                    "responses": {
                        "201": {
                            "description": "Created",
                            "headers": {
                                "Location": {"required": True, "schema": {"type": "string"}}
                            },
                            "content": {JSON: {"schema": ITEM_REF}},
                        },
                        "400": {"$ref": "#/components/responses/Problem"},
                    },
                    "security": [{"bearer": ["items:write"]}],
                },
            },
            "/items/{id}": {
                "parameters": [
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "format": "int64", "minimum": 1},
                    }
                ],
                "get": {
                    "operationId": "GetItem",
                    "responses": {
                        "200": {
                            "description": "OK",
                            "headers": {"ETag": {"required": True, "schema": {"type": "string"}}},
                            "content": {JSON: {"schema": ITEM_REF}},
                        },
                        "404": {"$ref": "#/components/responses/Problem"},
                    },
                },
                "patch": {
                    "operationId": "UpdateItem",
                    "requestBody": {
                        "content": {JSON: {"schema": {"$ref": "#/components/schemas/ItemPatch"}}}
                    },
                    "responses": {
                        "200": {"description": "OK", "content": {JSON: {"schema": ITEM_REF}}}
                    },
                },
            },
        },
        "components": {
            "schemas": {
                "Item": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer", "format": "int64"},
                        "name": {"type": "string", "maxLength": 100},
                        "price": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]{2})?$"},
                        "status": {"$ref": "#/components/schemas/Status"},
                        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                        "media": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/Book"},
                                {"$ref": "#/components/schemas/Film"},
                            ],
                            "discriminator": {"propertyName": "type"},
                        },
                        "owner": {"type": "string", "readOnly": True},
                    },
                    "required": ["id", "name", "price", "status"],
                },
                "NewItem": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "minLength": 1, "maxLength": 100},
                        "price": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]{2})?$"},
                        "quantity": {"type": "integer", "minimum": 0, "maximum": 1000},
                        "status": {"$ref": "#/components/schemas/Status"},
                        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 20},
                        "owner": {"type": "string", "readOnly": True},
                        "unit": {"type": "string", "enum": ["piece", "kg"]},
                        "media": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/Book"},
                                {"$ref": "#/components/schemas/Film"},
                            ],
                        },
                    },
                    "required": ["name", "price"],
                    "additionalProperties": False,
                },
                # Unknown properties are ignored here, as Connect does.
                "ItemPatch": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "note": {"type": "string"}},
                },
                "Status": {"enum": ["draft", "listed"]},
                "Book": {
                    "type": "object",
                    "properties": {"type": {"const": "book"}, "pages": {"type": "integer"}},
                    "required": ["type"],
                },
                "Film": {
                    "type": "object",
                    "properties": {"type": {"const": "film"}, "minutes": {"type": "integer"}},
                    "required": ["type"],
                },
                "Problem": {
                    "type": "object",
                    "properties": {"title": {"type": "string"}, "status": {"type": "integer"}},
                },
            },
            "responses": {
                "Problem": {
                    "description": "A problem",
                    "content": {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    },
                }
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _schemas(doc: Doc) -> Doc:
    return doc["components"]["schemas"]  # type: ignore[no-any-return]


def _list_params(doc: Doc) -> list[Doc]:
    return doc["paths"]["/items"]["get"]["parameters"]  # type: ignore[no-any-return]


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    """An edit that sets the value at a slash-separated path (JSON pointer style)."""

    def edit(doc: Doc) -> None:
        *parents, last = path.split("/")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = value

    return edit


def _delete(path: str) -> Callable[[Doc], None]:
    def edit(doc: Doc) -> None:
        *parents, last = path.split("/")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[last]

    return edit


def _then(*edits: Callable[[Doc], None]) -> Callable[[Doc], None]:
    def edit(doc: Doc) -> None:
        for one in edits:
            one(doc)

    return edit


S = "components/schemas"
NEW_ITEM = f"{S}/NewItem"
ITEM = f"{S}/Item"


def _op(path: str, method: str) -> Callable[[Callable[[Doc], None]], Callable[[Doc], None]]:
    """An edit of one operation (paths have slashes in their keys)."""

    def wrap(inner: Callable[[Doc], None]) -> Callable[[Doc], None]:
        def edit(doc: Doc) -> None:
            inner(doc["paths"][path][method])

        return edit

    return wrap


def _add_param(param: Doc) -> Callable[[Doc], None]:
    return lambda doc: _list_params(doc).append(param)


# (id, edit, the rules it must raise; empty: not breaking)
BREAKING: list[tuple[str, Callable[[Doc], None], set[str]]] = [
    ("path removed", lambda d: d["paths"].pop("/items/{id}"), {"PATH_REMOVED"}),
    (
        "operation removed",
        lambda d: d["paths"]["/items"].pop("post"),
        {"OPERATION_REMOVED"},
    ),
    (
        "new required request property",
        _then(
            _set(f"{NEW_ITEM}/properties/sku", {"type": "string"}),
            _set(f"{NEW_ITEM}/required", ["name", "price", "sku"]),
        ),
        {"REQUEST_NEW_REQUIRED_PROPERTY"},
    ),
    (
        "optional request property became required",
        _set(f"{NEW_ITEM}/required", ["name", "price", "quantity"]),
        {"REQUEST_PROPERTY_BECAME_REQUIRED"},
    ),
    (
        "request property removed where unknown ones are refused",
        _delete(f"{NEW_ITEM}/properties/tags"),
        {"REQUEST_PROPERTY_REMOVED"},
    ),
    (
        "request enum value removed",
        _set(f"{S}/Status/enum", ["listed"]),
        {"REQUEST_ENUM_VALUE_REMOVED"},
    ),
    (
        "request type changed",
        _set(f"{NEW_ITEM}/properties/quantity", {"type": "string"}),
        {"REQUEST_TYPE_CHANGED"},
    ),
    (
        "request format added",
        _set(f"{NEW_ITEM}/properties/quantity/format", "int32"),
        {"REQUEST_FORMAT_CHANGED"},
    ),
    (
        "request format narrowed int64 to int32",
        lambda d: d["paths"]["/items/{id}"]["parameters"][0]["schema"].update(format="int32"),
        {"REQUEST_FORMAT_CHANGED"},
    ),
    (
        "request maxLength lowered",
        _set(f"{NEW_ITEM}/properties/name/maxLength", 50),
        {"REQUEST_BOUND_NARROWED"},
    ),
    (
        "request minimum raised",
        _set(f"{NEW_ITEM}/properties/quantity/minimum", 1),
        {"REQUEST_BOUND_NARROWED"},
    ),
    (
        "request maximum made exclusive",
        _then(
            _delete(f"{NEW_ITEM}/properties/quantity/maximum"),
            _set(f"{NEW_ITEM}/properties/quantity/exclusiveMaximum", 1000),
        ),
        {"REQUEST_BOUND_NARROWED"},
    ),
    (
        "request pattern narrowed",
        _set(f"{NEW_ITEM}/properties/price/pattern", "^[0-9]{1,6}(\\.[0-9]{2})?$"),
        {"REQUEST_PATTERN_CHANGED"},
    ),
    (
        "request array bound set",
        _set(f"{NEW_ITEM}/properties/tags/uniqueItems", True),
        {"REQUEST_UNIQUE_ITEMS_ADDED"},
    ),
    (
        "new required query parameter",
        _add_param(
            {"name": "region", "in": "query", "required": True, "schema": {"type": "string"}}
        ),
        {"NEW_REQUIRED_REQUEST_PARAMETER"},
    ),
    (
        "query parameter became required",
        lambda d: _list_params(d)[1].update(required=True),
        {"REQUEST_PARAMETER_BECAME_REQUIRED"},
    ),
    (
        "query parameter removed",
        lambda d: _list_params(d).pop(1),
        {"REQUEST_PARAMETER_REMOVED"},
    ),
    (
        "query parameter bound narrowed",
        lambda d: _list_params(d)[0]["schema"].update(maximum=50),
        {"REQUEST_BOUND_NARROWED"},
    ),
    (
        "query parameter serialized differently",
        lambda d: _list_params(d)[1].update(style="spaceDelimited"),
        {"REQUEST_PARAMETER_STYLE_CHANGED"},
    ),
    (
        "path parameter type changed",
        lambda d: d["paths"]["/items/{id}"]["parameters"][0].update(schema={"type": "string"}),
        {"REQUEST_TYPE_CHANGED"},
    ),
    (
        "response property removed",
        _delete(f"{ITEM}/properties/price"),
        {"RESPONSE_PROPERTY_REMOVED"},
    ),
    (
        "optional response property removed",
        _delete(f"{ITEM}/properties/media"),
        {"RESPONSE_PROPERTY_REMOVED"},
    ),
    (
        "response property became optional",
        _set(f"{ITEM}/required", ["id", "name", "status"]),
        {"RESPONSE_PROPERTY_BECAME_OPTIONAL"},
    ),
    (
        "response enum value added",
        _set(f"{S}/Status/enum", ["draft", "listed", "sold"]),
        {"RESPONSE_ENUM_VALUE_ADDED"},
    ),
    (
        "response type changed",
        _set(f"{ITEM}/properties/name", {"type": "integer"}),
        {"RESPONSE_TYPE_CHANGED"},
    ),
    (
        "response property may now be null",
        _set(f"{ITEM}/properties/name", {"type": ["string", "null"], "maxLength": 100}),
        {"RESPONSE_NULL_ADDED"},
    ),
    (
        "response bound removed",
        _delete(f"{ITEM}/properties/name/maxLength"),
        {"RESPONSE_BOUND_WIDENED"},
    ),
    (
        "response union variant added",
        _then(
            _set(f"{S}/Game", {"type": "object", "properties": {"type": {"const": "game"}}}),
            lambda d: _schemas(d)["Item"]["properties"]["media"]["oneOf"].append(
                {"$ref": "#/components/schemas/Game"}
            ),
        ),
        {"RESPONSE_VARIANT_ADDED"},
    ),
    (
        "success status removed",
        _op("/items", "post")(
            lambda op: op["responses"].update({"200": op["responses"].pop("201")})
        ),
        {"RESPONSE_SUCCESS_STATUS_REMOVED"},
    ),
    (
        "response required header removed",
        _op("/items/{id}", "get")(lambda op: op["responses"]["200"].pop("headers")),
        {"RESPONSE_REQUIRED_HEADER_REMOVED"},
    ),
    (
        "response media type removed",
        lambda d: d["components"]["responses"]["Problem"].update(
            content={JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        ),
        {"RESPONSE_MEDIA_TYPE_REMOVED"},
    ),
    (
        "request body became required",
        _op("/items/{id}", "get")(
            lambda op: op.update(
                requestBody={"required": True, "content": {JSON: {"schema": {"type": "object"}}}}
            )
        ),
        {"REQUEST_BODY_BECAME_REQUIRED"},
    ),
    (
        "anonymous access removed",
        _op("/items/{id}", "get")(lambda op: op.update(security=[{"bearer": []}])),
        {"SECURITY_REQUIREMENT_CHANGED"},
    ),
    (
        "a scope added",
        _op("/items", "post")(
            lambda op: op.update(security=[{"bearer": ["items:write", "admin"]}])
        ),
        {"SECURITY_REQUIREMENT_CHANGED"},
    ),
    (
        "security scheme changed",
        _set("components/securitySchemes/bearer", {"type": "apiKey", "in": "header", "name": "K"}),
        {"SECURITY_SCHEME_CHANGED"},
    ),
    (
        "operationId changed",
        _op("/items/{id}", "get")(lambda op: op.update(operationId="FetchItem")),
        {"OPERATION_ID_CHANGED"},
    ),
    (
        "unknown request properties now refused",
        _set(f"{S}/ItemPatch/additionalProperties", False),
        {"REQUEST_ADDITIONAL_PROPERTIES_REFUSED"},
    ),
    (
        "request union variant removed",
        lambda d: _schemas(d)["NewItem"]["properties"]["media"]["oneOf"].pop(),
        {"REQUEST_VARIANT_REMOVED"},
    ),
    (
        "a shared component changed through its $ref",
        _set(f"{S}/Book/properties/pages", {"type": "string"}),
        {"REQUEST_TYPE_CHANGED", "RESPONSE_TYPE_CHANGED"},
    ),
]

NOT_BREAKING: list[tuple[str, Callable[[Doc], None], set[str]]] = [
    ("identical", lambda d: None, set()),
    (
        "optional request property added",
        _set(f"{NEW_ITEM}/properties/colour", {"type": "string"}),
        set(),
    ),
    ("response property added", _set(f"{ITEM}/properties/colour", {"type": "string"}), set()),
    (
        "new required response property",
        _then(
            _set(f"{ITEM}/properties/colour", {"type": "string"}),
            _set(f"{ITEM}/required", ["id", "name", "price", "status", "colour"]),
        ),
        set(),
    ),
    ("request maxLength raised", _set(f"{NEW_ITEM}/properties/name/maxLength", 200), set()),
    ("request minimum removed", _delete(f"{NEW_ITEM}/properties/quantity/minimum"), set()),
    ("request pattern removed", _delete(f"{NEW_ITEM}/properties/price/pattern"), set()),
    ("response maxLength lowered", _set(f"{ITEM}/properties/name/maxLength", 50), set()),
    (
        "request type widened to number",
        _set(f"{NEW_ITEM}/properties/quantity/type", "number"),
        set(),
    ),
    (
        "request format widened int32 to int64",
        lambda d: _list_params(d)[0]["schema"].update(format="int64"),
        set(),
    ),
    (
        "new operation",
        lambda d: d["paths"]["/items/{id}"].update(
            delete={"responses": {"204": {"description": "Deleted"}}}
        ),
        set(),
    ),
    (
        "new path",
        lambda d: d["paths"].update(
            {"/tags": {"get": {"responses": {"200": {"description": "OK"}}}}}
        ),
        set(),
    ),
    (
        "path parameter renamed",
        lambda d: d["paths"].update(
            {
                "/items/{item_id}": {
                    **d["paths"].pop("/items/{id}"),
                    "parameters": [
                        {
                            "name": "item_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer", "format": "int64", "minimum": 1},
                        }
                    ],
                }
            }
        ),
        set(),
    ),
    (
        "new optional query parameter",
        _add_param({"name": "sort", "in": "query", "schema": {"type": "string"}}),
        set(),
    ),
    ("query parameter became optional", lambda d: _list_params(d)[2].update(required=False), set()),
    (
        "scope dropped",
        _op("/items", "post")(lambda op: op.update(security=[{"bearer": []}])),
        set(),
    ),
    (
        "anonymous access allowed",
        _op("/items", "post")(lambda op: op.update(security=[{"bearer": ["items:write"]}, {}])),
        set(),
    ),
    (
        "descriptions and examples changed",
        _then(
            _op("/items", "get")(lambda op: op.update(summary="Every item.", description="All.")),
            _set(f"{ITEM}/properties/name/description", "Its name."),
            _set(f"{ITEM}/properties/name/examples", ["Kettle"]),
        ),
        set(),
    ),
    (
        "error status removed",
        _op("/items/{id}", "get")(lambda op: op["responses"].pop("404")),
        set(),
    ),
    (
        "success status added",
        _op("/items", "post")(
            lambda op: op["responses"].update({"202": {"description": "Accepted"}})
        ),
        set(),
    ),
    (
        # A server that ignores what it does not know still takes the request (oasdiff
        # agrees); it is the next case, where unknown properties are refused, that breaks.
        "request property removed where unknown ones are ignored",
        _delete(f"{S}/ItemPatch/properties/note"),
        set(),
    ),
    (
        "request enum value added",
        _set(f"{NEW_ITEM}/properties/unit/enum", ["piece", "kg", "litre"]),
        set(),
    ),
    (
        "response format narrowed int64 to int32",
        _set(f"{ITEM}/properties/id/format", "int32"),
        set(),
    ),
    (
        "response may no longer be null",
        _set(f"{ITEM}/properties/note", {"type": "string"}),
        set(),
    ),
    (
        "readOnly property required in the request schema",
        _set(f"{NEW_ITEM}/required", ["name", "price", "owner"]),
        set(),
    ),
    (
        "component renamed, same shape",
        lambda d: (
            _schemas(d).update(Thing=_schemas(d)["Item"]),
            d["paths"]["/items/{id}"]["get"]["responses"]["200"]["content"][JSON].update(
                schema={"$ref": "#/components/schemas/Thing"}
            ),
        ),
        set(),
    ),
    (
        "response union variant removed",
        lambda d: _schemas(d)["Item"]["properties"]["media"]["oneOf"].pop(),
        set(),
    ),
]


def _findings(edit: Callable[[Doc], None], old: Doc | None = None) -> set[str]:
    old = old or _base()
    new = copy.deepcopy(old)
    edit(new)
    return {f.rule for f in openapi.diff(old, new)}


@pytest.mark.parametrize(
    ("edit", "rules"),
    [pytest.param(edit, rules, id=name) for name, edit, rules in BREAKING + NOT_BREAKING],
)
def test_corpus(edit: Callable[[Doc], None], rules: set[str]) -> None:
    assert _findings(edit) == rules


def test_corpus_has_twenty_cases_of_each_verdict() -> None:
    assert len([c for c in BREAKING if c[2]]) >= 20
    assert len([c for c in [*BREAKING, *NOT_BREAKING] if not c[2]]) >= 20


def test_a_finding_says_where_and_what() -> None:
    new = _base()
    _schemas(new)["NewItem"]["properties"]["name"]["maxLength"] = 50
    (finding,) = openapi.diff(_base(), new)
    assert finding.line() == (
        "openapi REQUEST_BOUND_NARROWED POST /items request body name: maxLength 100 became 50"
    )


def test_a_finding_is_reported_once_per_operation_it_breaks() -> None:
    new = _base()
    del _schemas(new)["Item"]["properties"]["price"]
    locations = [f.location for f in openapi.diff(_base(), new)]
    assert locations == [
        "GET /items response 200 body items[].price",
        "POST /items response 201 body price",
        "GET /items/{id} response 200 body price",
        "PATCH /items/{id} response 200 body price",
    ]


def test_recursive_schemas_are_compared_without_end() -> None:
    old = _base()
    _schemas(old)["Item"]["properties"]["parts"] = {"type": "array", "items": ITEM_REF}
    new = copy.deepcopy(old)
    _schemas(new)["Item"]["properties"]["name"]["type"] = "integer"
    rules = {f.rule for f in openapi.diff(old, new)}
    assert rules == {"RESPONSE_TYPE_CHANGED"}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "an OpenAPI document is a JSON object"),
        ({"swagger": "2.0"}, "not an OpenAPI 3 document"),
        ({"openapi": "3.1.0", "paths": []}, "expected an object, found list"),
        (
            {"openapi": "3.1.0", "paths": {"/a": {"$ref": "other.json#/x"}}},
            "only local $refs are read",
        ),
        (
            {"openapi": "3.1.0", "paths": {"/a": {"$ref": "#/paths/~1a"}}},
            "refers to itself",
        ),
        (
            {"openapi": "3.1.0", "paths": {"/a": {"$ref": "#/components/pathItems/A"}}},
            "points at nothing",
        ),
    ],
)
def test_a_document_that_cannot_be_read_is_an_error(document: object, message: str) -> None:
    with pytest.raises(ContractError, match=message.replace("$", r"\$")):
        openapi.diff(document, _base())


def _chain(depth: int, leaf_type: str) -> Doc:
    """A document whose schema Level0 refers twice to Level1, which refers twice to
    Level2...: 2**depth paths through it."""
    doc = _base()
    for level in range(depth):
        nxt = {"$ref": f"#/components/schemas/Level{level + 1}"}
        _schemas(doc)[f"Level{level}"] = {"type": "object", "properties": {"a": nxt, "b": nxt}}
    _schemas(doc)[f"Level{depth}"] = {"type": leaf_type}
    _schemas(doc)["Item"]["properties"]["deep"] = {"$ref": "#/components/schemas/Level0"}
    return doc


def test_a_component_reached_many_ways_is_compared_once() -> None:
    """40 levels of two references each would be 2**40 walks if each were followed anew."""
    findings = openapi.diff(_chain(40, "string"), _chain(40, "integer"))
    assert {f.rule for f in findings} == {"RESPONSE_TYPE_CHANGED"}
    # Once per response that holds an Item, at the first of its 2**40 paths.
    deep = "deep." + "a." * 40
    assert [f.location for f in findings] == [
        f"GET /items response 200 body items[].{deep[:-1]}",
        f"POST /items response 201 body {deep[:-1]}",
        f"GET /items/{{id}} response 200 body {deep[:-1]}",
        f"PATCH /items/{{id}} response 200 body {deep[:-1]}",
    ]


def test_a_schema_nested_deeper_than_the_stack_is_an_error() -> None:
    def deep() -> Doc:
        node: Doc = {"type": "string"}
        for _ in range(5000):
            node = {"type": "array", "items": node}
        return node

    old, new = _base(), _base()
    _schemas(old)["Item"]["properties"]["deep"] = deep()
    _schemas(new)["Item"]["properties"]["deep"] = deep()
    with pytest.raises(ContractError, match="nested too deeply"):
        openapi.diff(old, new)


def test_an_all_of_that_contains_itself_is_an_error() -> None:
    doc = _base()
    _schemas(doc)["Loop"] = {"allOf": [{"$ref": "#/components/schemas/Loop"}]}
    _schemas(doc)["Item"]["properties"]["loop"] = {"$ref": "#/components/schemas/Loop"}
    with pytest.raises(ContractError, match="is one of its own allOf parts"):
        openapi.diff(doc, copy.deepcopy(doc))


def test_odd_but_valid_json_is_not_a_crash() -> None:
    old = _base()
    _schemas(old)["NewItem"]["properties"]["quantity"]["multipleOf"] = 1e-308
    _schemas(old)["NewItem"]["properties"]["name"]["maxLength"] = float("nan")
    _schemas(old)["NewItem"]["required"] = ["name", {"not": "a name"}, 3]
    old["paths"]["/items"]["post"]["security"] = [{"bearer": ["items:write", {"x": 1}]}]
    new = copy.deepcopy(old)
    _schemas(new)["NewItem"]["properties"]["quantity"]["multipleOf"] = 1e308
    rules = {f.rule for f in openapi.diff(old, new)}
    assert rules == {"REQUEST_MULTIPLE_OF_CHANGED"}
