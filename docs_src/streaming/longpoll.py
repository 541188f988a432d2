"""A live feed that clients without an event stream follow by long polling:
``GET /stories:watch?wait=30&after_id=...`` is held until a story is published."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec

from twofold import App, Idempotency, Options, Service, resumable

service = Service("newsroom.v1")


class Story(msgspec.Struct):
    id: int
    headline: str


FEED: list[Story] = []
published = asyncio.Event()  # set, and replaced, at every story


@service.procedure(http=("GET", "/stories:watch"), idempotency=Idempotency.NO_SIDE_EFFECTS)
@resumable("id", after="after_id")
async def watch_stories(after_id: int = 0) -> AsyncIterator[Story]:
    # The stories after after_id, then each one as it is published. An event
    # stream without ?wait, a long poll with it: the handler is the same.
    sent = after_id
    while True:
        woken = published
        for story in [s for s in FEED if s.id > sent]:
            yield story
            sent = story.id
        await woken.wait()


@service.procedure(http=("POST", "/stories"))
async def publish(headline: str) -> Story:
    global published
    story = Story(len(FEED) + 1, headline)
    FEED.append(story)
    woken, published = published, asyncio.Event()
    woken.set()
    return story


# Polls are held 20 s at most: a longer ?wait is taken as 20.
app = App(service, options=Options(max_poll_wait=20))
