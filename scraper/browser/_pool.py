"""A pool of browsers behind one client: where each chat runs, and which browsers are up.

A pool member is one browser: ``"local"`` (launched here) or a remote one (``ws://`` a Playwright
browser server, ``http://`` a Chromium's CDP endpoint), each with its own :class:`BrowserRuntime`. A
member may carry a capacity, the most chats it runs at once, written as the URL's ``capacity`` query
parameter (``ws://host:3000/key?capacity=4``; ``local?capacity=2``) or given as ``(url, capacity)``.

Placement keeps warm pages where they are: a site's chats go to the browser that holds its warm pages
while that browser is up and under capacity; a new site (or one whose browser is full or down) goes to
the least loaded up browser (fewest chats in flight, then fewest pages open).

Failure stays local: a browser that is lost (its connection closed, or it does not answer a probe within
``probe_timeout``) is marked down and probed again with back-off on its own thread; it rejoins the
pool when it answers. Nothing here runs a chat: the client's pooled service does, and asks the pool
where.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import re
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._aio import within
from ..errors import BrowserLaunchError, ConfigError
from ..wire import logger, redact, redact_url
from ._runtime import BrowserOptions, BrowserRuntime, get_runtime, remote_options

__all__ = ["BrowserPool", "BrowserSpec", "PoolMember", "parse_browsers", "place", "where"]

log = logger("scraper.browser")

LOCAL = "local"
PROBE_TIMEOUT = 10.0  # seconds a browser may take to answer a probe before it counts as down
FIRST_RETRY = 0.5  # seconds before a down browser is probed again; doubled each time, up to MAX_RETRY
MAX_RETRY = 10.0
BrowserSpec: TypeAlias = "str | tuple[str, int | None]"


def where(url: str) -> str:
    """A browser's location as shown to others: a remote one's scheme, host and port only (its path may be
    its key), with any credentials hidden by the package's redaction rule."""
    if url == LOCAL:
        return LOCAL
    parts = urlsplit(redact_url(url))
    netloc = parts.netloc.rpartition("@")[2] if "@" in parts.netloc else parts.netloc
    return f"{parts.scheme}://{netloc}"


def _split_capacity(url: str) -> tuple[str, int | None]:
    """``url`` without its ``capacity`` query parameter, and that capacity."""
    scheme, netloc, path, query, fragment = urlsplit(url)
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if k != "capacity"]
    found = [v for k, v in pairs if k == "capacity"]
    capacity = _capacity(found[-1], url) if found else None
    if url.split("?")[0] == LOCAL:
        return LOCAL, capacity
    return urlunsplit((scheme, netloc, path, urlencode(kept), fragment)), capacity


def _capacity(value: Any, url: str) -> int:
    try:
        capacity = int(value)
    except (TypeError, ValueError):
        capacity = 0
    if capacity < 1:
        raise ConfigError(f"A browser's capacity is a whole number of chats, at least 1, not {value!r} ({where(url)}).")
    return capacity


def parse_browsers(given: str | Iterable[BrowserSpec]) -> list[tuple[str, int | None]]:
    """The pool's members from text (comma- or space-separated, as ``SCRAPER_BROWSERS``) or a list of
    URLs and ``(url, capacity)`` pairs; ConfigError for anything that is no browser."""
    items: Iterable[BrowserSpec] = [p for p in re.split(r"[,\s]+", given) if p] if isinstance(given, str) else given
    members: list[tuple[str, int | None]] = []
    for item in items:
        url, capacity = (item, None) if isinstance(item, str) else item
        url, in_url = _split_capacity(url.strip())
        capacity = _capacity(capacity, url) if capacity is not None else in_url
        if url != LOCAL:
            remote_options(url)  # ConfigError when it is no browser URL
        if any(url == seen for seen, _ in members):
            raise ConfigError(f"The browser {where(url)} is given twice.")
        members.append((url, capacity))
    return members


