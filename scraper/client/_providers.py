"""Chats with any WordPress site that runs a supported plugin, in the gpt4free provider style.

``WordPressChat("https://site/chat/")`` detects the plugin and its bots; ``AIPowerChat`` and
``AIEngineChat`` only consider one plugin family; the seed providers are presets of them.
``create_async_generator`` works on the class (its ``url``) and on an instance (the instance's), and
returns a stream that can be iterated directly or awaited first, as both seed examples do.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

from ..browser import BrowserOptions, Lane, get_runtime
from ..plugins import Bot, Values, plugins_named
from ._base import AsyncGeneratorProvider, ProviderModelMixin
from ._catalog import chat_page, site_url
from ._prompt import Messages, format_prompt
from ._service import ChatService, ChatTarget
from ._stream import ChatStream

__all__ = ["BROWSER_KEYS", "AIEngineChat", "AIPowerChat", "WordPressChat", "hybridmethod"]

T = TypeVar("T")
BROWSER_KEYS = (
    "headless",
    "slow_mo",
    "executable_path",
    "args",
    "ws_endpoint",
    "cdp_endpoint",
    "driver",
    "virtual_display",
    "auto_click",
)
_CHAT_KEYS = ("trace", "debug_dir", "max_pages")


class hybridmethod(Generic[T]):
    """A method that receives the class when called on the class, the instance when called on one."""

    def __init__(self, func: Callable[..., T]) -> None:
        self.func = func
        functools.update_wrapper(self, func)  # type: ignore[arg-type]

    def __get__(self, obj: Any, owner: type) -> Callable[..., T]:
        return functools.partial(self.func, owner if obj is None else obj)


class WordPressChat(AsyncGeneratorProvider, ProviderModelMixin):
    """A chat box on a WordPress site, driven through a real browser; the plugin is detected.

    ``bot`` picks one of several bots on the page, by id or name (default: the first on the page).
    """

    working = True
    plugins: ClassVar[tuple[str, ...] | None] = None  # plugin names or families this class speaks
    chat_path: ClassVar[str] = "/"
    fallback_paths: ClassVar[tuple[str, ...]] = ()  # where else to look when chat_path has no chat box
    url_env: ClassVar[str | None] = None
    preset_url: ClassVar[str | None] = None
    bot: ClassVar[str | int | None] = None
    default_model = "default"
    models: ClassVar[list[str]] = []  # none: any model is taken, and picks the bot of that name or model

    @classmethod
    def get_model(cls, model: str | None) -> str:
        """A preset's own models and aliases; on any other page every name is taken (it picks a bot)."""
        if not cls.models:
            return model or cls.default_model
        return super().get_model(model)

    def __init__(
        self,
        url: str,
        *,
        chat_path: str | None = None,
        bot: str | int | None = None,
        plugins: tuple[str, ...] | None = None,
        browser: BrowserOptions | None = None,
    ) -> None:
        self.url = url.rstrip("/")  # type: ignore[misc]
        if chat_path is not None:
            self.chat_path = chat_path  # type: ignore[misc]
            self.fallback_paths = ()  # type: ignore[misc]
        if bot is not None:
            self.bot = bot  # type: ignore[misc]
        if plugins is not None:
            plugins_named(plugins)  # refuses names no plugin has
            self.plugins = tuple(plugins)  # type: ignore[misc]
        self.browser_options: BrowserOptions = browser or {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- where ---------------------------------------------------------------------------------
    @hybridmethod
    def site_url(target: Any) -> str:
        """The site's base URL: the ``url`` attribute, or the preset's environment override."""
        return site_url(str(target.url), target.preset_url, target.url_env)

    @hybridmethod
    def page_url(target: Any) -> str:
        """The chat page: the site URL plus ``chat_path``."""
        return chat_page(target.site_url(), target.chat_path or "/")

    @hybridmethod
    def target(target: Any, bot: str | int | None = None, model: str | None = None) -> ChatTarget:
        """What the chat service needs to know of this provider: page, plugins, bot (or the model that
        picks one on a page that lists no models of its own)."""
        fallbacks = tuple(chat_page(target.site_url(), path) for path in target.fallback_paths)
        by_model = model if not target.models and model != target.default_model else None
        return ChatTarget(
            target.page_url(), target.plugins, bot if bot is not None else target.bot, fallbacks, by_model or None
        )

    @hybridmethod
    def service(target: Any, **kwargs: Any) -> ChatService:
        """The chat service of the browser this provider (and these keywords) ask for."""
        options: BrowserOptions = dict(getattr(target, "browser_options", None) or {})  # type: ignore[assignment]
        options.update({k: kwargs[k] for k in BROWSER_KEYS if k in kwargs})  # type: ignore[typeddict-item]
        return ChatService.for_options(options)

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
        load, headers, silence between chunks). ``bot=`` picks a bot by id or name. Browser options
        (``headless``, ``slow_mo``, ``ws_endpoint``, ``cdp_endpoint``, ``executable_path``, ``args``)
        may be passed as keywords, and ``max_pages`` bounds how many pages (lanes of six chats each)
        one site may use at once. ``trace="trace.zip"`` writes a Playwright trace of the chat; on
        failure a screenshot and the page HTML are kept in ``debug_dir`` and named in the error.
        """
        target.get_model(model)
        prompt = format_prompt(messages)
        options = {k: kwargs[k] for k in _CHAT_KEYS if kwargs.get(k) is not None}
        events = target.service(**kwargs).events(
            target.target(kwargs.get("bot"), model),
            prompt,
            timeout=float(timeout),
            proxy=proxy,
            cookies=cookies,
            on_values=target._remember,
            **options,
        )
        return ChatStream(events)

    @hybridmethod
    async def bots(target: Any, *, timeout: float = 120, proxy: str | None = None) -> list[Bot]:
        """The bots on the chat page (detected on first use): ``.id``, ``.name``, ``.plugin``."""
        return await target.service().bots(target.target(), timeout=timeout, proxy=proxy)

    @hybridmethod
    def _remember(target: Any, bot: Bot, values: Values) -> None:
        """Hook for presets that expose the values they used (the seed's ``_post_id``/``_nonce``)."""

    @hybridmethod
    async def session(target: Any, proxy: str | None = None, timeout: float = 120) -> Lane:
        """The warm lane of this site (page loaded), for inspection."""
        runtime = get_runtime(getattr(target, "browser_options", None))

        async def load() -> Lane:
            lane = runtime.sites.pool(target.page_url(), proxy=proxy).primary
            await lane.ready(timeout)
            return lane

        return await runtime.call(load())

    @hybridmethod
    async def values(target: Any, timeout: float = 120) -> Values:
        """The values a chat with the chosen bot would use (nonce, ids), read from the warm page."""
        return await target.service().values(target.target(), timeout=timeout)


class AIPowerChat(WordPressChat):
    """Any site whose chat box is the AI Power plugin (``admin-ajax.php``), whichever generation."""

    plugins = ("aipower",)


class AIEngineChat(WordPressChat):
    """Any site whose chatbot is the AI Engine plugin (REST ``mwai``, ``live``/``end`` events)."""

    plugins = ("aiengine",)
    api_endpoint: ClassVar[str] = "/wp-json/mwai-ui/v1/chats/submit"

    @hybridmethod
    async def get_nonce(target: Any, headers: Mapping[str, str] | None = None, timeout: float = 120) -> str:
        """The site's REST nonce (from the page, or from ``start_session`` for guests)."""
        values = await target.values(timeout=timeout)
        return str(values["nonce"])
