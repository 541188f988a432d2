"""What a ``Decimal`` may look like on the wire: one rule, published and enforced.

A Decimal travels as a string on every wire (JSON, proto3 JSON, protobuf's
``string``), and its JSON Schema publishes a ``pattern``. msgspec (like
Python's ``Decimal()``) reads far more than any published pattern admits:
``"1e2"``, ``"1_000"``, ``" 1"``, ``"+1"``, ``"NaN"``, and digits of other
scripts (``"١٢"`` is 12). A client validating against the schema, a fuzzer,
or a cache keyed on the text would disagree with the server about what a
request means. So the published pattern *is* the rule: :func:`checker`
builds, once per type, a function that every decoder (REST and JSON-RPC
bodies, REST path and query values, proto3 JSON, protobuf binary) runs on
what it parsed, and :mod:`twofold.contracts.schemas` publishes the same pattern.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
from msgspec import inspect as mi

# A plain decimal number: optional minus, ASCII digits, optional fraction.
# No exponent, sign "+", spaces, "_" or NaN/Infinity: what str() of a
# finite Decimal in fixed-point writes, and what every language parses alike.
PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"

# Beyond this exponent a Decimal is written as str() writes it (1E+2000):
# fixed-point would be that many digits, for a value no rule admits anyway.
_MAX_FIXED_EXPONENT = 1000

Check = Callable[[Any, str], None]
# The patterns and the bounds a Decimal is held to.
_Rule = tuple[tuple[str, ...], tuple[tuple[str, Decimal], ...]]
_TESTS: dict[str, Callable[[Decimal, Decimal], bool]] = {
    "ge": operator.ge,
    "gt": operator.gt,
    "le": operator.le,
    "lt": operator.lt,
}
_SEQUENCES = (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)
_MESSAGES = (mi.StructType, mi.DataclassType, mi.TypedDictType)
_NUMBERS = (int, float)
# Python and ECMA-262 read these differently (\s: Unicode spaces in ECMA;
# {,n}: a quantifier in Python, literal text in ECMA; [] and [^]: an empty
# class in ECMA, the start of one holding "]" in Python) or only one has them.
_REFUSED = re.compile(r"\\[sSAZzG]|\{,|\(\?[^:=!<]|\(\?<[^=!]|\[\^?\]")


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The ECMA-262 ``pattern`` as a Python regex that matches the same strings.

    Used with ``search``, as JSON Schema applies a pattern (unanchored).
    ``re.ASCII`` makes ``\\d``, ``\\w`` and ``\\b`` ECMA's (non-Unicode)
    ones; ``$`` becomes ``\\Z``, since Python's ``$`` also matches before a
    final newline; ``.`` excludes ECMA's four line terminators, not just
    ``\\n``. Raises ValueError for what this cannot translate faithfully.
    """
    if not pattern.isascii():
        raise ValueError(f"pattern {pattern!r}: only ASCII is read alike by Python and ECMA-262")
    refused = _REFUSED.search(pattern)
    if refused:
        raise ValueError(
            f"pattern {pattern!r}: {refused.group()!r} is read differently by Python and ECMA-262"
        )
    out: list[str] = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            out.append(char)
            escaped = True
        elif in_class:
            out.append(char)
            in_class = char != "]"
        elif char == "[":
            out.append(char)
            in_class = True
        elif char == "$":
            out.append(r"\Z")
        elif char == ".":
            out.append("[^\\n\\r\\u2028\\u2029]")
        else:
            out.append(char)
    try:
        return re.compile("".join(out), re.ASCII)
    except re.error as exc:
        raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None


def text(value: Decimal) -> str:
    """``value`` in fixed-point, as :data:`PATTERN` has it: ``Decimal("1E+2")`` is "100".

    What the proto3 JSON and protobuf encoders write, so that a Decimal a
    handler returns reads back under the rule (``str()`` writes an exponent
    for ``Decimal("100").normalize()``). NaN and the infinities stay as
    they are: no pattern of numbers admits them.
    """
    out = str(value)
    if "E" in out and value.is_finite():
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and abs(exponent) <= _MAX_FIXED_EXPONENT:
            return format(value, "f")
    return out


