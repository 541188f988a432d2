"""Breaking changes between two OpenAPI 3.1 documents, as their clients would meet them.

Operations are matched by method and path, with path parameters compared by
position (``/products/{id}`` and ``/products/{product_id}`` are one path: a
client fills in the value, not the name). For each operation found in both:
parameters, the request body and the responses' bodies and headers (schemas
judged by :mod:`twofold.compat.schema` in the right direction), the success
statuses, the ``operationId`` (generated clients name their methods after
it) and the security requirements. Like oasdiff, what only documents
(summaries, descriptions, examples) is ignored.
"""

from __future__ import annotations

import re
from typing import Any

from twofold.compat.report import OPENAPI, ContractError, Finding
from twofold.compat.schema import Direction, Document, Node, SchemaDiff

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_PARAMETER = re.compile(r"\{[^}/]*\}")
# Defaults of a parameter's serialization (OpenAPI 3.1 §4.8.12.4).
_STYLE = {"query": "form", "cookie": "form", "path": "simple", "header": "simple"}
# The parts of a security scheme that change what a client sends.
_SCHEME_KEYS = ("type", "scheme", "in", "name", "bearerFormat", "openIdConnectUrl")


def diff(
    old: object, new: object, *, old_label: str = "old", new_label: str = "new"
) -> list[Finding]:
    """Every breaking change from ``old`` to ``new`` (parsed JSON documents)."""
    try:
        return _Diff(Document(old, old_label), Document(new, new_label)).run()
    except RecursionError:
        # Schemas nested deeper than Python's stack, written by hand (references
        # are followed once per cycle, so no real document gets here).
        raise ContractError("a schema is nested too deeply to compare") from None


