"""Errors as OpenAI's API sends them: ``{"error": {"message", "type", "param", "code"}}``.

The HTTP status is the error class's ``http_status`` (one table, in :mod:`scraper.errors`); ``code`` is
the class's name, so a client (``scraper chat`` through a server) can say what a local run would say.
Anything that is not a :class:`~scraper.ScraperError` is a bug: the client gets a plain 500 and the
server's log the traceback.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ScraperError
from ..wire import redact

__all__ = ["error_body", "error_json", "refusal"]

_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}


def refusal(status: int, message: str, code: str) -> dict[str, Any]:
    """OpenAI's error object; its message goes through the one secret rule (a URL, a nonce, a key)."""
    kind = _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    return {"error": {"message": redact(message), "type": kind, "param": None, "code": code}}


def error_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The status and the JSON body that report ``exc`` to a client."""
    if isinstance(exc, ScraperError):
        status, code, message = exc.http_status, exc.code or type(exc).__name__, str(exc)
    else:
        status, code, message = 500, "ScraperError", "scraper serve failed unexpectedly; its log says why."
    return status, refusal(status, message, code)


def error_json(exc: BaseException) -> tuple[int, bytes]:
    """:func:`error_body` encoded."""
    status, body = error_body(exc)
    return status, json.dumps(body, ensure_ascii=False).encode("utf-8")
