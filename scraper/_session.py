"""One warm site: a browser context and the loaded chat page.

The page stays open between chats, so a second chat costs one request, not a page load. The HTML the
server sent is kept, because some chat scripts (AI Engine) delete the attributes we need from the
live DOM once they start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from ._antibot import Challenge, detect
from ._browser import BrowserRuntime
from ._errors import ChallengeError, HTTPError, ScraperTimeoutError, TransportError, excerpt
from ._profiles import load_profile
from ._recording import FlowRecorder
from ._transport import HTTPRequest, StreamingResponse, open_stream

__all__ = ["PER_PAGE", "SitePool", "SiteSession", "SiteState", "get_pool", "get_session", "proxy_settings"]

log = logging.getLogger("scraper.session")
T = TypeVar("T")


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


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class SiteState:
    """What a chat flow keeps about one site, whatever carries its requests: the page as served, the
    plugins' cached values, and what lives across page reloads (as the site's localStorage would)."""

    def __init__(self, page_url: str) -> None:
        self.page_url = page_url
        self.origin = origin_of(page_url)
        self.served_html: str = ""
        self.page_status: int | None = None
        self.page_loads = 0
        self.values: dict[str, Any] = {}
        self._kept: dict[str, Any] = {}
        self.refresh_lock = asyncio.Lock()
        self._open_lock = asyncio.Lock()

    def keep(self, name: str, make: Callable[[], T]) -> T:
        """A value that lives as long as the session, across page reloads (like localStorage)."""
        if name not in self._kept:
            self._kept[name] = make()
        return self._kept[name]

    def check_page_status(self, status: int) -> None:
        """An error page where the chat page should be is an :class:`HTTPError` showing what it says."""
        if status >= 400:
            raise HTTPError(
                f"The chat page {self.page_url} answered HTTP {status}: {excerpt(self.served_html, 160)}",
                status=status,
                url=self.page_url,
                body=excerpt(self.served_html),
            )


class SiteSession(SiteState):
    """A browser context plus the chat page of one site, loaded once and reused."""

    def __init__(
        self,
        runtime: BrowserRuntime,
        page_url: str,
        *,
        proxy: str | None = None,
        clone_of: SiteSession | None = None,
        use_profile: bool = True,
    ) -> None:
        super().__init__(page_url)
        self.runtime = runtime
        self.use_profile = use_profile
        self.clone_of = clone_of
        self.proxy = proxy
        self.context: Any = None
        self.page: Any = None
        self.user_agent: str | None = None
        self.profile_used: str | None = None
        self.challenges: list[Challenge] = []
        self.trace_path: str | None = None

    @property
    def recorder(self) -> FlowRecorder | None:
        """The recorder attached to this site on the runtime, if any."""
        return self.runtime.recorders.get(self.origin)

    async def ensure_context(self) -> Any:
        """The session's browser context, created on first use."""
        await self._ensure_context()
        return self.context

    async def _ensure_context(self) -> None:
        if self.context is not None:
            return
        browser = await self.runtime.browser()
        options: dict[str, Any] = {"proxy": proxy_settings(self.proxy), "user_agent": self.runtime.user_agent}
        if self.clone_of is not None and self.clone_of.context is not None:
            # Another lane of the same site: start with its cookies (session, anti-bot clearance).
            options["storage_state"] = await self.clone_of.context.storage_state()
            options["user_agent"] = self.clone_of.user_agent or options["user_agent"]
        elif self.use_profile and self.runtime.use_profiles and (profile := load_profile(self.origin)) is not None:
            # A person passed this site's check before: same cookies, same User-Agent, or they do not hold.
            log.info("using the saved profile for %s (%d cookies)", profile.site, len(profile.cookie_names))
            options["storage_state"] = profile.storage_state
            options["user_agent"] = profile.user_agent
            self.profile_used = str(profile.path)
        self.user_agent = options["user_agent"]
        self.context = await browser.new_context(**options)
        if self.runtime.allowed_hosts is not None:
            await self.context.route("**/*", self._only_allowed_hosts)
        if self.trace_path:
            await self.context.tracing.start(screenshots=True, snapshots=True, sources=True)

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
        from playwright.async_api import Error as PlaywrightError

        try:
            await self.context.tracing.stop_chunk(path=self.trace_path)
            await self.context.tracing.start_chunk()
        except PlaywrightError as exc:
            log.warning("could not write the trace %s: %s", self.trace_path, exc)
            return None
        log.info("trace written to %s (open it with `playwright show-trace %s`)", self.trace_path, self.trace_path)
        return self.trace_path

    async def _only_allowed_hosts(self, route: Any) -> None:
        host = urlsplit(route.request.url).hostname or ""
        allowed = self.runtime.allowed_hosts
        if allowed is None or host in allowed or route.request.url.startswith(("data:", "blob:", "about:")):
            await route.continue_()
        else:
            log.warning("blocked a request to %s (only %s allowed)", host, ", ".join(sorted(allowed)))
            await route.abort("blockedbyclient")

    async def add_cookies(self, cookies: Mapping[str, str] | None) -> None:
        """Put caller-given cookies into the context, for this site only."""
        if not cookies:
            return
        await self._ensure_context()
        await self.context.add_cookies(
            [{"name": str(k), "value": str(v), "url": self.origin + "/"} for k, v in cookies.items()]
        )

    async def open(self, timeout: float) -> None:
        """Load the chat page unless it is already loaded."""
        async with self._open_lock:
            if self.page is not None and not self.page.is_closed():
                return
            await self._ensure_context()
            self.page = await self.context.new_page()
            await self._load(timeout)

    async def reload(self, timeout: float) -> None:
        """Load the page again, for fresh nonces."""
        async with self._open_lock:
            if self.page is None or self.page.is_closed():
                await self._ensure_context()
                self.page = await self.context.new_page()
            await self._load(timeout)

    async def _load(self, timeout: float) -> None:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        started = time.perf_counter()
        log.info("loading %s", self.page_url)
        try:
            response = await self.page.goto(self.page_url, wait_until="domcontentloaded", timeout=timeout * 1000)
        except PlaywrightTimeout:
            raise ScraperTimeoutError(
                f"{self.page_url} did not load within {timeout:g} s. Check that the site is up, or raise timeout=."
            ) from None
        except PlaywrightError as exc:
            first = str(exc).strip().splitlines()[0]
            raise TransportError(
                f"Could not load {self.page_url}: {first}. Check the URL, the network or proxy."
            ) from exc
        self.page_loads += 1
        self.values.clear()
        if response is None:  # same-document navigation; keep what we had
            return
        try:
            html = await response.text()
        except PlaywrightError:
            html = await self.page.content()
        challenge = detect(response.url, response.headers, html)
        if challenge is not None:
            response, html = await self._pass_challenge(challenge, timeout)
        self.page_status = response.status
        self.served_html = html
        if self.recorder is not None:
            headers = [(h["name"], h["value"]) for h in await response.headers_array()]
            self.recorder.page(response.url, response.status, headers, self.served_html)
        log.info(
            "loaded %s: HTTP %s, %d bytes in %.0f ms",
            self.page_url,
            response.status,
            len(self.served_html),
            (time.perf_counter() - started) * 1000,
        )
        self.check_page_status(response.status)

    async def _pass_challenge(self, challenge: Challenge, timeout: float) -> tuple[Any, str]:
        """Wait for an anti-bot page to clear by itself (its script reloads the page with a clearance).

        Returns the navigation response and HTML of the page behind it; raises :class:`ChallengeError`
        for a block page, or when the page has not cleared within ``timeout`` seconds.
        """
        self.challenges.append(challenge)
        if challenge.kind == "block":
            raise ChallengeError(
                f"{challenge.vendor} blocks this browser at {challenge.url}; waiting or solving will not help. "
                "Try another network, or a proxy (proxy=... / --proxy).",
                vendor=challenge.vendor,
                kind=challenge.kind,
                url=challenge.url,
            )
        log.info("%s %s page at %s; waiting for it to clear", challenge.vendor, challenge.kind, challenge.url)
        started = time.perf_counter()
        arrived: asyncio.Queue[Any] = asyncio.Queue()

        def on_response(response: Any) -> None:
            if response.frame == self.page.main_frame and response.request.is_navigation_request():
                arrived.put_nowait(response)

        self.page.on("response", on_response)
        try:
            while (remaining := timeout - (time.perf_counter() - started)) > 0:
                try:
                    response = await asyncio.wait_for(arrived.get(), min(remaining, 5.0))
                except asyncio.TimeoutError:
                    log.info("still waiting for the %s check (%.0f s)", challenge.vendor, time.perf_counter() - started)
                    continue
                try:
                    html = await response.text()
                except Exception:  # navigated on before the body was read: wait for the next one
                    continue
                if detect(response.url, response.headers, html) is None:
                    with contextlib.suppress(Exception):
                        await self.page.wait_for_load_state("domcontentloaded", timeout=max(remaining, 1) * 1000)
                    challenge.cleared = True
                    challenge.seconds = time.perf_counter() - started
                    log.info("the %s check cleared after %.1f s", challenge.vendor, challenge.seconds)
                    return response, html
        finally:
            self.page.remove_listener("response", on_response)
        person = " It needs a person." if challenge.kind == "interactive" else ""
        raise ChallengeError(
            f"The {challenge.vendor} check at {challenge.url} did not clear within {timeout:g} s.{person} "
            f"Run `scraper solve {self.origin} --headed`, pass the check in the window, then retry "
            "(later runs use the saved profile).",
            vendor=challenge.vendor,
            kind=challenge.kind,
            url=challenge.url,
        )

    async def fetch(self, request: HTTPRequest, timeout: float) -> StreamingResponse:
        """Send a request from the page (see :mod:`scraper._transport`)."""
        return await open_stream(self.page, request, timeout=timeout, recorder=self.recorder)

    async def evaluate(self, expression: str, arg: Any = None) -> Any:
        return await self.page.evaluate(expression, arg)

    async def close(self) -> None:
        if self.context is not None:
            with contextlib.suppress(Exception):
                await self.context.close()
        self.context = self.page = None


