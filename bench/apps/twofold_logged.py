"""The peer workload with ``AccessLog`` composed: each request's line is the call's.

:mod:`bench.accesslog` measures what ``twofold serve``'s access log costs
with it and without it (:mod:`bench.apps.twofold_app`).
"""

from __future__ import annotations

from bench.apps.twofold_app import service
from twofold import AccessLog, App

app = App(service, interceptors=[AccessLog()])
