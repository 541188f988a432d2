"""A server stream that resumes: each event's id is a story's, and a client that
reconnects with Last-Event-ID gets the stories after it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec

from twofold import App, Idempotency, Service, resumable

service = Service("news.v1")


class Story(msgspec.Struct):
    id: int
    headline: str


STORIES = [Story(1, "Kettle prices fall"), Story(2, "Lamps in stock"), Story(3, "Vases sold out")]


@service.procedure(http=("GET", "/stories:watch"), idempotency=Idempotency.NO_SIDE_EFFECTS)
@resumable("id", after="after_id")
async def watch_stories(after_id: int | None = None) -> AsyncIterator[Story]:
    # SSE puts each story's id in its event's id, and a Last-Event-ID into after_id.
    for story in STORIES:
        if after_id is None or story.id > after_id:
            yield story


app = App(service)