@dataclass(eq=False)
class PoolMember:
    """One browser of a pool and what placement reads of it."""

    url: str
    capacity: int | None
    runtime: BrowserRuntime
    up: bool = True  # believed up until a chat or a probe says otherwise
    chats: int = 0  # chats in flight on it
    last_error: dict[str, Any] | None = None
    removed: bool = False  # no longer in the pool: takes no chat, closes once its chats are done
    sites: set[str] = field(default_factory=set)  # the sites whose warm pages it holds
    _recovery: concurrent.futures.Future[None] | None = None

    @property
    def where(self) -> str:
        return where(self.url)

    @property
    def pages(self) -> int:
        """Pages open in this browser (read from another thread: a count for placement, not a promise)."""
        return sum(len(site.lanes) for site in self.runtime.sites)

    @property
    def full(self) -> bool:
        return self.capacity is not None and self.chats >= self.capacity

    def failed_with(self, exc: BaseException) -> None:
        """Remember the browser's last failure, its message without the URL's path (which may be its key)."""
        message = redact(str(exc).replace(self.url, self.where))
        self.last_error = {"at": round(time.time(), 3), "error": type(exc).__name__, "message": message}

    def health(self) -> dict[str, Any]:
        """This member's line of a server's ``/health``: nothing secret in it."""
        lanes = [lane for site in self.runtime.sites for lane in site.lanes]
        last = self.last_error
        return {
            "browser": self.where,
            "up": self.up,
            "capacity": self.capacity,
            "pages": sum(lane.page is not None and lane.page_loads > 0 for lane in lanes),
            "chats": self.chats,
            "last_error": dict(last) if last else None,
        }


def place(members: Sequence[PoolMember], site: str, held_by: PoolMember | None = None) -> PoolMember | None:
    """Where a chat with ``site`` goes: the member that holds its warm pages (``held_by``) while it is up
    and under capacity, else the least loaded up member with room; None when none has room."""
    usable = [m for m in members if m.up and not m.removed and not m.full]
    if held_by is not None and held_by in usable:
        return held_by
    return min(usable, key=lambda m: (m.chats, m.pages), default=None)


