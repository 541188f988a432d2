"""A service that breaks its own contract, for tests/e2e/test_schemathesis.py to show
that the schemathesis run there can fail: its Get declares ids of at least 1
and answers with 0, which only a check of the response against its schema sees."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from twofold import App, Service

service = Service("broken.v1")
widgets = service.resource("widgets")

WidgetId = Annotated[int, Meta(ge=1, le=1000)]


class Widget(msgspec.Struct, kw_only=True):
    id: WidgetId
    name: str


@widgets.get
async def get_widget(id: WidgetId) -> Widget:
    """Get a widget: declared to have an id of at least 1, answered with 0."""
    return Widget(id=0, name=f"widget {id}")


app = App(service, title="Broken widgets")
