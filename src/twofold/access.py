"""One structured access-log line per call, whatever the protocol.

:class:`AccessLog` logs to ``twofold.access`` at INFO, one JSON object per
call: ``protocol``, ``method``, ``code`` (``ok`` or the canonical code name),
``duration_ms``, ``peer`` and ``request_id`` (with :class:`~twofold.tracing.RequestIds`
before it). Never a header, a body, a token or an error message: a message
may quote what the caller sent.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec

from twofold.context import Context
from twofold.errors import Error
from twofold.interceptors import CallNext
from twofold.tracing import request_id

logger = logging.getLogger("twofold.access")


class AccessLog:
    def __init__(self, log: logging.Logger = logger) -> None:
        self.log = log

    async def __call__(self, ctx: Context, request: Any, call_next: CallNext) -> Any:
        start = time.perf_counter()
        code = "ok"
        try:
            return await call_next(request, ctx)
        except Error as exc:
            code = exc.code.wire_name
            raise
        except BaseException:
            code = "internal"
            raise
        finally:
            if self.log.isEnabledFor(logging.INFO):
                line = {
                    "protocol": ctx.protocol,
                    "method": ctx.method.full_name,
                    "code": code,
                    "duration_ms": round((time.perf_counter() - start) * 1000, 3),
                    "peer": ctx.peer,
                    "request_id": request_id(ctx),
                }
                self.log.info(msgspec.json.encode(line).decode())
