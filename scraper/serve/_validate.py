"""A request body, read and checked before anything else happens: bounded in size, time and nesting,
JSON that is valid Unicode, no ``NaN``/``Infinity``. Each failure is a :class:`~scraper.ConfigError` (400)
or :class:`BodyTimeout` (408), reported in OpenAI's shape; no browser work starts for a bad request.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request

from .._aio import within
from ..errors import ConfigError

__all__ = ["MAX_DEPTH", "BodyTimeout", "check_json", "parse_json", "read_json"]

MAX_DEPTH = 32  # nesting of arrays and objects: OpenAI's messages need 4 or 5
_BRACKETS = bytes(range(256)).translate(None, b'[]{}"\\')


class BodyTimeout(ConfigError):
    """The client did not send its whole body in time."""

    http_status = 408


def _depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in ``body``, brackets inside strings not counted."""
    # Only brackets, quotes and backslashes matter: drop every other byte first (fast, in C).
    text = body.translate(None, _BRACKETS)
    depth = deepest = 0
    in_string = escaped = False
    for byte in text:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise ConfigError(f"The request body holds {name}, which is not JSON; send a number.")


def parse_json(body: bytes) -> Any:
    """``body`` as JSON, checked: nesting at most :data:`MAX_DEPTH`, UTF-8, strings valid Unicode."""
    if _depth(body) > MAX_DEPTH:
        raise ConfigError(f"The request body nests arrays and objects deeper than {MAX_DEPTH} levels.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("The request body is not UTF-8.") from None
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except ConfigError:
        raise
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"The request body is not valid JSON: {exc}.") from None
    check_json(value)
    return value


def check_json(value: Any) -> None:
    """ConfigError when a string (or key) of ``value`` is not valid Unicode (a lone surrogate, ``\\ud800``)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(
            "The request body holds a string that is not valid Unicode (a lone surrogate such as \\ud800)."
        ) from None


async def read_json(request: Request, limit: int, timeout: float) -> Any:
    """The body as checked JSON: at most ``limit`` bytes, all of it within ``timeout`` seconds."""
    declared = request.headers.get("content-length", "")
    too_big = ConfigError(f"The request body is larger than {limit} bytes.")
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    body = bytearray()

    async def read() -> None:
        async for piece in request.stream():
            body.extend(piece)
            if len(body) > limit:
                raise too_big

    try:
        await within(read(), timeout)
    except asyncio.TimeoutError:
        raise BodyTimeout(f"The request body did not arrive within {timeout:g} s.") from None
    return parse_json(bytes(body))
