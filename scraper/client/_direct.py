"""The same chat protocols without a browser: the floor the browser client is measured against, and
a way to run the chat flow in tests on machines with no Chromium.

Only the transport differs from the browser client. The chat page and the requests go through
aiohttp; everything else is the package's own code, unchanged: :func:`scraper.plugins.run_chat`
drives the flow, the plugins find their bots, read their values and build their requests, and the
body goes through the same parser and readers. There is no DOM here, so only the HTML as served is
read (a chat box a script builds is not seen), and an anti-bot check cannot be passed.

Needs aiohttp: ``pip install 'wpchat-scraper[direct]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .._aio import closing, within
from .._extras import import_extra
from ..errors import HTTPError, ScraperTimeoutError, StreamError, TransportError
from ..plugins import (
    Detection,
    Finish,
    TextDelta,
    ValueCache,
    check_page,
    choose_bot,
    find_bots,
    get_plugin,
    plugins_named,
    run_chat,
)
from ..wire import HTTPRequest, Response

if TYPE_CHECKING:
    import aiohttp

__all__ = ["DirectChat", "DirectResponse", "DirectSite"]

T = TypeVar("T")


def _aiohttp() -> Any:
    """aiohttp, imported on first use: it is an optional extra, not a dependency of the browser client."""
    return import_extra("aiohttp", "direct")


class DirectResponse(Response):
    """A response read by aiohttp."""

    def __init__(self, response: aiohttp.ClientResponse, idle_timeout: float) -> None:
        self._response = response
        self.status = response.status
        self.url = str(response.url)
        self.headers = {k.lower(): v for k, v in response.headers.items()}
        self.idle_timeout = idle_timeout
        self.received = 0
        self._done = False
        self._closed = False

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Everything that arrived since the last step, like the in-page pull; raises on a broken stream."""
        aiohttp = _aiohttp()
        content = self._response.content
        while not self._done:
            try:
                chunk = content.read_nowait()  # already buffered: no timer needed
                if not chunk and not content.at_eof():
                    chunk = await within(content.readany(), self.idle_timeout)
            except asyncio.TimeoutError:
                raise ScraperTimeoutError(
                    f"No data from {self.url} for {self.idle_timeout:g} s; the reply stalled. "
                    "Try again, or raise timeout=."
                ) from None
            except aiohttp.ClientError as exc:
                self._done = True
                raise StreamError(f"The connection to {self.url} broke after {self.received} bytes: {exc}.") from exc
            if not chunk:
                self._done = True
                return
            self.received += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        """Hand a finished connection back to the pool; drop one still streaming (the site sees the abort)."""
        if self._closed:
            return
        self._closed = True
        if self._done:
            self._response.release()
        else:
            self._response.close()


