"""Path templates (``/users/{user_id}/orders/{order_id}:cancel``) and a router for them.

The router is a trie over path segments: a request path is split once and
walked segment by segment, so matching costs the same whatever the number of
routes. A trailing ``:verb`` is AIP-136's custom method suffix; it is only
looked for on the last segment.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from urllib.parse import quote

T = TypeVar("T")


class TemplateError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed path template: its segments, variables and custom verb."""

    text: str
    segments: tuple[str, ...]  # literal text, or "{name}" for a variable
    verb: str | None
    variables: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        if not text.startswith("/"):
            raise TemplateError(f"path template must start with '/': {text!r}")
        body, verb = text, None
        last = text.rsplit("/", 1)[-1]
        if ":" in last:
            head, _, verb = last.rpartition(":")
            if not verb or not head or "}" in verb:
                raise TemplateError(f"bad custom verb in {text!r}")
            body = text[: len(text) - len(verb) - 1]
        segments = tuple(body[1:].split("/")) if body != "/" else ()
        seen = set()
        for seg in segments:
            if not seg:
                raise TemplateError(f"empty segment in {text!r}")
            if "{" in seg or "}" in seg:
                name = seg[1:-1]
                if not (seg.startswith("{") and seg.endswith("}")) or not name.isidentifier():
                    raise TemplateError(f"a variable must be a whole segment: {text!r}")
                if name in seen:
                    raise TemplateError(f"variable {name!r} appears twice in {text!r}")
                seen.add(name)
        return cls(text, segments, verb, tuple(s[1:-1] for s in segments if s.startswith("{")))

    def expand(self, values: dict[str, str]) -> str:
        """The path with each variable replaced by its percent-encoded value."""
        parts = [quote_segment(values[s[1:-1]]) if s.startswith("{") else s for s in self.segments]
        path = "/" + "/".join(parts)
        return f"{path}:{self.verb}" if self.verb else path


_unreserved = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch


def quote_segment(value: str) -> str:
    # Ids are nearly always unreserved characters: skip urllib's general path.
    return value if _unreserved(value) else quote(value, safe="")


@dataclass(slots=True)
class _Node(Generic[T]):
    static: dict[str, _Node[T]] = field(default_factory=dict)
    variable: _Node[T] | None = None
    # Endpoints ending here, keyed by custom verb ("" for none), with the names
    # of their variables in order: two routes may name the same position
    # differently (/products/{id} and /products/{product_id}/reviews).
    endpoints: dict[str, tuple[T, tuple[str, ...]]] = field(default_factory=dict)


class Router(Generic[T]):
    """Maps path templates to values; ``match`` returns the value and the variables."""

    def __init__(self) -> None:
        self._root: _Node[T] = _Node()
        self._templates: dict[tuple[tuple[str, ...], str], Template] = {}
        # Templates without variables, by their exact text: one dict lookup.
        # The trie would find the same value, since literals win over
        # variables at every segment.
        self._literal: dict[str, T] = {}

    def add(self, template: Template, value: T) -> None:
        shape = tuple("{}" if s.startswith("{") else s for s in template.segments)
        key = (shape, template.verb or "")
        if key in self._templates:
            raise TemplateError(f"{template.text!r} overlaps {self._templates[key].text!r}")
        self._templates[key] = template
        node = self._root
        for seg in template.segments:
            if seg.startswith("{"):
                if node.variable is None:
                    node.variable = _Node()
                node = node.variable
            else:
                node = node.static.setdefault(seg, _Node())
        node.endpoints[template.verb or ""] = (value, template.variables)
        if not template.variables:
            self._literal[template.text] = value

    def match(self, path: str) -> tuple[T | None, dict[str, str]]:
        """The value for ``path`` and its variables, or (None, {})."""
        literal = self._literal.get(path)
        if literal is not None:
            return literal, {}
        if path == "/":
            found = self._root.endpoints.get("")
            return (found[0], {}) if found else (None, {})
        segments = path.split("/")
        if segments[0]:  # no leading "/": match as if there were one
            segments.insert(0, "")
        last = segments.pop()
        values: list[str] = []
        node = self._root
        for seg in segments[1:]:
            if not seg:
                return None, {}
            child = node.static.get(seg)
            if child is None:
                child = node.variable
                if child is None:
                    return None, {}
                values.append(seg)
            node = child
        if not last:
            return None, {}
        # The common last segments first: a literal, or a plain variable.
        found = None
        child = node.static.get(last)
        if child is not None:
            found = child.endpoints.get("")
        if found is None:
            var = node.variable
            if ":" not in last and var is not None:
                found = var.endpoints.get("")
                if found is not None:
                    values.append(last)
            if found is None:
                found = self._match_last(node, last, values)
                if found is None:
                    return None, {}
        value, names = found
        if len(names) == 1:  # dict(zip(...)) costs several times a literal
            return value, {names[0]: values[0]}
        return value, dict(zip(names, values, strict=True))

    @staticmethod
    def _match_last(
        node: _Node[T], seg: str, values: list[str]
    ) -> tuple[T, tuple[str, ...]] | None:
        child = node.static.get(seg)
        if child is not None and "" in child.endpoints:
            return child.endpoints[""]
        if ":" in seg:
            base, _, verb = seg.rpartition(":")
            child = node.static.get(base)
            if child is not None and verb in child.endpoints:
                return child.endpoints[verb]
            if node.variable is not None and base and verb in node.variable.endpoints:
                values.append(base)
                return node.variable.endpoints[verb]
        var = node.variable
        if var is not None and "" in var.endpoints:
            # "2:refund" where only ":cancel" exists is an unknown custom method,
            # not an id with a colon in it.
            if ":" in seg and len(var.endpoints) > 1:
                return None
            values.append(seg)
            return var.endpoints[""]
        return None

    def __iter__(self) -> Iterator[Template]:
        return iter(self._templates.values())
