"""One warm site: a browser context and the loaded chat page.

The page stays open between chats, so a second chat costs one request, not a page load. The HTML the
server sent is kept, because some chat scripts (AI Engine) delete the attributes we need from the
live DOM once they start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from ._browser import BrowserRuntime
from ._errors import HTTPError, ScraperTimeoutError, TransportError, excerpt
from ._recording import FlowRecorder
from ._transport import HTTPRequest, StreamingResponse, open_stream

__all__ = ["SiteSession", "get_session", "proxy_settings"]

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


class SiteSession:
    """A browser context plus the chat page of one site, loaded once and reused."""

    def __init__(self, runtime: BrowserRuntime, page_url: str, *, proxy: str | None = None) -> None:
        self.runtime = runtime
        self.page_url = page_url
        self.origin = origin_of(page_url)
        self.proxy = proxy
        self.context: Any = None
        self.page: Any = None
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

    @property
    def recorder(self) -> FlowRecorder | None:
        """The recorder attached to this site on the runtime, if any."""
        return self.runtime.recorders.get(self.origin)

    async def _ensure_context(self) -> None:
        if self.context is not None:
            return
        browser = await self.runtime.browser()
        self.context = await browser.new_context(proxy=proxy_settings(self.proxy))  # type: ignore[arg-type]
        if self.runtime.allowed_hosts is not None:
            await self.context.route("**/*", self._only_allowed_hosts)

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
        self.page_status = response.status
        try:
            self.served_html = await response.text()
        except PlaywrightError:
            self.served_html = await self.page.content()
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
        if response.status >= 400:
            raise HTTPError(
                f"The chat page {self.page_url} answered HTTP {response.status}: {excerpt(self.served_html, 160)}",
                status=response.status,
                url=self.page_url,
                body=excerpt(self.served_html),
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


def get_session(runtime: BrowserRuntime, page_url: str, *, proxy: str | None = None) -> SiteSession:
    """The runtime's warm session for this page (and proxy), created on first use."""
    key = (page_url, proxy)
    session = runtime.sessions.get(key)
    if session is None:
        session = runtime.sessions[key] = SiteSession(runtime, page_url, proxy=proxy)
    return session