class DirectSite:
    """A ``ChatSite`` over an aiohttp client: the page as served, values, cookies in the client's jar."""

    def __init__(self, client: aiohttp.ClientSession, page_url: str) -> None:
        from ..browser import origin_of

        self.client = client
        self.page_url = page_url
        self.origin = origin_of(page_url)
        self.served_html = ""
        self.page_loads = 0
        self.values = ValueCache()
        self.detections: list[Detection] | None = None
        self._kept: dict[str, Any] = {}
        self._loaded = False
        self._lock = asyncio.Lock()

    def keep(self, name: str, make: Callable[[], T]) -> T:
        if name not in self._kept:
            self._kept[name] = make()
        kept: T = self._kept[name]
        return kept

    async def live_html(self, wait_for: str | None, timeout: float, *, until_quiet: float | None = None) -> str | None:
        return None  # no DOM without a browser

    async def ready(self, timeout: float) -> None:
        """GET the chat page unless it was fetched already."""
        async with self._lock:
            if self._loaded:
                return
            response = await self.send(HTTPRequest("GET", self.page_url, {"Accept": "text/html"}), timeout)
            try:
                html = (await response.aread(32 << 20)).decode("utf-8", "replace")
            finally:
                await response.aclose()
            self.page_loads += 1
            self.values.clear()
            self.detections = None
            check_page(self.page_url, response.status, html)
            self.served_html = html
            self._loaded = True

    def spoil(self) -> None:
        self._loaded = False

    async def send(self, request: HTTPRequest, timeout: float) -> DirectResponse:
        """Send ``request`` as the page's script would (Origin, Referer, cookies); return at the headers."""
        aiohttp = _aiohttp()
        headers = {"Origin": self.origin, "Referer": self.page_url, **request.headers}
        data: Any = request.body.encode("utf-8") if request.body is not None else None
        if request.form is not None:
            data = aiohttp.FormData(quote_fields=False)
            for name, value in request.form:
                data.add_field(name, value)
            data._boundary = f"----WebKitFormBoundary{secrets.token_urlsafe(12)[:16]}"  # as a browser names it
        try:
            response = await within(
                self.client.request(request.method, request.url, headers=headers, data=data), timeout
            )
        except asyncio.TimeoutError:
            raise ScraperTimeoutError(
                f"{request.url} sent no response headers within {timeout:g} s. Try again, or raise timeout=."
            ) from None
        except aiohttp.ClientError as exc:
            raise TransportError(
                f"Could not reach {request.url}: {exc}. Check the URL and that the site is up."
            ) from exc
        return DirectResponse(response, idle_timeout=timeout)


class DirectChat:
    """One site's chat over aiohttp, warm between chats (one client, the page fetched once).

    ``DirectChat(url)`` detects the plugin like :class:`~scraper.WordPressChat`; ``plugins=`` and
    ``bot=`` narrow it. ``stream(prompt)`` yields the reply's text as it arrives; ``aclose()`` (or
    ``async with``) closes the client.
    """

    def __init__(
        self,
        url: str,
        *,
        plugins: tuple[str, ...] | None = None,
        bot: str | int | None = None,
        timeout: float = 120,
    ) -> None:
        _aiohttp()
        self.page_url = url
        self.plugins = plugins_named(plugins)
        self.bot = bot
        self.timeout = float(timeout)
        self._client: aiohttp.ClientSession | None = None
        self._site: DirectSite | None = None

    def __repr__(self) -> str:
        return f"DirectChat({self.page_url!r})"

    def _ensure(self) -> DirectSite:
        if self._site is None:
            aiohttp = _aiohttp()
            # unsafe=True keeps cookies of IP-address hosts too (the replica sites run on 127.0.0.1).
            self._client = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
            self._site = DirectSite(self._client, self.page_url)
        return self._site

    @property
    def site(self) -> DirectSite | None:
        """The warm site (page as served, values, cookies), once the first chat or ``open`` made it."""
        return self._site

    async def open(self) -> DirectSite:
        """Fetch the chat page now rather than on the first chat."""
        site = self._ensure()
        await site.ready(self.timeout)
        return site

    async def events(self, prompt: str) -> AsyncIterator[TextDelta | Finish]:
        """The reply's events; raises a ScraperError rather than end a partial reply."""
        site = await self.open()
        try:
            bot = choose_bot(await find_bots(site, self.plugins, self.timeout), self.bot, site.page_url, self.plugins)
            async with closing(run_chat(get_plugin(bot.plugin), site, bot, prompt, timeout=self.timeout)) as events:
                async for event in events:
                    yield event
        except (HTTPError, TransportError):
            site.spoil()
            raise

    async def stream(self, prompt: str) -> AsyncIterator[str]:
        """The reply to ``prompt`` as text chunks."""
        async for event in self.events(prompt):
            if isinstance(event, TextDelta):
                yield event.text

    async def collect(self, prompt: str) -> str:
        """The whole reply to ``prompt``."""
        return "".join([text async for text in self.stream(prompt)])

    async def aclose(self) -> None:
        """Close the client and its connections; the next chat starts cold."""
        client, self._client, self._site = self._client, None, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()

    async def __aenter__(self) -> DirectChat:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
