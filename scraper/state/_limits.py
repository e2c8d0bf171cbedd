"""What bounds chats beyond one request: a budget of chats a minute per site, and one turn at a time per
conversation. Each is a small protocol with a backend for this process alone and one in the Redis that
several servers share (``--state``), so the bound holds across the whole fleet.

A site's budget is a sliding window: at most ``limit`` chats started in any ``window`` seconds. Taking
from it never waits: it says how long until the oldest chat of the window leaves it, and the caller
decides whether to wait that long. A conversation's lock in Redis is a key set only when absent, with
a random token and a short expiry that its holder renews while the turn runs; only the holder's token
deletes it, and a holder that died lets it expire, so the next turn goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from .._aio import within
from ..errors import ConversationBusyError, StateUnavailableError
from ..wire import logger
from ._redis import RedisStore

__all__ = [
    "LOCK_TTL",
    "WINDOW",
    "MemoryRateLimiter",
    "MemoryTurnLocks",
    "RateLimiter",
    "RedisRateLimiter",
    "RedisTurnLocks",
    "TurnLocks",
    "lock_ttl",
]

log = logger("scraper.state")

WINDOW = 60.0  # seconds a site's budget counts chats over
LOCK_TTL = 30.0  # seconds a conversation's lock outlives a holder that stopped renewing it
FIRST_POLL = 0.02  # seconds before a waiting turn looks at a taken lock again; doubled up to LAST_POLL
LAST_POLL = 0.5


class RateLimiter(Protocol):
    """A budget of chats per key (a site's origin) over a sliding window."""

    limit: int
    window: float

    def take(self, key: str) -> float:
        """Take one chat from ``key``'s budget now: 0 when taken, else the seconds until one frees
        (nothing is taken then)."""
        ...


class MemoryRateLimiter:
    """The budget in this process: the start times of each site's chats in the window, and only the
    sites that had a chat within it (a site idle for a whole window is forgotten)."""

    def __init__(self, limit: int, window: float = WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._starts: OrderedDict[str, deque[float]] = OrderedDict()  # by the time of their last chat
        self._guard = threading.Lock()

    def __len__(self) -> int:
        """Sites remembered now."""
        return len(self._starts)

    def take(self, key: str) -> float:
        with self._guard:
            return self._take(key, self._clock())

    def _take(self, key: str, now: float) -> float:
        since = now - self.window
        while self._starts:  # sites whose last chat left the window: nothing of theirs counts any more
            oldest = next(iter(self._starts))
            if self._starts[oldest][-1] > since:
                break
            del self._starts[oldest]
        starts = self._starts.get(key)
        if starts is None:
            starts = self._starts[key] = deque()
        while starts and starts[0] <= since:
            starts.popleft()
        if len(starts) >= self.limit:
            return starts[0] + self.window - now
        starts.append(now)
        self._starts.move_to_end(key)
        return 0.0


class RedisRateLimiter:
    """The budget in the shared Redis: one for every server that names it (see :meth:`RedisStore.take`)."""

    def __init__(self, store: RedisStore, limit: int, window: float = WINDOW) -> None:
        self.store = store
        self.limit = limit
        self.window = window

    def take(self, key: str) -> float:
        return self.store.take(key, self.limit, self.window)


class TurnLocks(Protocol):
    """One turn at a time per conversation."""

    def hold(self, conversation_id: str, wait: float) -> contextlib.AbstractAsyncContextManager[None]:
        """The conversation's lock for the block; :class:`~scraper.ConversationBusyError` when it is not
        free within ``wait`` seconds."""
        ...


class _TurnLock:
    """Held or free, and who waits: each waiter on its own event loop (a pool's browsers each run one)."""

    __slots__ = ("__weakref__", "held", "waiters")

    def __init__(self) -> None:
        self.held = False
        self.waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():  # one that gave up meanwhile passes the lock on itself
        future.set_result(None)


class MemoryTurnLocks:
    """The locks of this process, one per conversation, alive while a turn holds or waits for it.

    Not ``asyncio.Lock``: one conversation's turns may run on different browsers' event loops (a pool
    moves a site off a lost browser), and an asyncio lock belongs to one loop. The lock is handed from
    holder to waiter in order, each waiter woken on its own loop."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, _TurnLock] = weakref.WeakValueDictionary()
        self._guard = threading.Lock()  # the browsers' threads share the table

    @contextlib.asynccontextmanager
    async def hold(self, conversation_id: str, wait: float) -> AsyncIterator[None]:
        waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None
        with self._guard:
            lock = self._locks.get(conversation_id)
            if lock is None:
                lock = self._locks[conversation_id] = _TurnLock()
            if lock.held:
                loop = asyncio.get_running_loop()
                waiter = (loop, loop.create_future())
                lock.waiters.append(waiter)
            else:
                lock.held = True
        if waiter is not None:
            try:
                await within(waiter[1], wait)
            except BaseException as exc:
                with self._guard:
                    queued = waiter in lock.waiters
                    if queued:
                        lock.waiters.remove(waiter)
                if not queued:  # the lock was handed over as the wait ended: pass it on
                    self._release(lock)
                if isinstance(exc, asyncio.TimeoutError):
                    raise _busy(conversation_id, wait) from None
                raise
        try:
            yield
        finally:
            self._release(lock)

    def _release(self, lock: _TurnLock) -> None:
        """Hand the lock to the first waiter whose loop still runs, else free it."""
        with self._guard:
            while lock.waiters:
                loop, future = lock.waiters.popleft()
                try:
                    loop.call_soon_threadsafe(_wake, future)
                except RuntimeError:  # its loop was closed (its browser's thread ended)
                    continue
                return
            lock.held = False


class RedisTurnLocks:
    """The locks in the shared Redis: a turn on any server sharing it waits for the one running on another."""

    def __init__(self, store: RedisStore, ttl: float = LOCK_TTL) -> None:
        self.store = store
        self.ttl = ttl

    @contextlib.asynccontextmanager
    async def hold(self, conversation_id: str, wait: float) -> AsyncIterator[None]:
        token = secrets.token_hex(16)
        deadline = time.monotonic() + wait
        pause = FIRST_POLL
        while not await asyncio.to_thread(self.store.lock, conversation_id, token, self.ttl):
            left = deadline - time.monotonic()
            if left <= 0:
                raise _busy(conversation_id, wait)
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, LAST_POLL)
        renewing = asyncio.ensure_future(self._renew(conversation_id, token))
        try:
            yield
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            try:
                await asyncio.to_thread(self.store.unlock, conversation_id, token)
            except StateUnavailableError:  # it expires by itself
                log.warning("the lock of a conversation could not be released; it expires in %g s", self.ttl)

    async def _renew(self, conversation_id: str, token: str) -> None:
        """Keep the lock while the turn runs (a third of its life at a time)."""
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                kept = await asyncio.to_thread(self.store.renew, conversation_id, token, self.ttl)
            except StateUnavailableError:
                continue
            if not kept:
                log.warning("a conversation's lock expired while its turn ran; another turn may run alongside")
                return


def lock_ttl() -> float:
    """``SCRAPER_LOCK_TTL`` seconds, else :data:`LOCK_TTL`."""
    from ..browser._env import env_number

    return env_number("SCRAPER_LOCK_TTL", float, 0.1) if os.environ.get("SCRAPER_LOCK_TTL") else LOCK_TTL


def _busy(conversation_id: str, wait: float) -> ConversationBusyError:
    return ConversationBusyError(
        f"Another turn of conversation {conversation_id} is still running and did not end within {wait:g} s; "
        "send this one again once it has (a conversation's turns run one at a time)."
    )