class BrowserPool:
    """Browsers that chats are spread over (see the module's notes). ``browsers``: ``"local"`` and remote
    URLs, each optionally with a capacity; ``options`` are the browser options every member shares
    (headless, driver...)."""

    def __init__(
        self,
        browsers: str | Iterable[BrowserSpec],
        options: BrowserOptions | None = None,
        *,
        probe_timeout: float = PROBE_TIMEOUT,
    ) -> None:
        self.options: BrowserOptions = dict(options or {})  # type: ignore[assignment]
        self.probe_timeout = probe_timeout
        self._lock = threading.RLock()  # placement may mark a member down while it holds the lock
        self._changed = threading.Condition(self._lock)
        self._affinity: dict[str, PoolMember] = {}
        self.members: list[PoolMember] = []
        self.rejoined = 0  # browsers that came back after being down
        self.lost = 0  # browsers marked down
        self.replace(browsers)

    def __iter__(self) -> Iterator[PoolMember]:
        return iter([m for m in self.members if not m.removed])

    def __len__(self) -> int:
        return sum(1 for m in self.members if not m.removed)

    @property
    def up(self) -> int:
        return sum(1 for m in self if m.up)

    def _runtime(self, url: str) -> BrowserRuntime:
        options: BrowserOptions = dict(self.options)  # type: ignore[assignment]
        if url != LOCAL:
            options.pop("ws_endpoint", None)
            options.pop("cdp_endpoint", None)
            options.update(remote_options(url))
        return get_runtime(options)

    def replace(self, browsers: str | Iterable[BrowserSpec]) -> None:
        """Make the pool these browsers: new ones join, ones no longer named take no new chat and close
        once their chats are done, ones kept keep their warm pages (and get the capacity given now)."""
        wanted = parse_browsers(browsers)
        if not wanted:
            raise ConfigError("A browser pool needs at least one browser.")
        closing: list[PoolMember] = []
        with self._lock:
            current = {m.url: m for m in self.members if not m.removed}
            members = []
            for url, capacity in wanted:
                member = current.pop(url, None) or PoolMember(url, capacity, self._runtime(url))
                member.capacity = capacity
                members.append(member)
            for member in current.values():
                member.removed = True
                if not member.chats:
                    closing.append(member)
            self.members = members + [m for m in current.values() if m.chats]
            self._affinity = {site: m for site, m in self._affinity.items() if not m.removed}
            self._changed.notify_all()
        for member in closing:
            self._close_member(member)

    # -- placement -------------------------------------------------------------------------------------------
    def _choose(self, site: str, avoid: Iterable[PoolMember]) -> PoolMember | None:
        for member in self.members:  # a connection that closed says so without a probe
            if member.up and member.runtime.launches and not member.runtime.connected:
                self._down(member, BrowserLaunchError("The browser's connection closed."))
        avoided = set(avoid)
        candidates = [m for m in self.members if m not in avoided]
        held = self._affinity.get(site)
        chosen = place(candidates, site, held)
        if chosen is not None:
            chosen.chats += 1
            chosen.sites.add(site)
            if held is None or not held.up or held.removed:  # a full holder keeps its site
                self._affinity[site] = chosen
        return chosen

    async def acquire(self, site: str, timeout: float, avoid: Iterable[PoolMember] = ()) -> PoolMember:
        """A member for a chat with ``site``, counted as in flight until :meth:`release`; waits up to
        ``timeout`` seconds while every up browser is at capacity, and raises BrowserLaunchError when
        no browser of the pool is up (or only ones to ``avoid``)."""
        avoid = list(avoid)
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                chosen = self._choose(site, avoid)
                if chosen is not None:
                    return chosen
                up = [m for m in self if m.up and m not in avoid]
            if not up:
                raise BrowserLaunchError(f"None of the pool's {len(self)} browsers is up; try again shortly.")
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserLaunchError(f"Every browser of the pool is at its capacity for {timeout:g} s.")
            await asyncio.get_running_loop().run_in_executor(None, self._wait_for_change, min(left, 1.0))

    def _wait_for_change(self, seconds: float) -> None:
        with self._changed:
            self._changed.wait(seconds)

    def release(self, member: PoolMember) -> None:
        """A chat on ``member`` ended, however it ended."""
        with self._lock:
            member.chats -= 1
            close = member.removed and not member.chats
            self._changed.notify_all()
        if close:
            self._close_member(member)

    # -- failure and recovery ----------------------------------------------------------------------------------
    def failed(self, member: PoolMember, exc: BaseException) -> bool:
        """A chat on ``member`` failed with a browser error: probe it (bounded) and say whether it is down.
        Runs off the caller's loop (blocking); call it through an executor."""
        if member.runtime.closed:
            return True
        try:
            self._probe(member)
        except Exception:
            self._down(member, exc)
            return True
        return False

    def _probe(self, member: PoolMember) -> None:
        runtime = member.runtime
        runtime.call_sync(within(runtime.browser(), self.probe_timeout), self.probe_timeout + 5)

    def _down(self, member: PoolMember, exc: BaseException) -> None:
        with self._lock:
            member.failed_with(exc)
            if not member.up:
                return
            member.up = False
            self.lost += 1
            self._affinity = {site: m for site, m in self._affinity.items() if m is not member}
            member.sites.clear()
            self._changed.notify_all()
        log.warning("the browser %s is down (%s); its new chats go to the others", member.where, type(exc).__name__)
        if not member.runtime.closed:
            member._recovery = asyncio.run_coroutine_threadsafe(
                self._recover(member),
                member.runtime._ensure_loop(),  # the probe runs on the member's own thread
            )

    async def _recover(self, member: PoolMember) -> None:
        """Probe a down browser with back-off until it answers, then let it rejoin (on its thread)."""
        pause = FIRST_RETRY
        while not member.removed:
            await asyncio.sleep(pause)
            try:
                await within(member.runtime.browser(), self.probe_timeout)
            except Exception as exc:
                member.failed_with(exc)
                pause = min(pause * 2, MAX_RETRY)
                continue
            with self._lock:
                member.up = True
                self.rejoined += 1
                self._changed.notify_all()
            log.info("the browser %s is up again; it rejoins the pool", member.where)
            return

    # -- closing ---------------------------------------------------------------------------------------------
    def _close_member(self, member: PoolMember) -> None:
        if member._recovery is not None:
            member._recovery.cancel()
        with contextlib.suppress(Exception):
            member.runtime.close()

    def close(self) -> None:
        """Close every browser of the pool (their runtimes are the process's: closing again is harmless)."""
        with self._lock:
            members, self.members = self.members, []
        for member in members:
            self._close_member(member)

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)
