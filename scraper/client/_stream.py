"""The reply as a typed stream: text chunks to iterate, how it ended, and a way to stop it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Mapping
from typing import Any

from .._aio import close_now
from ..plugins import Finish, TextDelta

__all__ = ["ChatStream"]


class ChatStream:
    """The reply as an async iterator of text chunks; also awaitable, and closable.

    Closing it (``aclose``, ``async with``, or cancelling the task that iterates it) aborts the
    request in the page. Once the reply is complete, :attr:`finish_reason` and :attr:`usage` say how
    it ended (usage when the site reports it).
    """

    def __init__(self, events: AsyncIterator[TextDelta | Finish]) -> None:
        self._events = events
        self.parts: list[str] = []
        self.finish_reason: str | None = None
        self.usage: Mapping[str, Any] | None = None

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> str:
        while True:
            event = await self._events.__anext__()
            if isinstance(event, Finish):
                self.finish_reason, self.usage = event.reason, event.usage
                continue
            self.parts.append(event.text)
            return event.text

    def __await__(self) -> Generator[Any, None, ChatStream]:
        async def itself() -> ChatStream:
            return self

        return itself().__await__()

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await close_now(self._events)

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self.parts)

    async def collect(self) -> str:
        """Read the whole reply and return it."""
        async for _ in self:
            pass
        return self.text
