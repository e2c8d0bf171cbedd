"""Warm sites: per site, lanes of a browser context and a loaded chat page; and the registry of sites.

A lane is what a chat runs in: its page stays loaded between chats, so a second chat costs one
request, not a page load. The HTML the server sent is kept, because some chat scripts (AI Engine)
delete the attributes we need from the live DOM once they start.

Chromium opens at most six HTTP/1.1 connections per host in one context, so a site gets several
lanes (up to ``max_pages``) when many chats run at once. Each lane has its own cookies and its own
plugin values: a lane that refreshes a nonce keeps the cookie that belongs to it (AI Engine ties its
nonce to a session cookie), so values and cookies never diverge between lanes.

A lane heals itself: a page whose load or value read failed is loaded again by the next chat (after a
short pause, so a broken site is not hammered); a crashed or closed page is replaced; a context of a
browser that died is dropped and made again on the next browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

from .._aio import within
from ..errors import BrowserCrashedError, ScraperError, ScraperTimeoutError, TransportError
from ..plugins import Detection, ValueCache, check_page
from ..wire import Challenge, HTTPRequest, logger, redact_url
from ._driver import DriverError, DriverErrorOrTimeout, DriverTimeout, in_page
from ._env import env_number, env_set
from ._errors import first_line, playwright_error
from ._fetch import StreamingResponse, open_stream
from ._hosts import SiteRules, origin_of, without_credentials
from ._navigate import navigate
from ._page_script import APPEARED, CAPTURED, SETTLED, captured_html, page_script
from ._profiles import load_profile, share_clearance, sharing_profiles
from ._recording import FlowRecorder

__all__ = ["PER_PAGE", "Lane", "SitePool", "SiteRegistry", "origin_of", "proxy_settings"]

log = logger("scraper.session")
T = TypeVar("T")

# Chromium opens at most six HTTP/1.1 connections per host in one browser context: more chats than
# that through one page would wait in waves.
PER_PAGE = 6
DEFAULT_MAX_PAGES = 8
RETRY_PAUSE = 1.0  # seconds between a failed page load and the next attempt
LAUNCH_SECONDS = 60.0  # seconds starting (or reaching) the browser may take, whatever the chat's timeout
LANE_IDLE = 30.0  # seconds an extra lane may stay idle before it is closed
# Each warm site holds a browser context and a page: some 35 MB and one Chromium process (the page's
# renderer; see _switches.py for the second one a context would otherwise start). A process
# that chats with many sites keeps only the most recently used ones, and closes a site left idle.
DEFAULT_MAX_SITES = 6
SITE_IDLE = 600.0  # seconds a site with no chat keeps its first lane (its page) warm


def _setting(name: str, kind: type[Any], minimum: Any, default: Any) -> Any:
    return env_number(name, kind, minimum) if env_set(name) else default


def proxy_settings(proxy: str | None) -> dict[str, str] | None:
    """Playwright's proxy dict from a URL such as ``http://user:pass@host:3128``."""
    if not proxy:
        return None
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    server = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    settings = {"server": server}
    if parts.username:
        settings["username"] = unquote(parts.username)
    if parts.password:
        settings["password"] = unquote(parts.password)
    return settings


class Runtime(Protocol):
    """What lanes need of the browser runtime that owns them (``BrowserRuntime``)."""

    launches: int
    user_agent: str | None
    use_profiles: bool
    rules: SiteRules

    @property
    def connected(self) -> bool: ...

    @property
    def auto_click(self) -> bool: ...

    async def browser(self) -> Any: ...

    def context_options(self) -> dict[str, Any]: ...