# Chromium opens at most six HTTP/1.1 connections per host in one browser context: more chats than
# that through one page would wait in waves. A site therefore gets several lanes (context + page).
PER_PAGE = 6
DEFAULT_MAX_PAGES = int(os.environ.get("SCRAPER_MAX_PAGES", "8"))


class SitePool:
    """The lanes of one site: up to ``max_pages`` contexts with a loaded page each.

    A chat takes a slot in the least busy lane; a new lane opens only when every lane has
    ``PER_PAGE`` chats in flight; beyond ``max_pages`` lanes, chats wait in arrival order. A slot is
    given back when its chat ends, fails or is cancelled.
    """

    def __init__(self, runtime: BrowserRuntime, page_url: str, *, proxy: str | None, max_pages: int) -> None:
        self.runtime = runtime
        self.page_url = page_url
        self.proxy = proxy
        self.max_pages = max(1, max_pages)
        self.lanes: list[SiteSession] = []
        self.in_flight: dict[int, int] = {}
        self._waiters: deque[asyncio.Future[SiteSession]] = deque()

    @property
    def primary(self) -> SiteSession:
        """The first lane, created on demand: the one a single chat at a time always uses."""
        if not self.lanes:
            self._open_lane()
        return self.lanes[0]

    def _open_lane(self) -> SiteSession:
        clone_of = self.lanes[0] if self.lanes else None
        lane = SiteSession(self.runtime, self.page_url, proxy=self.proxy, clone_of=clone_of)
        self.lanes.append(lane)
        self.in_flight[id(lane)] = 0
        if clone_of is not None:
            log.info("opening lane %d for %s (%d chats in flight)", len(self.lanes), self.page_url, self.busy)
        return lane

    @property
    def busy(self) -> int:
        return sum(self.in_flight.values())

    def _free_lane(self) -> SiteSession | None:
        lanes = [lane for lane in self.lanes if self.in_flight[id(lane)] < PER_PAGE]
        return min(lanes, key=lambda lane: self.in_flight[id(lane)]) if lanes else None

    async def acquire(self) -> SiteSession:
        """A lane with a free slot; waits (first come, first served) when all are full."""
        lane = self._free_lane() if not self._waiters else None
        if lane is None and len(self.lanes) < self.max_pages and not self._waiters:
            lane = self._open_lane()
        if lane is None:
            waiter: asyncio.Future[SiteSession] = asyncio.get_running_loop().create_future()
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
        return lane

    def release(self, lane: SiteSession) -> None:
        """Give a slot back, straight to the longest-waiting chat if there is one."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(lane)  # the slot passes on: in_flight stays as it is
                return
        self.in_flight[id(lane)] -= 1

    async def add_cookies(self, cookies: Mapping[str, str] | None) -> None:
        for lane in self.lanes:
            await lane.add_cookies(cookies)

    async def close(self) -> None:
        for lane in self.lanes:
            await lane.close()
        self.lanes.clear()
        self.in_flight.clear()


def get_pool(
    runtime: BrowserRuntime, page_url: str, *, proxy: str | None = None, max_pages: int | None = None
) -> SitePool:
    """The runtime's pool of lanes for this page (and proxy), created on first use."""
    key = (page_url, proxy)
    pool = runtime.sessions.get(key)
    if pool is None:
        pool = runtime.sessions[key] = SitePool(
            runtime, page_url, proxy=proxy, max_pages=max_pages or DEFAULT_MAX_PAGES
        )
    elif max_pages:
        pool.max_pages = max_pages
    return pool


def get_session(runtime: BrowserRuntime, page_url: str, *, proxy: str | None = None) -> SiteSession:
    """The site's first lane (what one chat at a time uses), created on first use."""
    return get_pool(runtime, page_url, proxy=proxy).primary
