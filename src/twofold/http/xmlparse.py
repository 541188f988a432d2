"""Parsing an XML request body with nothing a hostile sender could exploit.

defusedxml's expat parser refuses DTDs, entity declarations and external
references outright (no billion laughs, no XXE), and the tree builder here
refuses nesting deeper than a fixed bound, so that code walking the tree
recursively cannot run out of stack. The size of the text is bounded by the
body limit before parsing starts.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

MAX_DEPTH = 128
"""Deepest element nesting accepted: far beyond any message, far below the stack."""


class XmlRefused(ValueError):
    """The body is not XML we read: malformed, a DTD or entity, or nested too deeply."""


class _Builder:
    """ElementTree's builder, counting depth (expat itself nests without bound)."""

    def __init__(self) -> None:
        self._tree = TreeBuilder()
        self._depth = 0

    def start(self, tag: str, attrib: dict[str, str]) -> Element:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise XmlRefused(f"XML is nested deeper than {MAX_DEPTH} elements")
        return self._tree.start(tag, attrib)

    def end(self, tag: str) -> Element:
        self._depth -= 1
        return self._tree.end(tag)

    def data(self, text: str) -> None:
        self._tree.data(text)

    def close(self) -> Element:
        return self._tree.close()


def parse(body: bytes) -> Element:
    """The root element of ``body``; raises only :class:`XmlRefused`.

    Expat reads the encoding from the XML declaration (UTF-8 when none) and
    refuses bytes that are not valid in it, so invalid UTF-8 lands here too.
    """
    parser: Any = DefusedXMLParser(
        target=_Builder(), forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(body)
        root: Element = parser.close()
    except XmlRefused:
        raise
    except DefusedXmlException as exc:
        raise XmlRefused(f"XML refused: {type(exc).__name__} (no DTDs or entities)") from None
    except (ParseError, ValueError, RecursionError) as exc:
        raise XmlRefused(f"not well-formed XML: {exc}") from None
    return root