class Lane:
    """A browser context plus the chat page of one site, loaded once and reused: a ``ChatSite``."""

    def __init__(self, pool: SitePool, *, clone_of: Lane | None = None, use_profile: bool = True) -> None:
        self.pool = pool
        self.runtime = pool.runtime
        # A page named with ``user:password@``: the context sends them, requests never name them.
        self.page_url, self.credentials = without_credentials(pool.page_url)
        self.origin = origin_of(pool.page_url)
        self.use_profile = use_profile
        self.clone_of = clone_of
        self.served_html = ""
        self.page_status: int | None = None
        self.page_loads = 0
        self.values = ValueCache()
        self.detections: list[Detection] | None = None
        self.context: Any = None
        self.page: Any = None
        self.user_agent: str | None = None
        self.profile_used: str | None = None
        self.challenges: list[Challenge] = []
        self.trace_path: str | None = None
        self._browser_generation = 0
        self._fresh = False  # the page is loaded and nothing since says it must be loaded again
        self._page_failed = False  # the page's last load failed: the next chat uses a new page
        self._failed_at: float | None = None
        self._users: dict[Any, int] = {}  # page -> responses still being read from it
        self._open_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<Lane {self.page_url} loads={self.page_loads}>"

    # -- the ChatSite protocol ------------------------------------------------------------------------
    def keep(self, name: str, make: Callable[[], T]) -> T:
        return self.pool.keep(name, make)

    async def send(self, request: HTTPRequest, timeout: float) -> StreamingResponse:
        """Send a request from the page (see :mod:`scraper.browser._fetch`)."""
        page = self.page
        if page is None:
            raise BrowserCrashedError(f"The page of {self.page_url} is gone (it crashed or closed); try again.")
        if "@" in request.url:
            request = dataclasses.replace(request, url=without_credentials(request.url)[0])
        self._users[page] = self._users.get(page, 0) + 1
        try:
            response = await open_stream(page, request, timeout=timeout, recorder=self.recorder)
        except BaseException:
            self._unuse(page)
            raise
        response.on_close = lambda: self._unuse(page)
        return response

    def _unuse(self, page: Any) -> None:
        """A response read from ``page`` is done; a page replaced meanwhile closes with its last one."""
        left = self._users.get(page, 1) - 1
        if left > 0:
            self._users[page] = left
            return
        self._users.pop(page, None)
        if page is not self.page:
            _background(_quietly(page.close()))

    async def live_html(self, wait_for: str | None, timeout: float, *, until_quiet: float | None = None) -> str | None:
        """The live DOM as HTML, read in Playwright's isolated world (page scripts do not see it)."""

        if wait_for and until_quiet is None:
            with contextlib.suppress(*DriverError):
                await self.page.wait_for_function(APPEARED, arg=wait_for, timeout=max(timeout, 0.001) * 1000)
        elif wait_for:
            await self._until_box_or_quiet(wait_for, timeout, until_quiet or 0.0)
        try:
            live: str = await within(self.page.content(), max(timeout, 1.0))
            boxes = await within(in_page(self.page, CAPTURED), max(timeout, 1.0))
        except DriverErrorOrTimeout as exc:
            raise playwright_error(exc, f"reading {self.page_url}") from exc
        # Chat boxes as they first appeared, after the DOM as it is now (a box a script stripped of its
        # settings is only complete there).
        return live + "\n" + captured_html(boxes) if boxes else live

    async def _until_box_or_quiet(self, selector: str, timeout: float, quiet: float) -> None:
        """Wait (up to ``timeout``) for an element matching ``selector``, or for the page to be quiet: its
        DOM and resource loads unchanged for ``quiet`` seconds, and no request in flight (network idle)."""
        deadline = time.monotonic() + timeout

        def left() -> float:
            return max(deadline - time.monotonic(), 0.001) * 1000

        with contextlib.suppress(*DriverError):
            settled = await self.page.wait_for_function(
                SETTLED, arg=[selector, quiet * 1000], timeout=left(), polling=100
            )
            if await settled.json_value() == "box":
                return
            # A request still in flight may yet bring the box: wait for the network, then for quiet again.
            await self.page.wait_for_load_state("networkidle", timeout=left())
            await self.page.wait_for_function(SETTLED, arg=[selector, quiet * 1000], timeout=left(), polling=100)

    # -- life --------------------------------------------------------------------------------------------
    @property
    def recorder(self) -> FlowRecorder | None:
        return self.runtime.rules.recorder_for(self.origin)

    def spoil(self) -> None:
        """Something went wrong with the page's values or load: the next chat loads it again."""
        self._fresh = False
        self._failed_at = time.monotonic()

    async def ensure_context(self, timeout: float = 60.0) -> Any:
        """The lane's browser context, created (again, after a browser died) when needed.

        Starting the browser is not a step of the chat (``timeout`` bounds the site's steps): a cold
        start on a busy machine has its own, longer bound, and ``timeout`` covers opening the context.
        """
        await _bounded(self.runtime.browser(), max(timeout, LAUNCH_SECONDS), "starting")
        return await _bounded(self._ensure_context(), timeout, f"opening a browser context for {self.origin}")

    async def _ensure_context(self) -> Any:
        browser = await self.runtime.browser()
        if self.context is not None and self._browser_generation == self.runtime.launches:
            return self.context
        if self.context is not None:
            log.info("the browser of %s was started again; opening a new context", self.origin)
        self.context = self.page = None
        options: dict[str, Any] = {
            "proxy": proxy_settings(self.pool.proxy),
            "user_agent": self.runtime.user_agent,
            **self.runtime.context_options(),
        }
        if self.clone_of is not None and self.clone_of.context is not None and self.clone_of.page_loads:
            # Another lane of the same site: start with its cookies (session, anti-bot clearance).
            options["storage_state"] = await self.clone_of.context.storage_state()
            options["user_agent"] = self.clone_of.user_agent or options["user_agent"]
        elif self.use_profile and self.runtime.use_profiles and (profile := load_profile(self.origin)) is not None:
            # A person passed this site's check before: same cookies, same User-Agent, or they do not hold.
            log.info("using the saved profile for %s (%d cookies)", profile.site, len(profile.cookie_names))
            options["storage_state"] = profile.storage_state
            options["user_agent"] = profile.user_agent
            self.profile_used = str(profile.path)
        restriction = self.runtime.rules.allowed_hosts
        if restriction is not None:
            options["service_workers"] = "block"
        if self.credentials is not None:
            options["http_credentials"] = self.credentials
        self.user_agent = options["user_agent"]
        self.context = await browser.new_context(**options)
        self._browser_generation = self.runtime.launches
        await self.context.add_init_script(page_script())
        if restriction is not None:
            await self.runtime.rules.restrict(self.context)
        if self.trace_path:
            await self.context.tracing.start(screenshots=True, snapshots=True, sources=True)
        return self.context

    def _page_usable(self) -> bool:
        return (
            self.page is not None
            and not self.page.is_closed()
            and self.runtime.connected
            and self._browser_generation == self.runtime.launches
        )

    async def ready(self, timeout: float) -> None:
        """Load the chat page unless it is loaded and sound."""
        async with self._open_lock:
            if self._fresh and self._page_usable():
                return
            if self._failed_at is not None:
                pause = self._failed_at + RETRY_PAUSE - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(min(pause, timeout / 2))
            try:
                await self.ensure_context(timeout)
                if not self._page_usable() or self._users.get(self.page) or self._page_failed:
                    # A page other chats still read from is left to them (it closes with their last
                    # response): navigating it would break their streams. A page whose load failed is
                    # closed, which also ends the request it may still wait on.
                    old, self.page = self.page, None
                    if old is not None and not self._users.get(old):
                        _background(_quietly(old.close()))
                    self._page_failed = False
                    self.page = await _bounded(self.context.new_page(), timeout, f"opening a page for {self.origin}")
                    self.page.on("crash", self._crashed)
                await self._load(timeout)
            except BaseException:
                # A page whose load failed may still be navigating (a site that never answers): it is
                # kept for the debug files, and the next chat starts on a new one.
                self.spoil()
                self._page_failed = True
                raise
            self._fresh = True
            self._failed_at = None

    def _crashed(self, page: Any) -> None:
        log.warning("the page of %s crashed; the next chat opens a new one", self.page_url)
        if page is self.page:
            self._fresh = False
            self.page = None
        if not self._users.get(page):
            _background(_quietly(page.close()))

    async def _load(self, timeout: float) -> None:

        started = time.perf_counter()
        self.values.clear()
        self.detections = None
        log.info("loading %s", redact_url(self.page_url))
        try:
            response, html, challenge = await navigate(
                self.page,
                self.page_url,
                timeout,
                self.origin,
                refetch=lambda: self._refetch(timeout),
                auto_click=self.runtime.auto_click,
            )
        except DriverTimeout:
            raise ScraperTimeoutError(
                f"{self.page_url} did not load within {timeout:g} s. Check that the site is up, or raise timeout=."
            ) from None
        except DriverError as exc:
            error = playwright_error(exc, f"loading {self.page_url}")
            if isinstance(error, TransportError):
                error = TransportError(
                    f"Could not load {self.page_url}: {first_line(exc)}. Check the URL, the network or proxy."
                )
            raise error from exc
        self.page_loads += 1
        if challenge is not None:
            self.challenges.append(challenge)
            await self._share_clearance(challenge)
        if response is None:  # same-document navigation; keep what we had
            return
        self.page_status = response.status
        self.served_html = html
        if self.recorder is not None:
            headers = [(h["name"], h["value"]) for h in await response.headers_array()]
            self.recorder.page(response.url, response.status, headers, self.served_html)
        log.info(
            "loaded %s: HTTP %s, %d bytes in %.0f ms",
            redact_url(self.page_url),
            response.status,
            len(self.served_html),
            (time.perf_counter() - started) * 1000,
        )
        check_page(self.page_url, response.status, html)

    async def _refetch(self, timeout: float) -> str:
        """The page's HTML asked of the server again, from the page (when Chromium no longer keeps the
        body of a big page, the DOM is no substitute: scripts may have removed what we need)."""
        response = await self.send(HTTPRequest("GET", self.page_url, {"Accept": "text/html,*/*;q=0.8"}), timeout)
        try:
            return (await response.aread(64 << 20)).decode("utf-8", "replace")
        finally:
            await response.aclose()

    async def _share_clearance(self, challenge: Challenge) -> None:
        """A check cleared: its cookies go to the store other servers share (when there is one), so they
        do not meet it again."""
        if not challenge.cleared or not sharing_profiles() or self.context is None:
            return
        state = await self.context.storage_state()
        await asyncio.to_thread(share_clearance, self.origin, state, self.user_agent or "")
        log.info("the cookies that cleared the %s check of %s are shared", challenge.vendor, self.origin)

    async def pass_check(self, challenge: Challenge, timeout: float) -> None:
        """Pass an anti-bot check met by a chat request without touching the chatting page: load the
        page once more in a second tab of the same context, where the clearance cookie lands."""
        context = await self.ensure_context(timeout)
        page = await _bounded(context.new_page(), timeout, f"opening a page for {self.origin}")
        try:
            _, _, found = await navigate(page, self.page_url, timeout, self.origin, auto_click=self.runtime.auto_click)
            if found is not None:
                self.challenges.append(found)
                await self._share_clearance(found)
        except ScraperError:
            raise
        except Exception as exc:
            raise playwright_error(exc, f"passing the check at {self.page_url}") from exc
        finally:
            await _quietly(page.close())

    async def trace_to(self, path: str) -> None:
        """Record a Playwright trace of this lane from now on, written to ``path`` after each chat."""
        if self.trace_path == path:
            return
        started = self.trace_path is not None
        self.trace_path = path
        if self.context is not None and not started:
            await self.context.tracing.start(screenshots=True, snapshots=True, sources=True)

    async def save_trace(self) -> str | None:
        """Write the trace of what happened since the last save (if tracing), and go on tracing."""
        if not self.trace_path or self.context is None:
            return None

        try:
            await self.context.tracing.stop_chunk(path=self.trace_path)
            await self.context.tracing.start_chunk()
        except DriverError as exc:
            log.warning("could not write the trace %s: %s", self.trace_path, first_line(exc))
            return None
        log.info("trace written to %s (open it with `playwright show-trace %s`)", self.trace_path, self.trace_path)
        return self.trace_path

    async def add_cookies(self, cookies: Mapping[str, str] | None) -> None:
        """Put caller-given cookies into the context, for this site only."""
        if not cookies:
            return
        context = await self.ensure_context()
        await context.add_cookies(
            [{"name": str(k), "value": str(v), "url": self.origin + "/"} for k, v in cookies.items()]
        )

    async def close(self) -> None:
        if self.context is not None:
            await _quietly(self.context.close())
        self.context = self.page = None
        self._fresh = False


