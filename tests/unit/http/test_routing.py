from __future__ import annotations

import pytest

from twofold.http.routing import Router, Template, TemplateError

TEMPLATES = [
    "/products",
    "/products/{id}",
    "/products/{product_id}/reviews",
    "/products:import",
    "/users/{user_id}/orders/{order_id}",
    "/users/{user_id}/orders/{order_id}:cancel",
    "/reports:generate",
]


@pytest.fixture
def router() -> Router[str]:
    r: Router[str] = Router()
    for t in TEMPLATES:
        r.add(Template.parse(t), t)
    return r


@pytest.mark.parametrize(
    ("path", "template", "params"),
    [
        ("/products", "/products", {}),
        ("/products/42", "/products/{id}", {"id": "42"}),
        ("/products/7/reviews", "/products/{product_id}/reviews", {"product_id": "7"}),
        ("/products:import", "/products:import", {}),
        (
            "/users/1/orders/2",
            "/users/{user_id}/orders/{order_id}",
            {"user_id": "1", "order_id": "2"},
        ),
        (
            "/users/1/orders/2:cancel",
            "/users/{user_id}/orders/{order_id}:cancel",
            {"user_id": "1", "order_id": "2"},
        ),
        ("/reports:generate", "/reports:generate", {}),
    ],
)
def test_match(router: Router[str], path: str, template: str, params: dict[str, str]) -> None:
    assert router.match(path) == (template, params)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/nope",
        "/products/",
        "//",
        "/users/1/orders",
        "/users/1/orders/2:refund",
        "/reports",
        "/products/1/reviews/2",
    ],
)
def test_no_match(router: Router[str], path: str) -> None:
    assert router.match(path) == (None, {})


@pytest.mark.parametrize(
    "bad",
    ["products", "/a/{b", "/a/x{b}", "/a/{b}/{b}", "/a//b", "/a/{1x}", "/a:", "/a/{b}:"],
)
def test_bad_templates(bad: str) -> None:
    with pytest.raises(TemplateError):
        Template.parse(bad)


def test_overlapping_templates_are_refused(router: Router[str]) -> None:
    with pytest.raises(TemplateError, match="overlaps"):
        router.add(Template.parse("/products/{sku}"), "dup")


def test_expand_quotes_values() -> None:
    t = Template.parse("/users/{user_id}/orders/{order_id}:cancel")
    assert t.variables == ("user_id", "order_id")
    assert t.expand({"user_id": "a/b", "order_id": "1"}) == "/users/a%2Fb/orders/1:cancel"
