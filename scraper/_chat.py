"""Chats with any WordPress site that runs a supported plugin.

``AIPowerChat("https://site")`` and ``AIEngineChat("https://site")`` talk to any site; the seed
providers are presets of them. ``create_async_generator`` works on the class (its ``url``) and on
an instance (the instance's ``url``), and returns a stream that can be iterated directly or awaited
first, as both seed examples do.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from typing import Any, ClassVar, Generic, TypeVar

from ._aiengine import AIEnginePlugin
from ._aipower import AIPowerPlugin
from ._base import AsyncGeneratorProvider, ProviderModelMixin
from ._browser import BrowserOptions, BrowserRuntime, get_runtime
from ._debug import debug_folder, save_artifacts
from ._errors import ChallengeError, ScraperError
from ._plugin import ChatPlugin, run_chat
from ._prompt import Messages, format_prompt
from ._session import SiteSession, get_pool, get_session

__all__ = ["AIEngineChat", "AIPowerChat", "ChatStream", "WordPressChat"]

log = logging.getLogger("scraper.chat")
T = TypeVar("T")
_BROWSER_KEYS = ("headless", "slow_mo", "executable_path", "args", "ws_endpoint", "cdp_endpoint")


class hybridmethod(Generic[T]):
    """A method that receives the class when called on the class, the instance when called on one."""

    def __init__(self, func: Callable[..., T]) -> None:
        self.func = func
        functools.update_wrapper(self, func)  # type: ignore[arg-type]

    def __get__(self, obj: Any, owner: type) -> Callable[..., T]:
        return functools.partial(self.func, owner if obj is None else obj)


class ChatStream:
    """The reply as an async iterator of text chunks; also awaitable, and closable.

    Closing it (``aclose``, ``async with``, or cancelling the task that iterates it) aborts the
    request in the page.
    """

    def __init__(self, chunks: AsyncIterator[str]) -> None:
        self._chunks = chunks
        self.parts: list[str] = []

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> str:
        chunk = await self._chunks.__anext__()
        self.parts.append(chunk)
        return chunk

    def __await__(self) -> Generator[Any, None, ChatStream]:
        async def itself() -> ChatStream:
            return self

        return itself().__await__()

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        closer = getattr(self._chunks, "aclose", None)
        if closer is not None:
            await closer()

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self.parts)

    async def collect(self) -> str:
        """Read the whole reply and return it."""
        async for _ in self:
            pass
        return self.text


class WordPressChat(AsyncGeneratorProvider, ProviderModelMixin):
    """A chat box on a WordPress site, driven through a real browser."""

    working = True
    plugin_class: ClassVar[type[ChatPlugin]]
    chat_path: ClassVar[str] = "/"
    url_env: ClassVar[str | None] = None
    preset_url: ClassVar[str | None] = None
    default_model = "default"
    models: ClassVar[list[str]] = []

    def __init__(self, url: str, *, chat_path: str | None = None, browser: BrowserOptions | None = None) -> None:
        self.url = url.rstrip("/")  # type: ignore[misc]
        if chat_path is not None:
            self.chat_path = chat_path  # type: ignore[misc]
        self.browser_options: BrowserOptions = browser or {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- where ---------------------------------------------------------------------------------
    @hybridmethod
    def site_url(target: Any) -> str:
        """The site's base URL: the ``url`` attribute, or the preset's environment override."""
        url = str(target.url).rstrip("/")
        if target.url_env and url == (target.preset_url or "").rstrip("/"):
            override = os.environ.get(target.url_env)
            if override:
                return override.rstrip("/")
        return url

    @hybridmethod
    def page_url(target: Any) -> str:
        """The chat page: the site URL plus ``chat_path``."""
        path = target.chat_path or "/"
        return target.site_url() + (path if path.startswith("/") else "/" + path)

    @classmethod
    def plugin(cls) -> ChatPlugin:
        return cls.plugin_class()

    # -- the seed entry point ------------------------------------------------------------------
    @hybridmethod
    def create_async_generator(
        target: Any,
        model: str,
        messages: Messages,
        proxy: str | None = None,
        timeout: int | float = 120,
        cookies: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> ChatStream:
        """Stream the reply to ``messages`` as text chunks.

        ``proxy`` and ``cookies`` go into the browser context; ``timeout`` bounds each step (page
        load, headers, silence between chunks). Browser options (``headless``, ``slow_mo``,
        ``ws_endpoint``, ``cdp_endpoint``, ``executable_path``, ``args``) may be passed as keywords,
        and ``max_pages`` bounds how many pages (lanes of six chats each) one site may use at once.
        ``trace="trace.zip"`` writes a Playwright trace of the chat; on failure a screenshot and the
        page HTML are kept in ``debug_dir`` (default: the user's cache) and named in the error.
        """
        target.get_model(model)
        prompt = format_prompt(messages)
        options: BrowserOptions = dict(getattr(target, "browser_options", None) or {})  # type: ignore[assignment]
        options.update({k: kwargs[k] for k in _BROWSER_KEYS if k in kwargs})  # type: ignore[typeddict-item]
        runtime = get_runtime(options)
        page_url = target.page_url()
        plugin = target.plugin()

        max_pages = kwargs.get("max_pages")
        trace = str(kwargs["trace"]) if kwargs.get("trace") else None
        debug_dir = kwargs.get("debug_dir")

        async def flow() -> AsyncIterator[str]:
            pool = get_pool(runtime, page_url, proxy=proxy, max_pages=max_pages)
            session = await pool.acquire()
            try:
                if trace:
                    await session.trace_to(trace)
                await session.add_cookies(cookies)
                async for text in run_chat(plugin, session, prompt, timeout=float(timeout)):
                    yield text
                target._remember(session)
                await session.save_trace()
            except ScraperError as exc:
                paths = await save_artifacts(session, type(exc).__name__, debug_folder(debug_dir))
                if isinstance(exc, ChallengeError):
                    exc.screenshot = next((p for p in paths if p.endswith(".png")), None)
                    exc.html = next((p for p in paths if p.endswith(".html")), None)
                exc.add_artifacts(paths)
                raise
            finally:
                pool.release(session)

        return ChatStream(runtime.iterate(flow()))

    @hybridmethod
    def _remember(target: Any, session: SiteSession) -> None:
        """Hook for presets that expose the values they used (the seed's ``_post_id``/``_nonce``)."""

    @hybridmethod
    async def session(target: Any, proxy: str | None = None, timeout: float = 120) -> SiteSession:
        """The warm session for this site (page loaded), for inspection."""
        runtime: BrowserRuntime = get_runtime(getattr(target, "browser_options", None))
        page_url = target.page_url()

        async def load() -> SiteSession:
            session = get_session(runtime, page_url, proxy=proxy)
            await session.open(timeout)
            return session

        return await runtime.call(load())


class AIPowerChat(WordPressChat):
    """Any site whose chat box is the AI Power plugin (``admin-ajax.php``, SSE ``data:`` lines)."""

    plugin_class = AIPowerPlugin


class AIEngineChat(WordPressChat):
    """Any site whose chatbot is the AI Engine plugin (REST ``mwai``, ``live``/``end`` events)."""

    plugin_class = AIEnginePlugin
    api_endpoint: ClassVar[str] = "/wp-json/mwai-ui/v1/chats/submit"

    @classmethod
    def plugin(cls) -> ChatPlugin:
        return AIEnginePlugin(api_endpoint=cls.api_endpoint)

    @hybridmethod
    async def get_nonce(target: Any, headers: Mapping[str, str] | None = None, timeout: float = 120) -> str:
        """The site's REST nonce (from the page, or from ``start_session`` for guests)."""
        session = await target.session(timeout=timeout)
        values = await session.runtime.call(target.plugin().values(session, timeout))
        return str(values["nonce"])