async def _bounded(awaitable: Awaitable[T], timeout: float, doing: str) -> T:
    """Await a browser call for at most ``timeout`` seconds; its failure as the package's error."""
    try:
        return await within(awaitable, timeout)
    except asyncio.TimeoutError:
        raise ScraperTimeoutError(f"The browser took longer than {timeout:g} s {doing}; try again.") from None
    except ScraperError:
        raise
    except Exception as exc:
        raise playwright_error(exc, doing) from exc


_tasks: set[asyncio.Task[Any]] = set()


def _background(coro: Any) -> None:
    """Run ``coro`` without waiting for it (a page closing), keeping the task until it is done."""
    task = asyncio.ensure_future(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def _quietly(awaitable: Any) -> None:
    with contextlib.suppress(Exception):
        await within(awaitable, 10)


class SitePool:
    """The lanes of one site: up to ``max_pages`` contexts with a loaded page each.

    A chat takes a slot in the first lane that has one; a new lane opens only when every lane has
    ``PER_PAGE`` chats in flight; beyond ``max_pages`` lanes, chats wait in arrival order. A slot is
    given back when its chat ends, fails or is cancelled. A lane beyond the first that has been idle
    for ``SCRAPER_LANE_IDLE`` seconds (default 30) is closed: a burst does not keep its memory. When no
    chat at all has used the site for ``SCRAPER_SITE_IDLE`` seconds (default 600), ``on_idle`` is called:
    the registry closes the whole site, first lane included.
    """

    def __init__(
        self,
        runtime: Runtime,
        page_url: str,
        *,
        proxy: str | None,
        max_pages: int,
        on_idle: Callable[[SitePool], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.on_idle = on_idle
        self.closed = False
        self._site_idle: asyncio.TimerHandle | None = None
        self.page_url = page_url
        self.proxy = proxy
        self.max_pages = max(1, max_pages)
        self.lanes: list[Lane] = []
        self.in_flight: dict[int, int] = {}
        self._waiters: deque[asyncio.Future[Lane]] = deque()
        self._kept: dict[str, Any] = {}
        self._idle: dict[int, asyncio.TimerHandle] = {}  # lane -> its closing, while it has nothing to do

    def keep(self, name: str, make: Callable[[], T]) -> T:
        """A value that lives as long as the site's session, across lanes and reloads (like localStorage)."""
        if name not in self._kept:
            self._kept[name] = make()
        kept: T = self._kept[name]
        return kept

    @property
    def primary(self) -> Lane:
        """The first lane, created on demand: the one a single chat at a time always uses."""
        if not self.lanes:
            self._open_lane()
        return self.lanes[0]

    def _open_lane(self) -> Lane:
        clone_of = self.lanes[0] if self.lanes else None
        lane = Lane(self, clone_of=clone_of)
        self.lanes.append(lane)
        self.in_flight[id(lane)] = 0
        if clone_of is not None:
            log.info("opening lane %d for %s (%d chats in flight)", len(self.lanes), self.page_url, self.busy)
        return lane

    @property
    def busy(self) -> int:
        """Chats holding a slot."""
        return sum(self.in_flight.values())

    @property
    def waiting(self) -> int:
        """Chats waiting for a slot."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    def _free_lane(self) -> Lane | None:
        """The first lane with a free slot: later lanes only take what the first ones cannot."""
        return next((lane for lane in self.lanes if self.in_flight[id(lane)] < PER_PAGE), None)

    async def acquire(self) -> Lane:
        """A lane with a free slot; waits (first come, first served) when all are full."""
        lane = self._free_lane() if not self._waiters else None
        if lane is None and len(self.lanes) < self.max_pages and not self._waiters:
            lane = self._open_lane()
        if lane is None:
            waiter: asyncio.Future[Lane] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            log.info("all %d lanes of %s are busy; waiting for a slot", len(self.lanes), self.page_url)
            try:
                return await waiter  # the slot was handed over already counted
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self.release(waiter.result())  # handed over just as we were cancelled
                else:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)
                raise
        self.in_flight[id(lane)] += 1
        handle = self._idle.pop(id(lane), None)
        if handle is not None:
            handle.cancel()
        if self._site_idle is not None:
            self._site_idle.cancel()
            self._site_idle = None
        return lane

    @property
    def idle(self) -> bool:
        """No chat holds or waits for a slot: the site can be closed without breaking one."""
        return not self.busy and not self.waiting

    def release(self, lane: Lane) -> None:
        """Give a slot back, straight to the longest-waiting chat if there is one."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(lane)  # the slot passes on: in_flight stays as it is
                return
        if id(lane) not in self.in_flight:
            return
        self.in_flight[id(lane)] -= 1
        loop = asyncio.get_running_loop()
        if self.in_flight[id(lane)] == 0 and self.lanes and lane is not self.lanes[0]:
            idle = _setting("SCRAPER_LANE_IDLE", float, 0, LANE_IDLE)
            self._idle[id(lane)] = loop.call_later(idle, self._retire, lane)
        if self.idle and self.on_idle is not None and self._site_idle is None:
            self._site_idle = loop.call_later(_setting("SCRAPER_SITE_IDLE", float, 0, SITE_IDLE), self._went_idle)

    def _went_idle(self) -> None:
        self._site_idle = None
        if self.idle and self.on_idle is not None and not self.closed:
            self.on_idle(self)

    def _retire(self, lane: Lane) -> None:
        """Close a lane beyond the first that stayed idle."""
        self._idle.pop(id(lane), None)
        if lane not in self.lanes or lane is self.lanes[0] or self.in_flight.get(id(lane)):
            return
        self.lanes.remove(lane)
        del self.in_flight[id(lane)]
        log.info("closing an idle lane of %s (%d left)", self.page_url, len(self.lanes))
        _background(lane.close())

    async def close(self) -> None:
        self.closed = True
        if self._site_idle is not None:
            self._site_idle.cancel()
            self._site_idle = None
        for handle in self._idle.values():
            handle.cancel()
        self._idle.clear()
        for lane in self.lanes:
            await lane.close()
        self.lanes.clear()
        self.in_flight.clear()


class SiteRegistry:
    """The warm sites of one browser runtime, most recently used last. Every operation on it runs on the
    browser thread (``runtime.call``).

    Bounded: beyond ``max_sites`` (``SCRAPER_MAX_SITES``, default 6) the least recently used sites with no
    chat in flight are closed (:meth:`trim`), and a site no chat used for ``SCRAPER_SITE_IDLE`` seconds is
    closed by itself. ``opened`` and ``evicted`` count sites over the registry's life.
    """

    def __init__(self, runtime: Runtime, *, max_sites: int | None = None) -> None:
        self.runtime = runtime
        self._max_sites = max_sites
        self._pools: OrderedDict[tuple[str, str | None], SitePool] = OrderedDict()
        self.opened = 0
        self.evicted = 0

    @property
    def max_sites(self) -> int:
        """How many sites stay warm at most (read when used, so the environment can change it)."""
        return self._max_sites or _setting("SCRAPER_MAX_SITES", int, 1, DEFAULT_MAX_SITES)

    @max_sites.setter
    def max_sites(self, value: int | None) -> None:
        self._max_sites = max(1, value) if value else None

    def __len__(self) -> int:
        return len(self._pools)

    def __iter__(self) -> Iterator[SitePool]:
        return iter(list(self._pools.values()))

    def pool(self, page_url: str, *, proxy: str | None = None, max_pages: int | None = None) -> SitePool:
        """The lanes of this chat page (and proxy), created on first use."""
        key = (page_url, proxy)
        pool = self._pools.get(key)
        if pool is None:
            default = _setting("SCRAPER_MAX_PAGES", int, 1, DEFAULT_MAX_PAGES)
            pool = SitePool(self.runtime, page_url, proxy=proxy, max_pages=max_pages or default, on_idle=self._idle)
            self._pools[key] = pool
            self.opened += 1
        else:
            self._pools.move_to_end(key)
            if max_pages:
                pool.max_pages = max_pages
        return pool

    async def trim(self) -> int:
        """Close the least recently used sites with no chat in flight while there are more than
        ``max_sites``; a site in use is never closed (the bound is then exceeded until it is idle)."""
        closed = 0
        for key, pool in list(self._pools.items()):
            if len(self._pools) <= self.max_sites:
                break
            if pool.idle:
                del self._pools[key]
                self.evicted += 1
                closed += 1
                log.info("closing the warm site %s (%d sites kept at most)", redact_url(pool.page_url), self.max_sites)
                await pool.close()
        return closed

    def _idle(self, pool: SitePool) -> None:
        """A site no chat used for a while: close it, first lane and all."""
        key = next((k for k, p in self._pools.items() if p is pool), None)
        if key is None:
            return
        del self._pools[key]
        self.evicted += 1
        log.info("closing the idle site %s", redact_url(pool.page_url))
        _background(pool.close())

    async def forget(self, url: str) -> int:
        """Close the warm lanes of the site at ``url``; the next chat loads its page anew."""
        origin = origin_of(url)
        closed = 0
        for key, pool in list(self._pools.items()):
            if origin_of(key[0]) == origin:
                del self._pools[key]
                await pool.close()
                closed += 1
        return closed

    async def close_all(self) -> None:
        pools = list(self._pools.values())
        self._pools.clear()
        for pool in pools:
            with contextlib.suppress(Exception):
                await pool.close()
