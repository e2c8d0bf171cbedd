"""A request id for every request, and log lines a machine reads (``scraper serve --log-format json``).

Each request gets an id (the client's ``X-Request-Id`` when it is a plain token, else a new one); it goes
back in the ``x-request-id`` header of every response, refusals included, and into every log line
written while the request is handled, so a client's complaint finds its lines. In JSON mode each line is
one object; its message and error text pass the one secret rule (:func:`scraper.wire.redact`).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

from ..wire import RedactingFilter, logger, redact

__all__ = ["REQUEST_ID", "JsonFormatter", "RequestLog", "use_json_logs"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("scraper_request_id", default=None)
_GIVEN_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_FIELDS = ("method", "path", "status", "duration_ms")  # a request line's own fields, besides its message
log = logger("scraper.serve.requests")


class RequestLog:
    """ASGI middleware (outermost): the request id, its response header, and one log line per request."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"x-request-id"), "")
        request_id = given if _GIVEN_ID.fullmatch(given) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            duration = round((time.perf_counter() - started) * 1000, 1)
            path = scope.get("path", "")
            log.info(
                "%s %s %s %.1f ms",
                scope["method"],
                path,
                status or "-",
                duration,
                extra={"method": scope["method"], "path": path, "status": status, "duration_ms": duration},
            )
            REQUEST_ID.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id (and a request's own fields)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or REQUEST_ID.get(),
        }
        for name in _FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


def use_json_logs(level: int = logging.INFO) -> None:
    """Send the package's and uvicorn's log records to stderr as JSON lines (and nothing else there)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    for name in ("scraper", "uvicorn"):
        target = logging.getLogger(name)
        target.handlers = [handler]
        target.propagate = False
        target.setLevel(min(level, target.getEffectiveLevel()) if name == "scraper" else logging.WARNING)
    logging.getLogger("uvicorn.access").disabled = True  # the request lines above say more
