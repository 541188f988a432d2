from __future__ import annotations

from datetime import UTC, datetime

import pytest

from twofold.http import xmlparse, xmlrpcvalue


def roundtrip(value: object) -> object:
    return xmlrpcvalue.read(xmlparse.parse(xmlrpcvalue.write(value).encode()))


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        (2**31 - 1, "<int>"),
        (-(2**31), "<int>"),
        (2**31, "<i8>"),
        (-(2**63), "<i8>"),
        (True, "<boolean>"),
        (1.5, "<double>"),
        ("a<b&c", "<string>"),
        (b"\x00\xff", "<base64>"),
        ([1, None, "x"], "<array>"),
        ({"a": {"b": [1]}}, "<struct>"),
    ],
)
def test_write_then_read(value: object, tag: str) -> None:
    assert tag in xmlrpcvalue.write(value)
    assert roundtrip(value) == value


def test_past_int64_is_a_string_and_none_members_are_left_out() -> None:
    assert xmlrpcvalue.write(2**64) == f"<value><string>{2**64}</string></value>"
    assert roundtrip({"a": None, "b": 1}) == {"b": 1}


def test_datetimes_are_read_as_utc() -> None:
    node = xmlparse.parse(b"<value><dateTime.iso8601>20260102T03:04:05</dateTime.iso8601></value>")
    assert xmlrpcvalue.read(node) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw",
    [
        b"<value><int>1.5</int></value>",
        b"<value><boolean>yes</boolean></value>",
        b"<value><dateTime.iso8601>tomorrow</dateTime.iso8601></value>",
        b"<value><array/></value>",
        b"<value><struct><member><name>a</name></member></struct></value>",
        b"<value><object/></value>",
        b"<value><int>1</int><int>2</int></value>",
    ],
)
def test_bad_values(raw: bytes) -> None:
    with pytest.raises(xmlrpcvalue.BadValue):
        xmlrpcvalue.read(xmlparse.parse(raw))


@pytest.mark.parametrize(
    "raw",
    [
        b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>',
        b'<!DOCTYPE a SYSTEM "file:///etc/passwd"><a/>',
        b"<a>" * 200 + b"</a>" * 200,
        b"<a>\xff</a>",
        b'{"json": true}',
        b"",
    ],
)
def test_the_parser_refuses(raw: bytes) -> None:
    with pytest.raises(xmlparse.XmlRefused):
        xmlparse.parse(raw)


@pytest.mark.parametrize("text", ["a\x00b", "\x1b[0m", "\ufffe"])
def test_characters_xml_cannot_carry_are_refused_not_written(text: str) -> None:
    with pytest.raises(xmlrpcvalue.NotXml):
        xmlrpcvalue.write({"name": text})
