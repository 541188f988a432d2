"""Loaded by schemathesis (SCHEMATHESIS_HOOKS) in tests/e2e/test_schemathesis.py.

Two things schemathesis leaves to its user when a body is XML.

**Reading XML answers.** Schemathesis deserializes JSON and YAML itself and
skips what it cannot read, so without a deserializer an XML answer would be
checked for nothing and the stateful phase could not follow a link out of
one. :func:`deserialize_xml` reads an answer the way the OpenAPI document
says it is written, and by nothing else (it knows none of Twofold's code):
the root element is the schema's ``xml.name`` (and namespace), a property is
the element its ``xml.name`` or its own name gives, a list unwrapped is that
element repeated, none at all being the empty list (a wrapped one, its items
inside a wrapper), and text takes
the schema's type (``integer``, ``number``, ``boolean``; strings stay text).
An element the document does not name becomes a property of its own, so a
schema that forbids it, or one that misses a required element, fails.

**What XML cannot carry.** XML text has no types and cannot carry U+0000 or
the other characters XML 1.0 forbids, so schemathesis's XML serializer
cannot always send what it generated: a ``null`` in a list of strings
becomes the string "null", and a forbidden character is left out (a tag
"\\x01" arrives empty). What arrives is then another request than the one it
judges. Such XML cases are dropped: negative ones (their data still goes as
JSON, which carries it, and tests/e2e/test_rest_xml.py sends XML's own bad
input) and those holding a character XML cannot carry. In the run that asks
for XML answers (``TWOFOLD_FUZZ_ACCEPT``), a write whose request holds such
a character is refused 406 by design (its answer could not be written, so it
is refused before it runs, tests/e2e/test_rest_xml.py); those cases are
dropped too, and go as JSON in the run that asks for JSON.
"""

from __future__ import annotations

import os
import re
from typing import Any
from xml.etree import ElementTree

import schemathesis
from schemathesis.generation import GenerationMode

