"""google.api.http path templates: http.proto's grammar, its matching and decoding rules."""

from __future__ import annotations

import pytest

from twofold.gateway.templates import PathTemplate, TemplateError


@pytest.mark.parametrize(
    ("template", "path", "values"),
    [
        ("/v1/messages/{message_id}", "/v1/messages/123456", {"message_id": "123456"}),
        ("/v1/{name=messages/*}", "/v1/messages/abc", {"name": "messages/abc"}),
        (
            "/v1/users/{user_id}/messages/{message_id}",
            "/v1/users/me/messages/123456",
            {"user_id": "me", "message_id": "123456"},
        ),
        (
            "/v1/{book.name=shelves/*/books/*}",
            "/v1/shelves/1/books/2",
            {"book.name": "shelves/1/books/2"},
        ),
        ("/v1/files/{path=**}", "/v1/files/a/b/c", {"path": "a/b/c"}),
        ("/v1/{name=shelves/*}/books:move", "/v1/shelves/s1/books:move", {"name": "shelves/s1"}),
        ("/v1/*/items/{id}", "/v1/anything/items/7", {"id": "7"}),
        ("/v1/items/{id}", "/v1/items/a%20b%2Fc", {"id": "a b/c"}),
        ("/v1/{name=**}", "/v1/a%2Fb/c%20d", {"name": "a%2Fb/c d"}),
        ("/v1/items/{id}:get", "/v1/items/x:y:get", {"id": "x:y"}),
    ],
)
def test_match(template: str, path: str, values: dict[str, str]) -> None:
    assert PathTemplate.parse(template).match(path) == values


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ("/v1/{name=messages/*}", "/v1/messages/a/b"),
        ("/v1/messages/{id}", "/v1/messages/"),
        ("/v1/messages/{id}", "/v1/other/1"),
        ("/v1/{name=shelves/*}/books:move", "/v1/shelves/s1/books"),
        ("/v1/items/{id}", "/v1/items/1/extra"),
    ],
)
def test_no_match(template: str, path: str) -> None:
    assert PathTemplate.parse(template).match(path) is None


@pytest.mark.parametrize(
    "template",
    [
        "v1/no/slash",
        "/v1/{unclosed",
        "/v1/{a}/{a}",
        "/v1/{a={b}}",
        "/v1//x",
        "/v1/**/x",
        "/v1/{1bad}",
        "/v1/x:",
        "/v1/{a=**/x}",
        "/v1/sp ace",
    ],
)
def test_bad_templates_are_refused(template: str) -> None:
    with pytest.raises(TemplateError):
        PathTemplate.parse(template)


def test_invalid_utf8_in_a_value_raises_for_the_caller_to_refuse() -> None:
    with pytest.raises(UnicodeDecodeError):
        PathTemplate.parse("/v1/items/{id}").match("/v1/items/%ff")