# Where a Decimal's bounds are published in its JSON Schema. A Decimal is a
# string on the wire, so JSON Schema's minimum/maximum (which constrain
# numbers) would not apply to it; these keep JSON Schema's names, prefixed as
# OpenAPI extensions, and hold the bound as a decimal string, exact.
BOUND_KEYS = {
    "ge": "x-minimum",
    "gt": "x-exclusiveMinimum",
    "le": "x-maximum",
    "lt": "x-exclusiveMaximum",
}
_SYMBOLS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
# In the Meta's (unpublished) ``extra``: this Meta came from Bounds, which only
# a Decimal can honour.
_MARK = "twofold.bounds"
Bound = Decimal | int | str


# Capitalised: used where a constraint goes, like msgspec.Meta (Annotated[Decimal, Bounds()]).
def Bounds(
    *,
    ge: Bound | None = None,
    gt: Bound | None = None,
    le: Bound | None = None,
    lt: Bound | None = None,
    places: int | None = None,
) -> msgspec.Meta:
    """Bounds of a Decimal, as ``Annotated[Decimal, Bounds(ge=0, le="9999.99", places=2)]``.

    Returns the ``msgspec.Meta`` that publishes them, which is also what
    every wire enforces: a ``pattern`` for what a pattern can say (no minus
    sign when the lower bound is not negative, at most ``places`` decimal
    places, at most as many integer digits as the largest bound has when
    both ends are bounded) and ``x-minimum``, ``x-exclusiveMinimum``,
    ``x-maximum``, ``x-exclusiveMaximum`` (decimal strings) for the values.
    Stack a ``Meta(description=...)`` beside it for the rest.
    """
    given = {"ge": ge, "gt": gt, "le": le, "lt": lt}
    values = {k: _bound(k, v) for k, v in given.items() if v is not None}
    if ("ge" in values and "gt" in values) or ("le" in values and "lt" in values):
        raise ValueError("Bounds: give at most one of ge and gt, and one of le and lt")
    if places is not None and (isinstance(places, bool) or places < 0):
        raise ValueError(f"Bounds: places must be a whole number >= 0, not {places!r}")
    lower = values.get("ge", values.get("gt"))
    upper = values.get("le", values.get("lt"))
    if lower is not None and upper is not None and lower > upper:
        raise ValueError(f"Bounds: the lower bound {lower} is above the upper bound {upper}")
    signed = lower is None or lower < 0
    digits = "[0-9]+"
    most: int | None = None
    if upper is not None and (lower is not None):
        most = max(len(str(int(abs(b)))) for b in (lower, upper))
        digits = f"[0-9]{{1,{most}}}"
    fraction = {None: r"(\.[0-9]+)?", 0: ""}.get(places, rf"(\.[0-9]{{1,{places}}})?")
    pattern = f"^{'-?' if signed else ''}{digits}{fraction}$"
    extra: dict[str, Any] = {"pattern": pattern}
    extra.update({BOUND_KEYS[k]: text(v) for k, v in values.items()})
    implied = _implied(values, signed, most, places)
    return msgspec.Meta(extra_json_schema=extra, extra={_MARK: (pattern, implied)})


def _implied(
    values: dict[str, Decimal], signed: bool, most: int | None, places: int | None
) -> frozenset[str]:
    """The bounds every string the pattern matches already keeps, which need no
    comparison on each request (the catalog's price: all of them)."""
    found = set()
    if not signed and values.get("ge") == 0:  # no minus sign: never below 0
        found.add("ge")
    if most is not None:
        # Every match lies in [-top, top], and below `above` in absolute value.
        above = Decimal(10) ** most
        top = above if places is None else above - Decimal(10) ** -places
        exact = places is not None  # top itself matches
        keeps: dict[str, Callable[[Decimal], bool]] = {
            "le": lambda b: b >= top if exact else b >= above,
            "lt": lambda b: b > top if exact else b >= above,
            "ge": lambda b: signed and (b <= -top if exact else b <= -above),
            "gt": lambda b: signed and (b < -top if exact else b <= -above),
        }
        found.update(name for name, bound in values.items() if keeps[name](bound))
    return frozenset(found)


def _bound(name: str, value: Bound) -> Decimal:
    try:
        # Not a float: 0.1 is not one tenth, and a bound is exact.
        number = Decimal(value) if not isinstance(value, bool | float) else None
    except ArithmeticError:
        number = None
    if number is None or not number.is_finite():
        raise ValueError(f"Bounds: {name} must be a finite decimal number, not {value!r}")
    return number


