"""google.api.http path templates (AIP-127): ``/v1/{name=shelves/*/books/*}:move``.

The grammar is http.proto's: segments are literals, ``*`` (one segment),
``**`` (the rest of the path) or variables ``{field.path=segments}``; a
trailing ``:verb`` is a custom method. A template compiles to one regular
expression over the request's raw (still percent-encoded) path, so that a
``%2F`` inside a value is never mistaken for a separator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

_LITERAL = re.compile(r"[A-Za-z0-9_.~\-%!$&'()+,;=@]+")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


class TemplateError(ValueError):
    """A path template that http.proto's grammar does not allow."""


@dataclass(frozen=True, slots=True)
class Variable:
    field: str
    # Whether it matches one segment only: then every escape in its value is
    # decoded; a multi-segment value keeps %2F, as http.proto asks.
    single: bool


@dataclass(frozen=True, slots=True)
class PathTemplate:
    text: str
    verb: str | None
    variables: tuple[Variable, ...]
    pattern: re.Pattern[str]
    # Sort key: more literal segments first, then fewer wildcards.
    literals: int
    deep: bool

    @classmethod
    def parse(cls, text: str) -> PathTemplate:
        if not text.startswith("/"):
            raise TemplateError(f"a path template starts with '/': {text!r}")
        body, verb = text[1:], None
        # The verb is after the last ':' outside braces.
        depth, colon = 0, -1
        for i, ch in enumerate(body):
            depth += ch == "{"
            depth -= ch == "}"
            if ch == ":" and depth == 0:
                colon = i
        if colon != -1:
            body, verb = body[:colon], body[colon + 1 :]
            if not _LITERAL.fullmatch(verb):
                raise TemplateError(f"bad custom verb in {text!r}")
        variables: list[Variable] = []
        parts: list[str] = []
        literals = 0
        deep = False
        for segment in _split(body, text):
            if segment.startswith("{"):
                if not segment.endswith("}"):
                    raise TemplateError(f"a variable must close its brace: {text!r}")
                name, eq, inner = segment[1:-1].partition("=")
                if not _FIELD.fullmatch(name):
                    raise TemplateError(f"bad field path {name!r} in {text!r}")
                if any(v.field == name for v in variables):
                    raise TemplateError(f"{name} appears twice in {text!r}")
                sub = _split(inner, text) if eq else ["*"]
                regex, lit, has_deep = _segments(sub, text, nested=True)
                literals += lit
                deep = deep or has_deep
                single = sub == ["*"]
                variables.append(Variable(name, single))
                parts.append(f"(?P<v{len(variables) - 1}>{regex})")
            else:
                regex, lit, has_deep = _segments([segment], text, nested=False)
                literals += lit
                deep = deep or has_deep
                parts.append(regex)
        if "**" in [s for s in _split(body, text) if not s.startswith("{")][:-1]:
            raise TemplateError(f"'**' must be the last segment: {text!r}")
        regex = "/" + "/".join(parts)
        if verb is not None:
            regex += ":" + re.escape(verb)
        return cls(text, verb, tuple(variables), re.compile(regex), literals, deep)

    def match(self, raw_path: str) -> dict[str, str] | None:
        """The variables' decoded values, or None if the path is not this template's."""
        found = self.pattern.fullmatch(raw_path)
        if found is None:
            return None
        out = {}
        for i, var in enumerate(self.variables):
            raw = found.group(f"v{i}")
            if var.single:
                out[var.field] = unquote(raw, errors="strict")
            else:
                # Decode all but %2F, which stays a literal escape inside a name.
                out[var.field] = "%2F".join(
                    unquote(p, errors="strict") for p in re.split("%2[Ff]", raw)
                )
        return out


def _split(body: str, text: str) -> list[str]:
    """Segments on '/', a variable's braces kept whole."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        if ch == "{":
            depth += 1
            if depth > 1:
                raise TemplateError(f"variables do not nest: {text!r}")
        elif ch == "}":
            depth -= 1
            if depth < 0:
                raise TemplateError(f"unbalanced braces in {text!r}")
        elif ch == "/" and depth == 0:
            out.append(body[start:i])
            start = i + 1
    if depth:
        raise TemplateError(f"unbalanced braces in {text!r}")
    out.append(body[start:])
    if any(not s for s in out):
        raise TemplateError(f"empty segment in {text!r}")
    return out


def _segments(segments: list[str], text: str, nested: bool) -> tuple[str, int, bool]:
    parts, literals, deep = [], 0, False
    for i, seg in enumerate(segments):
        if seg == "*":
            parts.append("[^/]+")
        elif seg == "**":
            if nested and i != len(segments) - 1:
                raise TemplateError(f"'**' must be the last segment: {text!r}")
            parts.append(".*")
            deep = True
        elif "{" in seg or "}" in seg:
            raise TemplateError(f"variables do not nest: {text!r}")
        elif _LITERAL.fullmatch(seg):
            parts.append(re.escape(seg))
            literals += 1
        else:
            raise TemplateError(f"bad literal {seg!r} in {text!r}")
    return "/".join(parts), literals, deep
