"""What a chat sends and gets back, whatever carries it (the browser page or a plain HTTP client)."""

from __future__ import annotations

import abc
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HTTPRequest", "Reply", "Response"]


@dataclass(frozen=True)
class HTTPRequest:
    """What the page should send; the browser adds cookies, User-Agent, Origin and Referer.

    ``form`` is a ``multipart/form-data`` body given as fields in order: the sender builds it the way
    a page's ``FormData`` is built (the browser makes its own boundary), so the site sees the same
    bytes as from its own script. ``body`` is any other body, already encoded as text.
    """

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None
    form: tuple[tuple[str, str], ...] | None = None


class Response(abc.ABC):
    """An HTTP response whose body may still be arriving."""

    status: int
    url: str
    headers: dict[str, str]  # lower-case names
    idle_timeout: float
    received: int

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @abc.abstractmethod
    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body as it arrives; raises :class:`~scraper.StreamError` when the connection breaks."""

    async def aread(self, limit: int = 4 << 20) -> bytes:
        """The whole body (for error pages and JSON replies), at most about ``limit`` bytes."""
        parts: list[bytes] = []
        size = 0
        async for chunk in self.aiter_bytes():
            parts.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
        return b"".join(parts)

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Stop reading; abort the request if its body is still arriving."""


@dataclass(frozen=True)
class Reply:
    """A whole response, handed back to a plugin's chat flow between two of its requests."""

    status: int
    url: str
    headers: Mapping[str, str]
    text: str

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.text)
        except ValueError:
            return None
