"""The same chat protocols without a browser: the floor the browser client is measured against.

Only the transport differs from the browser client. The chat page and the requests go through
aiohttp; everything else is the package's own code, unchanged: :func:`scraper._plugin.run_chat`
drives the flow (values, request, one retry on a rejected nonce), the plugins read their values
and build their requests, and the body goes through the same :class:`~scraper._sse.SSEDecoder` and
reply readers. There is no DOM here, so the plugins read the HTML as served, the fallback they use
when a page script has re-rendered the chat box.

Needs aiohttp: ``pip install 'scraper[bench]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ._chat import AIEngineChat, AIPowerChat, WordPressChat
from ._errors import ScraperTimeoutError, StreamError, TransportError
from ._plugin import ChatPlugin, run_chat
from ._session import SiteState
from ._transport import HTTPRequest, StreamingResponse

if TYPE_CHECKING:
    import aiohttp

__all__ = ["CHAT_CLASSES", "DirectChat", "DirectResponse", "DirectSession"]

CHAT_CLASSES: dict[str, type[WordPressChat]] = {"aipower": AIPowerChat, "aiengine": AIEngineChat}
INSTALL_HINT = "The direct client needs aiohttp: pip install 'scraper[bench]' (or pip install aiohttp)."


def _aiohttp() -> Any:
    """aiohttp, imported on first use: it is an optional extra, not a dependency of the browser client."""
    try:
        import aiohttp
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return aiohttp


class DirectResponse(StreamingResponse):
    """A response read by aiohttp, behind the browser transport's interface (``aread`` and all)."""

    def __init__(self, response: aiohttp.ClientResponse, request: HTTPRequest, idle_timeout: float) -> None:
        head = {
            "status": response.status,
            "statusText": response.reason or "",
            "url": str(response.url),
            "headers": dict(response.headers),
        }
        super().__init__(None, 0, head, request, idle_timeout)
        self._response = response

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Everything that arrived since the last step, like the in-page pull; raises on a broken stream."""
        aiohttp = _aiohttp()
        content = self._response.content
        while not self._done:
            try:
                chunk = content.read_nowait()  # already buffered: no timer needed
                if not chunk and not content.at_eof():
                    chunk = await asyncio.wait_for(content.readany(), self.idle_timeout)
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


class DirectSession(SiteState):
    """What :func:`run_chat` and the plugins use of a browser session, over an aiohttp client.

    It keeps the page as served, the plugins' cached values and what they keep across reloads; the
    client's cookie jar plays the browser context (AI Engine's HttpOnly session cookie lives there).
    """

    def __init__(self, client: aiohttp.ClientSession, page_url: str) -> None:
        super().__init__(page_url)
        self.client = client
        self._loaded = False

    async def open(self, timeout: float) -> None:
        """GET the chat page unless it was fetched already."""
        async with self._open_lock:
            if not self._loaded:
                await self._load(timeout)

    async def reload(self, timeout: float) -> None:
        """GET the page again, for fresh nonces."""
        async with self._open_lock:
            await self._load(timeout)

    async def _load(self, timeout: float) -> None:
        aiohttp = _aiohttp()
        try:
            async with self.client.get(self.page_url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                self.page_status = response.status
                self.served_html = await response.text(errors="replace")
        except asyncio.TimeoutError:
            raise ScraperTimeoutError(
                f"{self.page_url} did not load within {timeout:g} s. Check that the site is up, or raise timeout=."
            ) from None
        except aiohttp.ClientError as exc:
            raise TransportError(
                f"Could not load {self.page_url}: {exc}. Check the URL, the network or proxy."
            ) from exc
        self.page_loads += 1
        self.values.clear()
        self.check_page_status(response.status)
        self._loaded = True

    async def evaluate(self, expression: str, arg: Any = None) -> Any:
        """No DOM without a browser: None sends the plugins to the HTML as served."""
        return None

    async def fetch(self, request: HTTPRequest, timeout: float) -> DirectResponse:
        """Send ``request`` as the page's script would (Origin, Referer, cookies); return at the headers."""
        aiohttp = _aiohttp()
        headers = {"Origin": self.origin, "Referer": self.page_url, **request.headers}
        body = request.body.encode("utf-8") if request.body is not None else None

        async def send() -> aiohttp.ClientResponse:
            return await self.client.request(request.method, request.url, headers=headers, data=body)

        try:
            response = await asyncio.wait_for(send(), timeout)
        except asyncio.TimeoutError:
            raise ScraperTimeoutError(
                f"{request.url} sent no response headers within {timeout:g} s. Try again, or raise timeout=."
            ) from None
        except aiohttp.ClientError as exc:
            raise TransportError(
                f"Could not reach {request.url}: {exc}. Check the URL and that the site is up."
            ) from exc
        return DirectResponse(response, request, idle_timeout=timeout)


class DirectChat:
    """One site's chat over aiohttp, warm between chats (one client, the page fetched once).

    ``DirectChat("aipower", url)`` or ``DirectChat("aiengine", url)``; ``stream(prompt)`` yields the
    reply's text as it arrives; ``aclose()`` (or ``async with``) closes the client.
    """

    def __init__(self, plugin: str, url: str, *, chat_path: str | None = None, timeout: float = 120) -> None:
        if plugin not in CHAT_CLASSES:
            raise ValueError(f"plugin must be one of {', '.join(CHAT_CLASSES)}, not {plugin!r}")
        _aiohttp()
        chat = CHAT_CLASSES[plugin](url, chat_path=chat_path)
        self.plugin: ChatPlugin = chat.plugin()
        self.page_url: str = chat.page_url()
        self.timeout = float(timeout)
        self._client: aiohttp.ClientSession | None = None
        self._session: DirectSession | None = None

    def __repr__(self) -> str:
        return f"DirectChat({self.plugin.name!r}, {self.page_url!r})"

    def _ensure(self) -> DirectSession:
        if self._session is None:
            aiohttp = _aiohttp()
            # unsafe=True keeps cookies of IP-address hosts too (the replica sites run on 127.0.0.1).
            self._client = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
            self._session = DirectSession(self._client, self.page_url)
        return self._session

    @property
    def session(self) -> DirectSession | None:
        """The warm session (page as served, values, cookies), once the first chat or ``open`` made it."""
        return self._session

    async def open(self) -> DirectSession:
        """Fetch the chat page now rather than on the first chat."""
        session = self._ensure()
        await session.open(self.timeout)
        return session

    async def stream(self, prompt: str) -> AsyncIterator[str]:
        """The reply to ``prompt`` as text chunks; raises a ScraperError rather than end a partial reply."""
        session: Any = self._ensure()  # duck-typed as the browser's SiteSession
        async for text in run_chat(self.plugin, session, prompt, timeout=self.timeout):
            yield text

    async def collect(self, prompt: str) -> str:
        """The whole reply to ``prompt``."""
        return "".join([text async for text in self.stream(prompt)])

    async def aclose(self) -> None:
        """Close the client and its connections; the next chat starts cold."""
        client, self._client, self._session = self._client, None, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()

    async def __aenter__(self) -> DirectChat:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
