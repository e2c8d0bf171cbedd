"""Waiting with a time limit, and closing async generators, without leaving either to chance."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["close_now", "closing", "within"]

T = TypeVar("T")


async def within(awaitable: Awaitable[T], timeout: float | None) -> T:
    """``await awaitable``, raising :class:`TimeoutError` after ``timeout`` seconds (None: no limit).

    Not ``asyncio.wait_for``: before Python 3.12 it returns the result when the awaited call completes
    just as the caller is cancelled, and the cancellation is lost; a chat whose client left then goes on
    reading a reply nobody wants. ``asyncio.timeout`` keeps it (on 3.10, ``wait_for`` is all there is).
    """
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(timeout):
            return await awaitable
    return await asyncio.wait_for(awaitable, timeout)  # pragma: no cover - Python 3.10


async def close_now(iterator: AsyncIterator[Any]) -> None:
    """Close an async generator now, so its ``finally`` blocks (which abort a request in the page) run
    before the caller goes on, not whenever the garbage collector gets to it."""
    closer: Callable[[], Awaitable[None]] | None = getattr(iterator, "aclose", None)
    if closer is not None:
        await closer()


@contextlib.asynccontextmanager
async def closing(iterator: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """``async for`` over ``iterator`` inside this block closes it however the block ends: an
    ``async for`` alone leaves a generator it stops reading suspended, its ``finally`` not run."""
    try:
        yield iterator
    finally:
        await close_now(iterator)