def bounds_of(extra: dict[str, Any] | None) -> list[tuple[str, Decimal]]:
    """The published bounds in a Decimal's ``extra_json_schema``: ("ge", 0), ..."""
    found = []
    for name, key in BOUND_KEYS.items():
        if extra and key in extra:
            found.append((name, _bound(key, extra[key])))
    return found


def describe(extra: dict[str, Any] | None) -> str:
    """The bounds a Decimal's schema publishes, in words: ">= 0, <= 9999.99"."""
    return ", ".join(f"{_SYMBOLS[name]} {text(value)}" for name, value in bounds_of(extra))


_COMPILED: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    found = _COMPILED.get(pattern)
    if found is None:
        found = _COMPILED[pattern] = compile_pattern(pattern)
    return found


def _pattern(node: mi.Metadata) -> str | None:
    extra = node.extra_json_schema or {}
    found = extra.get("pattern")
    if found is not None and not isinstance(found, str):
        raise ValueError(f"a pattern must be a string, not {found!r}")
    return found


def checker(tp: Any) -> Callable[[Any], None] | None:
    """A check of a parsed message of type ``tp``, or None if it holds no Decimal.

    The pattern of a Decimal is the one given in its ``extra_json_schema``
    (``Annotated[Decimal, Meta(extra_json_schema={"pattern": ...})]``, which
    must admit only decimal numbers), else :data:`PATTERN`; a pattern on a
    union holding a Decimal (``Annotated[Decimal | None, Meta(...)]``) applies
    too, as it does in JSON Schema. Patterns are ECMA-262 regular expressions
    (JSON Schema's dialect); :func:`compile_pattern` runs one with Python's
    ``re`` exactly, and refuses at start-up what it could not run alike.

    The check takes the tree a decoder parsed (dicts keyed by encode names,
    lists, strings; before or after ``msgspec.convert`` accepted it) and
    raises ``msgspec.ValidationError`` naming the first Decimal that breaks
    its rule (``... - at `$.product.price```), as msgspec names its own
    failures. A number where a Decimal belongs is refused too: the schema
    says string.
    """
    check = _Builder().node(mi.type_info(tp))
    if check is None:
        return None

    def run(tree: Any) -> None:
        try:
            check(tree, "$")
        except RecursionError:
            # A recursive type nested deeper than Python's stack: the client's fault.
            raise msgspec.ValidationError("message is nested too deeply") from None

    return run


def _refuse(description: str, where: str) -> None:
    raise msgspec.ValidationError(f"{description} - at `{where}`")


def _decimal(rule: _Rule) -> Check:
    patterns, bounds = rule
    regexes = [_compiled(p) for p in patterns]
    wanted = " and ".join(patterns)
    tests = [(_TESTS[name], f"{_SYMBOLS[name]} {text(bound)}", bound) for name, bound in bounds]

    def check(value: Any, where: str) -> None:
        if value.__class__ is str:
            for regex in regexes:
                if regex.search(value) is None:
                    _refuse(f"Expected a decimal string matching {wanted}", where)
            if tests:
                number = Decimal(value)  # the patterns admit only decimal numbers
                for test, words, bound in tests:
                    if not test(number, bound):
                        _refuse(f"Expected a decimal {words}", where)
        elif isinstance(value, _NUMBERS) and not isinstance(value, bool):
            _refuse('Expected a decimal string such as "22.00", got a number', where)

    return check


