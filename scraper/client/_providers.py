"""Chats with any WordPress site that runs a supported plugin, in the gpt4free provider style.

``WordPressChat("https://site/chat/")`` detects the plugin and its bots; ``AIPowerChat`` and
``AIEngineChat`` only consider one plugin family; the seed providers are presets of them.
``create_async_generator`` works on the class (its ``url``) and on an instance (the instance's), and
returns a stream that can be iterated directly or awaited first, as both seed examples do.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Concatenate, Generic, ParamSpec, TypeVar, overload

from .._keywords import check_keywords
from ..browser import BrowserOptions, Lane, get_runtime
from ..errors import ConfigError
from ..plugins import Bot, Values, plugins_named
from ._base import AsyncGeneratorProvider, ProviderModelMixin
from ._catalog import chat_page, site_url
from ._conversation import Conversation, ConversationBook
from ._prompt import Messages
from ._service import ChatService, ChatTarget
from ._stream import ChatStream

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["BROWSER_KEYS", "AIEngineChat", "AIPowerChat", "ChatKeywords", "MxChatChat", "WordPressChat", "hybridmethod"]

P = ParamSpec("P")
R = TypeVar("R")
BROWSER_KEYS: tuple[str, ...] = tuple(BrowserOptions.__annotations__)
_CHAT_KEYS = ("trace", "debug_dir", "max_pages")


class ChatKeywords(BrowserOptions, total=False):
    """The keyword options of ``create_async_generator`` past the seed's ``proxy``, ``timeout``, ``cookies``:
    ``bot`` (an id or a name), the browser options, and per-chat debugging and limits."""

    bot: str | int | None
    trace: str | None
    debug_dir: str | None
    max_pages: int | None


CHAT_KEYWORDS = frozenset(ChatKeywords.__annotations__)


class hybridmethod(Generic[P, R]):
    """A method that receives the class when called on the class, the instance when called on one.

    Typed so that checkers see the method's own signature (less its first argument), on either.
    """

    def __init__(self, func: Callable[Concatenate[Any, P], R]) -> None:
        self.func = func
        functools.update_wrapper(self, func)  # type: ignore[arg-type]

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Callable[P, R]: ...
    @overload
    def __get__(self, obj: object, owner: type[Any] | None = None) -> Callable[P, R]: ...
    def __get__(self, obj: object, owner: type[Any] | None = None) -> Callable[P, R]:
        bound = functools.partial(self.func, owner if obj is None else obj)
        # Its name and docs, not __wrapped__: inspect.signature then shows the method's own, less ``target``.
        functools.update_wrapper(bound, self.func, updated=())
        del bound.__wrapped__  # type: ignore[attr-defined]
        return bound


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

    @classmethod
    def bot_model(cls, model: str | None) -> str | None:
        """The model name that picks a bot, on a page that lists no models (a preset's are its own)."""
        return model if model and not cls.models and model != cls.default_model else None

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
        chosen = bot if bot is not None else target.bot
        return ChatTarget(target.page_url(), target.plugins, chosen, fallbacks, target.bot_model(model))

    @hybridmethod
    def service(target: Any, **kwargs: Unpack[ChatKeywords]) -> ChatService:
        """The chat service of the browser this provider (and these keywords) ask for."""
        options: dict[str, Any] = dict(getattr(target, "browser_options", None) or {})
        options.update({k: v for k, v in kwargs.items() if k in BROWSER_KEYS})
        return ChatService.for_options(options)  # type: ignore[arg-type]

    # -- the seed entry point ------------------------------------------------------------------
    # The seed's base class takes any keywords; this one names them (and refuses others).
    @hybridmethod
    def create_async_generator(  # type: ignore[override]
        target: Any,
        model: str,
        messages: Messages,
        proxy: str | None = None,
        timeout: float = 120,
        cookies: Mapping[str, str] | None = None,
        **kwargs: Unpack[ChatKeywords],
    ) -> ChatStream:
        """Stream the reply to ``messages`` as text chunks.

        ``proxy`` and ``cookies`` go into the browser context; ``timeout`` bounds each step (page
        load, headers, silence between chunks). ``bot=`` picks a bot by id or name. Browser options
        (``headless``, ``slow_mo``, ``ws_endpoint``, ``cdp_endpoint``, ``executable_path``, ``args``)
        may be passed as keywords, and ``max_pages`` bounds how many pages (lanes of six chats each)
        one site may use at once. ``trace="trace.zip"`` writes a Playwright trace of the chat; on
        failure a screenshot and the page HTML are kept in ``debug_dir`` and named in the error.
        """
        check_keywords(kwargs, CHAT_KEYWORDS, "create_async_generator()")
        target.get_model(model)
        options: dict[str, Any] = {k: v for k, v in kwargs.items() if k in _CHAT_KEYS and v is not None}
        _, events = target.service(**kwargs).turn(
            target.target(kwargs.get("bot"), model),
            list(messages),
            timeout=float(timeout),
            proxy=proxy,
            cookies=cookies,
            on_values=target._remember,
            **options,
        )
        return ChatStream(events)

    @hybridmethod
    def conversation(
        target: Any,
        /,
        *,
        bot: str | int | None = None,
        id: str | None = None,
        system: str | None = None,
        timeout: int | float = 120,
        proxy: str | None = None,
        cookies: Mapping[str, str] | None = None,
        book: ConversationBook | None = None,
        **kwargs: Any,
    ) -> Conversation:
        """A conversation with the site's bot (``bot=`` by id or name): ``conv.send("...")`` turn after
        turn, the site's own memory carrying the earlier ones. ``id=`` resumes one (``conv.id``);
        ``system`` goes before the first user turn; ``book`` keeps it elsewhere than the process's store."""
        service = target.service(**kwargs)
        if book is not None:
            service.book = book
        if id is None:
            record = service.book.new(target.page_url())
        else:
            record = service.book.get(id)
            if record is None:
                raise ConfigError(f"No conversation {id!r} is known here (nor in the conversation store).")
        options = {k: kwargs[k] for k in _CHAT_KEYS if kwargs.get(k) is not None}
        return Conversation(
            service,
            target.target(bot),
            record,
            system=system,
            timeout=float(timeout),
            proxy=proxy,
            cookies=cookies,
            **options,
        )

    @hybridmethod
    async def bots(target: Any, *, timeout: float = 120, proxy: str | None = None) -> list[Bot]:
        """The bots on the chat page (detected on first use): ``.id``, ``.name``, ``.plugin``."""
        found: list[Bot] = await target.service().bots(target.target(), timeout=timeout, proxy=proxy)
        return found

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
        values: Values = await target.service().values(target.target(), timeout=timeout)
        return values


class AIPowerChat(WordPressChat):
    """Any site whose chat box is the AI Power plugin (``admin-ajax.php``), whichever generation."""

    plugins: ClassVar[tuple[str, ...] | None] = ("aipower",)


class AIEngineChat(WordPressChat):
    """Any site whose chatbot is the AI Engine plugin (REST ``mwai``, ``live``/``end`` events)."""

    plugins: ClassVar[tuple[str, ...] | None] = ("aiengine",)
    api_endpoint: ClassVar[str] = "/wp-json/mwai-ui/v1/chats/submit"

    @hybridmethod
    async def get_nonce(target: Any, headers: Mapping[str, str] | None = None, timeout: float = 120) -> str:
        """The site's REST nonce (from the page, or from ``start_session`` for guests)."""
        values = await target.values(timeout=timeout)
        return str(values["nonce"])


class KognetiksChat(WordPressChat):
    """Any site whose chat box is the Kognetiks Chatbot (``chatbot-chatgpt``): one JSON answer per message,
    given as one chunk. Its history is one store for the whole site (see the README)."""

    plugins = ("kognetiks",)


class MxChatChat(WordPressChat):
    """Any site whose chat box is the MxChat plugin (``admin-ajax.php`` ``mxchat_stream_chat``). The site
    keeps the conversation per session: later chats with the same site continue it."""

    plugins: ClassVar[tuple[str, ...] | None] = ("mxchat",)