class _Diff:
    def __init__(self, old: Document, new: Document) -> None:
        self.old = old
        self.new = new
        self.out: list[Finding] = []
        self.schemas = SchemaDiff(old, new, self.out)

    def run(self) -> list[Finding]:
        old_paths = _paths(self.old)
        new_paths = _paths(self.new)
        for key, (path, old_item) in old_paths.items():
            if key not in new_paths:
                self._add("PATH_REMOVED", path, "the path was removed")
                continue
            new_path, new_item = new_paths[key]
            for method in METHODS:
                if method not in old_item:
                    continue
                where = f"{method.upper()} {path}"
                if method not in new_item:
                    self._add("OPERATION_REMOVED", where, "the operation was removed")
                    continue
                self._operation((path, old_item), (new_path, new_item), method, where)
        self._schemes()
        return self.out

    def _add(self, rule: str, where: str, message: str) -> None:
        self.out.append(Finding(OPENAPI, rule, where, message))

    def _operation(
        self, old_at: tuple[str, Node], new_at: tuple[str, Node], method: str, where: str
    ) -> None:
        old_item, new_item = old_at[1], new_at[1]
        old = _object(self.old.resolve(old_item[method], where)[0], where)
        new = _object(self.new.resolve(new_item[method], where)[0], where)
        before, after = old.get("operationId"), new.get("operationId")
        if before is not None and before != after:
            self._add(
                "OPERATION_ID_CHANGED",
                where,
                f"operationId {before!r} became {after!r}: generated clients name "
                "their method after it",
            )
        before = self._parameter_map(self.old, old_at, old, where)
        after = self._parameter_map(self.new, new_at, new, where)
        self._parameters(before, after, where)
        self._request_body(old, new, where)
        self._responses(old, new, where)
        self._security(old, new, where)

    # -- parameters ------------------------------------------------------------

    def _parameters(
        self, before: dict[tuple[str, str], Node], after: dict[tuple[str, str], Node], where: str
    ) -> None:
        for key, param in before.items():
            at = f"{where} request parameter {key[0]} {param.get('name')}"
            if key not in after:
                self._add("REQUEST_PARAMETER_REMOVED", at, "the parameter was removed")
                continue
            other = after[key]
            if other.get("required") is True and param.get("required") is not True:
                self._add("REQUEST_PARAMETER_BECAME_REQUIRED", at, "now required")
            style = (param.get("style", _STYLE.get(key[0])), _explode(param, key[0]))
            new_style = (other.get("style", _STYLE.get(key[0])), _explode(other, key[0]))
            if style != new_style:
                self._add(
                    "REQUEST_PARAMETER_STYLE_CHANGED",
                    at,
                    f"serialized as style={new_style[0]} explode={new_style[1]}, "
                    f"not style={style[0]} explode={style[1]}",
                )
            self._parameter_schema(param, other, at)
        for key, param in after.items():
            if key not in before and param.get("required") is True:
                at = f"{where} request parameter {key[0]} {param.get('name')}"
                self._add("NEW_REQUIRED_REQUEST_PARAMETER", at, "a new required parameter")

    def _parameter_map(
        self, doc: Document, at: tuple[str, Node], operation: Node, where: str
    ) -> dict[tuple[str, str], Node]:
        """Path-level parameters overridden by the operation's, by (in, name); path
        parameters by position, header names without case."""
        found: dict[tuple[str, str], Node] = {}
        path, item = at
        positions = [m.group(0)[1:-1] for m in _PARAMETER.finditer(path)]
        for raw in [
            *_array(item.get("parameters"), where),
            *_array(operation.get("parameters"), where),
        ]:
            param = _object(doc.resolve(raw, where)[0], where)
            place, name = param.get("in"), param.get("name")
            if not isinstance(place, str) or not isinstance(name, str):
                raise ContractError(f"{doc.label}: {where}: a parameter without 'in' or 'name'")
            if place == "path":
                key = (place, str(positions.index(name)) if name in positions else name)
            elif place == "header":
                key = (place, name.lower())
            else:
                key = (place, name)
            found[key] = param
        return found

    def _parameter_schema(self, old: Node, new: Node, where: str) -> None:
        if "schema" in old and "schema" in new:
            self.schemas.compare(old["schema"], new["schema"], Direction.REQUEST, where)
        elif "content" in old or "content" in new:
            self._content(old, new, Direction.REQUEST, where)

    # -- request body ----------------------------------------------------------

    def _request_body(self, old_op: Node, new_op: Node, where: str) -> None:
        at = f"{where} request body"
        old = self.old.resolve(old_op.get("requestBody"), at)[0]
        new = self.new.resolve(new_op.get("requestBody"), at)[0]
        required_before = old is not None and _object(old, at).get("required") is True
        if new is not None and _object(new, at).get("required") is True and not required_before:
            self._add("REQUEST_BODY_BECAME_REQUIRED", at, "a request body is now required")
        if old is None:
            return
        if new is None:
            self._add("REQUEST_BODY_REMOVED", at, "the request body is no longer read")
            return
        self._content(_object(old, at), _object(new, at), Direction.REQUEST, at)

    def _content(self, old: Node, new: Node, d: Direction, where: str) -> None:
        before = _object(old.get("content", {}), where)
        after = _object(new.get("content", {}), where)
        for media, item in before.items():
            if media not in after:
                rule = (
                    "REQUEST_MEDIA_TYPE_REMOVED"
                    if d is Direction.REQUEST
                    else ("RESPONSE_MEDIA_TYPE_REMOVED")
                )
                self._add(rule, f"{where} ({media})", f"{media} is no longer {_verb(d)}")
                continue
            old_schema = _item_schema(_object(item, where))
            new_schema = _item_schema(_object(after[media], where))
            if media != JSON_MEDIA and _same_as_json(before, after, old_schema, new_schema):
                continue  # one schema in two representations (JSON, XML): reported once
            if old_schema is not None and new_schema is not None:
                at = where if media == "application/json" else f"{where} ({media})"
                self.schemas.compare(old_schema, new_schema, d, at)

    # -- responses -------------------------------------------------------------

    def _responses(self, old_op: Node, new_op: Node, where: str) -> None:
        before = _object(old_op.get("responses", {}), where)
        after = _object(new_op.get("responses", {}), where)
        for status, raw in before.items():
            at = f"{where} response {status}"
            match = status if status in after else _range(status)
            if match not in after:
                if str(status).startswith("2"):
                    self._add(
                        "RESPONSE_SUCCESS_STATUS_REMOVED",
                        at,
                        f"success status {status} is no longer returned",
                    )
                continue
            old = _object(self.old.resolve(raw, at)[0], at)
            new = _object(self.new.resolve(after[match], at)[0], at)
            self._content(old, new, Direction.RESPONSE, f"{at} body")
            self._headers(old, new, at)

    def _headers(self, old: Node, new: Node, where: str) -> None:
        before = {k.lower(): (k, v) for k, v in _object(old.get("headers", {}), where).items()}
        after = {k.lower(): (k, v) for k, v in _object(new.get("headers", {}), where).items()}
        for key, (name, raw) in before.items():
            at = f"{where} header {name}"
            header = _object(self.old.resolve(raw, at)[0], at)
            if key not in after:
                if header.get("required") is True:
                    self._add("RESPONSE_REQUIRED_HEADER_REMOVED", at, "no longer sent")
                continue
            other = _object(self.new.resolve(after[key][1], at)[0], at)
            if header.get("required") is True and other.get("required") is not True:
                self._add("RESPONSE_HEADER_BECAME_OPTIONAL", at, "no longer always sent")
            if "schema" in header and "schema" in other:
                self.schemas.compare(header["schema"], other["schema"], Direction.RESPONSE, at)

    # -- security --------------------------------------------------------------

    def _security(self, old_op: Node, new_op: Node, where: str) -> None:
        """Breaking when a caller who met some old requirement meets no new one."""
        before = _requirements(self.old, old_op, where)
        after = _requirements(self.new, new_op, where)
        for alternative in before:
            if any(_satisfies(alternative, r) for r in after):
                continue
            what = _requirement_text(alternative)
            now = " or ".join(_requirement_text(r) for r in after)
            self._add(
                "SECURITY_REQUIREMENT_CHANGED",
                f"{where} security",
                f"a caller with {what} is no longer enough: it needs {now}",
            )

    def _schemes(self) -> None:
        before = _object(
            _object(self.old.data.get("components", {}), "components").get("securitySchemes", {}),
            "securitySchemes",
        )
        after = _object(
            _object(self.new.data.get("components", {}), "components").get("securitySchemes", {}),
            "securitySchemes",
        )
        for name, raw in before.items():
            if name not in after:
                continue  # its users' requirements changed, which is reported per operation
            at = f"components.securitySchemes.{name}"
            old = _object(self.old.resolve(raw, at)[0], at)
            new = _object(self.new.resolve(after[name], at)[0], at)
            for key in _SCHEME_KEYS:
                if old.get(key) != new.get(key):
                    self._add(
                        "SECURITY_SCHEME_CHANGED",
                        at,
                        f"{key} {old.get(key)!r} became {new.get(key)!r}",
                    )
            old_flows = _object(old.get("flows", {}), at)
            new_flows = _object(new.get("flows", {}), at)
            for flow in old_flows:
                if flow not in new_flows:
                    self._add("SECURITY_SCHEME_CHANGED", at, f"the {flow} flow was removed")


