"""docs/health.md: a part of readiness the App's owner flips."""

from __future__ import annotations

from twofold import App


def consumer_started(app: App) -> None:
    app.readiness.set("queue", True)  # ... until this


def wire_up(app: App) -> None:
    app.readiness.require("queue")  # 503 "queue not serving" ...


def stopping(app: App) -> None:
    app.readiness.drain()  # 503 "draining" from now on
