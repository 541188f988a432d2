"""Name conversions between Python, RPC and URL conventions."""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Za-z][a-z0-9]*|[0-9]+")


def pascal(name: str) -> str:
    """``generate_report`` / ``generate-report`` -> ``GenerateReport``."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\-\s]+", name) if part)


def snake(name: str) -> str:
    """``GenerateReport`` -> ``generate_report``; ``nextPageToken`` -> ``next_page_token``."""
    out = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    out = re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", out)
    return out.replace("-", "_").lower()


def camel(name: str) -> str:
    """``next_page_token`` -> ``nextPageToken``: protobuf's json_name rule."""
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def singular(plural: str) -> str:
    """A plain English singular, enough for resource names; pass one explicitly otherwise."""
    if plural.endswith("ies"):
        return plural[:-3] + "y"
    if plural.endswith(("sses", "xes", "ches", "shes")):
        return plural[:-2]
    if plural.endswith("s") and not plural.endswith("ss"):
        return plural[:-1]
    return plural