# -- helpers ---------------------------------------------------------------------


def _object(node: object, where: str) -> Node:
    if not isinstance(node, dict):
        raise ContractError(f"{where}: expected an object, found {type(node).__name__}")
    return node


def _array(node: object, where: str) -> list[Any]:
    if node is None:
        return []
    if not isinstance(node, list):
        raise ContractError(f"{where}: expected an array, found {type(node).__name__}")
    return node


def _paths(doc: Document) -> dict[str, tuple[str, Node]]:
    """Path items by their template with parameter names left out: ``/products/{}``."""
    paths = _object(doc.data.get("paths", {}), f"{doc.label}: paths")
    found: dict[str, tuple[str, Node]] = {}
    for path, raw in paths.items():
        item = _object(doc.resolve(raw, path)[0], f"{doc.label}: {path}")
        found[_PARAMETER.sub("{}", path)] = (path, item)
    return found


def _explode(param: Node, place: str) -> bool:
    explode = param.get("explode")
    if isinstance(explode, bool):
        return explode
    return param.get("style", _STYLE.get(place)) == "form"


def _range(status: object) -> str:
    text = str(status)
    return f"{text[0]}XX" if len(text) == 3 and text.isdigit() else text


def _verb(d: Direction) -> str:
    return "accepted" if d is Direction.REQUEST else "returned"


Requirement = dict[str, frozenset[str]]


def _requirements(doc: Document, operation: Node, where: str) -> list[Requirement]:
    """The alternatives a caller may meet; ``[{}]`` when anyone may call."""
    raw = operation["security"] if "security" in operation else doc.data.get("security", [])
    alternatives = []
    for entry in _array(raw, f"{where} security"):
        requirement = _object(entry, f"{where} security")
        alternatives.append(
            {
                name: frozenset(s for s in _array(scopes, where) if isinstance(s, str))
                for name, scopes in requirement.items()
            }
        )
    return alternatives or [{}]


def _satisfies(held: Requirement, wanted: Requirement) -> bool:
    """Whether a caller who meets ``held`` meets ``wanted``: the same schemes or fewer,
    with no scope it lacks."""
    return all(name in held and scopes <= held[name] for name, scopes in wanted.items())


def _requirement_text(requirement: Requirement) -> str:
    if not requirement:
        return "no credentials"
    return " and ".join(
        f"{name} [{', '.join(sorted(scopes))}]" if scopes else name
        for name, scopes in sorted(requirement.items())
    )


JSON_MEDIA = "application/json"


def _same_as_json(before: Node, after: Node, old_schema: object, new_schema: object) -> bool:
    """Whether a media type carries, before and after, the very schemas JSON does."""
    if JSON_MEDIA not in before or JSON_MEDIA not in after:
        return False
    old_json = _item_schema(before[JSON_MEDIA]) if isinstance(before[JSON_MEDIA], dict) else None
    new_json = _item_schema(after[JSON_MEDIA]) if isinstance(after[JSON_MEDIA], dict) else None
    return old_json == old_schema and new_json == new_schema


def _item_schema(media: Node) -> object:
    """What a media type's content is: OpenAPI 3.2's ``itemSchema`` of a stream
    (each event) or ``schema``, which is what a 3.1 document says of a stream's
    events too, so a 3.1 and a 3.2 document of one stream compare alike."""
    return media.get("itemSchema", media.get("schema"))