# What the run's Accept asks for: set by the test beside its --header.
ACCEPT = os.environ.get("TWOFOLD_FUZZ_ACCEPT", "application/json")

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _not_xml(value: Any) -> bool:
    if isinstance(value, str):
        return _NOT_XML.search(value) is not None
    if isinstance(value, dict):
        return any(_not_xml(k) or _not_xml(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_not_xml(v) for v in value)
    return False


def _is_xml(media_type: str | None) -> bool:
    return (media_type or "").split(";")[0].strip().lower().endswith("xml")


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    if _is_xml(case.media_type):
        meta = case.meta
        if meta is not None and meta.generation.mode is GenerationMode.NEGATIVE:
            return False
        if _not_xml(case.body):
            return False
    if _is_xml(ACCEPT) and case.method.upper() != "GET":
        return not any(_not_xml(part) for part in (case.body, case.query, case.path_parameters))
    return True


# Reading XML answers -------------------------------------------------------


@schemathesis.deserializer("application/xml", "application/problem+xml")
def deserialize_xml(ctx: Any, response: Any) -> Any:
    spec = ctx.operation.schema.raw_schema
    responses = ctx.operation.definition.raw.get("responses", {})
    status = str(response.status_code)
    declared = responses.get(status) or responses.get(f"{status[0]}XX") or responses["default"]
    declared = _resolve(declared, spec)
    media = response.headers.get("content-type", [""])[0].split(";")[0].strip().lower()
    schema = declared["content"][media]["schema"]
    root = ElementTree.fromstring(response.content)
    return _root(root, schema, spec)


def _resolve(schema: Any, spec: dict[str, Any]) -> Any:
    """``schema`` with its ``$ref`` followed; its own keywords beside the
    reference win over the target's (OpenAPI 3.1)."""
    while isinstance(schema, dict) and "$ref" in schema:
        target: Any = spec
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _split(tag: str) -> tuple[str | None, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return None, tag


def _root(element: ElementTree.Element, schema: Any, spec: dict[str, Any]) -> Any:
    resolved = _resolve(schema, spec)
    xml = resolved.get("xml", {})
    namespace, name = _split(element.tag)
    if "name" in xml and name != xml["name"]:
        raise ValueError(f"the root element is <{name}>; the document names <{xml['name']}>")
    if namespace != xml.get("namespace"):
        raise ValueError(f"<{name}> is in namespace {namespace!r}, not {xml.get('namespace')!r}")
    return _value(element, resolved, spec)


def _options(schema: Any, spec: dict[str, Any]) -> list[Any]:
    """The non-null alternatives of a schema (itself when it has none)."""
    resolved = _resolve(schema, spec)
    branches = resolved.get("anyOf") or resolved.get("oneOf")
    if branches is None:
        return [resolved]
    found = []
    for branch in branches:
        for option in _options(branch, spec):
            if option.get("type") != "null":
                found.append(option)
    return found


def _is_object(schema: Any) -> bool:
    return schema.get("type") == "object" or "properties" in schema


def _value(element: ElementTree.Element, schema: Any, spec: dict[str, Any]) -> Any:
    options = _options(schema, spec)
    children = list(element)
    if children:
        objects = [o for o in options if _is_object(o) or "additionalProperties" in o]
        if not objects:
            return _object(element, {}, spec)  # elements where text belongs: a mismatch
        tags = {_split(c.tag)[1] for c in children}
        best = max(objects, key=lambda o: len(tags & _names(o, spec)))
        return _object(element, best, spec)
    text = element.text or ""
    for option in options:
        kind = option.get("type")
        if kind == "integer" and re.fullmatch(r"-?[0-9]+", text):
            return int(text)
        if kind == "number" and re.fullmatch(r"-?[0-9]+", text):
            return int(text)
        if kind == "number":
            try:
                return float(text)
            except ValueError:
                continue
        if kind == "boolean" and text in ("true", "false"):
            return text == "true"
    if any(_is_object(o) for o in options) and not any(o.get("type") == "string" for o in options):
        return {}  # an empty message: every field absent
    return text


def _names(schema: Any, spec: dict[str, Any]) -> set[str]:
    names = set()
    for key, prop in schema.get("properties", {}).items():
        names.add(_element_name(key, prop, spec))
    return names


def _element_name(key: str, prop: Any, spec: dict[str, Any]) -> str:
    """A property's element: the name it gives itself, else the property's own.
    (A referenced schema's name is its root element, not this place's.)"""
    own = prop.get("xml", {}).get("name") if isinstance(prop, dict) else None
    return str(own or key)


def _array(prop: Any, spec: dict[str, Any]) -> Any:
    for option in _options(prop, spec):
        if option.get("type") == "array":
            return option
    return None


def _object(element: ElementTree.Element, schema: Any, spec: dict[str, Any]) -> dict[str, Any]:
    pending: dict[str, list[ElementTree.Element]] = {}
    for child in element:
        pending.setdefault(_split(child.tag)[1], []).append(child)
    out: dict[str, Any] = {}
    for key, prop in schema.get("properties", {}).items():
        name = _element_name(key, prop, spec)
        array = _array(prop, spec)
        if array is not None:
            items = array.get("items", {})
            wrapped = {**array.get("xml", {}), **_resolve(prop, spec).get("xml", {})}.get("wrapped")
            item_name = items.get("xml", {}).get("name") if isinstance(items, dict) else None
            if wrapped:
                wrappers = pending.pop(name, [])
                if wrappers:
                    inside = [c for c in wrappers[0] if _split(c.tag)[1] == (item_name or name)]
                    out[key] = [_value(c, items, spec) for c in inside]
            else:
                # Unwrapped, no element is no item: an empty list (XML has no
                # other way to write one).
                found = pending.pop(item_name or name, [])
                out[key] = [_value(c, items, spec) for c in found]
            continue
        found = pending.pop(name, [])
        if len(found) == 1:
            out[key] = _value(found[0], prop, spec)
        elif found:  # repeated where one value belongs: a list, which the schema refuses
            out[key] = [_value(c, prop, spec) for c in found]
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and "entry" in pending:
        for entry in pending.pop("entry"):
            key_element, value_element = entry.find("key"), entry.find("value")
            if key_element is not None:
                value = _value(value_element, extra, spec) if value_element is not None else None
                out[key_element.text or ""] = value
    for tag, left in pending.items():  # not in the document: let the schema judge them
        out[tag] = left[0].text or "" if len(left) == 1 else [c.text or "" for c in left]
    return out