class _Builder:
    """Builds the check of one type, a message's once even where it recurses."""

    def __init__(self) -> None:
        self.messages: dict[Any, list[Check | None]] = {}

    def node(self, node: mi.Type, outer: _Rule = ((), ())) -> Check | None:
        """``outer``: the rule of enclosing unions, which applies to a Decimal inside."""
        if isinstance(node, mi.Metadata):
            if (node.extra or {}).get(_MARK) and not _reaches_decimal(node.type, set()):
                raise ValueError("Bounds apply to a Decimal (Annotated[Decimal, Bounds(...)])")
            pattern = _pattern(node)
            extra = node.extra_json_schema
            limits = bounds_of(extra)
            made = (node.extra or {}).get(_MARK)
            if made and made[0] == pattern:  # Bounds' own pattern: some bounds go without saying
                limits = [(name, bound) for name, bound in limits if name not in made[1]]
            rule = ((*outer[0], *([pattern] if pattern else [])), (*outer[1], *limits))
            if isinstance(node.type, mi.DecimalType):
                return _decimal(((*rule[0], *([] if pattern else [PATTERN])), rule[1]))
            if isinstance(node.type, mi.UnionType):
                return self.node(node.type, rule)
            return self.node(node.type)
        if isinstance(node, mi.DecimalType):
            return _decimal(((*outer[0], PATTERN), outer[1]))
        if isinstance(node, _MESSAGES):
            return self.message(node)
        if isinstance(node, _SEQUENCES):
            return _each(self.node(node.item_type))
        if isinstance(node, mi.DictType):
            return _values(self.node(node.value_type))
        if isinstance(node, mi.UnionType):
            return self.union(node, outer)
        return None

    def message(self, node: Any) -> Check | None:
        if node.cls in self.messages:
            holder = self.messages[node.cls]
            if holder[0] is not None:
                return holder[0]

            # Being built (a recursive type): look the check up when it runs.
            def later(value: Any, where: str) -> None:
                holder[0](value, where)  # type: ignore[misc]

            return later
        if not _reaches_decimal(node, set()):
            return None
        holder = self.messages[node.cls] = [None]
        fields = [(f.encode_name, self.node(f.type)) for f in node.fields]
        check = holder[0] = _fields([(name, c) for name, c in fields if c is not None])
        return check

    def union(self, node: mi.UnionType, outer: _Rule) -> Check | None:
        by_class: dict[type, Check] = {}
        tagged: dict[Any, Check] = {}
        tag_field = ""
        numeric = False
        for member in node.types:
            inner = member.type if isinstance(member, mi.Metadata) else member
            numeric |= isinstance(inner, mi.IntType | mi.FloatType)
            if isinstance(inner, mi.StructType) and inner.tag_field is not None:
                tag_field = inner.tag_field
                found = self.message(inner)
                if found is not None:
                    tagged[inner.tag] = found
                continue
            found = self.node(member, outer)
            if found is None:
                continue
            if isinstance(inner, mi.DecimalType):
                by_class[str] = found
                by_class[int] = by_class[float] = found
            elif isinstance(inner, _SEQUENCES):
                by_class[list] = found
            else:  # a message or a map: a JSON object
                by_class[dict] = found
        if numeric:  # a number is the int's or float's, not the Decimal's
            by_class.pop(int, None)
            by_class.pop(float, None)
        if tagged:

            def variant(value: Any, where: str) -> None:
                tag = value.get(tag_field)
                if tag.__class__ in (str, int) and tag in tagged:
                    tagged[tag](value, where)

            by_class[dict] = variant
        if not by_class:
            return None

        def check(value: Any, where: str) -> None:
            found = by_class.get(value.__class__)
            if found is not None:
                found(value, where)

        return check


def _reaches_decimal(node: mi.Type, seen: set[Any]) -> bool:
    """Whether a Decimal is anywhere inside ``node``."""
    if isinstance(node, mi.DecimalType):
        return True
    if isinstance(node, mi.Metadata):
        found = _reaches_decimal(node.type, seen)
        if not found and (node.extra or {}).get(_MARK):
            raise ValueError("Bounds apply to a Decimal (Annotated[Decimal, Bounds(...)])")
        return found
    if isinstance(node, _MESSAGES):
        if node.cls in seen:
            return False
        seen.add(node.cls)
        return any(_reaches_decimal(f.type, seen) for f in node.fields)
    if isinstance(node, _SEQUENCES):
        return _reaches_decimal(node.item_type, seen)
    if isinstance(node, mi.DictType):
        return _reaches_decimal(node.value_type, seen)
    if isinstance(node, mi.UnionType):
        return any(_reaches_decimal(t, seen) for t in node.types)
    return False


def _fields(wanted: list[tuple[str, Check]]) -> Check:
    def check(value: Any, where: str) -> None:
        if value.__class__ is dict:
            for name, sub in wanted:
                item = value.get(name)
                if item is not None:
                    sub(item, f"{where}.{name}")

    return check


def _each(item: Check | None) -> Check | None:
    if item is None:
        return None

    def check(value: Any, where: str) -> None:
        if value.__class__ is list:
            for i, x in enumerate(value):
                item(x, f"{where}[{i}]")

    return check


def _values(item: Check | None) -> Check | None:
    if item is None:
        return None

    def check(value: Any, where: str) -> None:
        if value.__class__ is dict:
            for key, x in value.items():
                item(x, f"{where}.{key}")

    return check
