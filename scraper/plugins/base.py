"""The contract every chat plugin protocol fulfils, and the small page protocol it talks to.

A plugin knows its page markup (which bots a page has, where their nonce and ids live), its requests,
its events, and how its site says "bad nonce". It never touches Playwright: it talks to a
:class:`ChatPage` (the browser lane and the direct HTTP client both are one).

A chat is a **sequence of exchanges**: :meth:`Plugin.chat` is a generator in the style of httpx's
``Auth.auth_flow``. It yields a :class:`Step` (a request); the flow sends it, checks the answer
(anti-bot page? nonce rejected? HTTP error?) and sends the whole body back as a :class:`Reply`
(``reply = yield step``). The last step carries a :class:`Reader`: its body is streamed, and the
reader turns its events into typed :data:`Event` values.

A chat may be one turn of a **conversation**. A plugin declares how its site carries the earlier
turns (:attr:`Plugin.history`): ``"client"`` when the page sends them with every message (the plugin
reads ``state["history"]`` and sends them as its own script shapes them), ``"server"`` when the site
keeps them itself per conversation id (the plugin continues the ids it keeps in
``state["conversation"]``), ``"none"`` when it has no memory at all. It also says how long one message
may be (:meth:`Plugin.input_limit`, read from the page), and keeps what it needs of a finished turn
(:meth:`Plugin.record_turn`).
"""

from __future__ import annotations

import abc
import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from ..errors import HTTPError, ScraperError, StreamError, excerpt
from ..wire import Document, HTTPRequest, Reply, Response, ServerSentEvent, remember

__all__ = [
    "Bot",
    "ChatFlow",
    "ChatPage",
    "ChatSite",
    "Detection",
    "Event",
    "Finish",
    "HistoryMode",
    "NonceRotated",
    "Plugin",
    "PluginName",
    "Reader",
    "Rejected",
    "Step",
    "TextDelta",
    "ValueCache",
    "Values",
    "Volatile",
    "fetch_page",
]

T = TypeVar("T")
# A plugin's name as the registry lists it (``scraper.plugins.PLUGINS``): a plain string, so that a new
# plugin is one module and one registry line, with no list of names to keep in step elsewhere.
PluginName = str
HistoryMode = Literal["client", "server", "none"]
Values = dict[str, Any]


# -- bots ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bot:
    """One chat box on a page: its id and name as the page gives them, and the plugin it belongs to.

    ``attrs`` are the attributes of the element the bot was found on (what its values are read from).
    """

    id: str
    name: str
    plugin: PluginName
    attrs: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    position: tuple[int, ...] = field(default=(0, 0), compare=False, repr=False)  # where on the page

    @property
    def key(self) -> tuple[str, str]:
        return (self.plugin, self.id)

    def matches(self, wanted: str | int) -> bool:
        """True when ``wanted`` is this bot's id, or its name (any case)."""
        text = str(wanted).strip()
        return text == self.id or (bool(self.name) and text.casefold() == self.name.casefold())


# -- events --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the reply's text."""

    text: str


@dataclass(frozen=True, slots=True)
class Finish:
    """The reply is complete: why it ended, and the token usage when the site reports it."""

    reason: str = "stop"
    usage: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class NonceRotated:
    """The site handed over a fresh nonce to use from now on (AI Engine's ``new_token``)."""

    nonce: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """The site refused the request in-band, before any text, in a way worth one more try.

    ``refresh``: get fresh values first (a nonce problem); ``forget``: keys of the chat's own state to
    drop before trying again (a one-use key that is gone).
    """

    reason: str
    refresh: bool = True
    forget: tuple[str, ...] = ()


Event = TextDelta | Finish | NonceRotated | Rejected


# -- reading a reply -----------------------------------------------------------------------------------


class Reader(abc.ABC):
    """Turns one reply's events into :data:`Event` values; knows the terminator and the error events."""

    terminator: ClassVar[str] = "its end marker"

    def __init__(self) -> None:
        self.done = False  # the reply's text is complete
        self.final = False  # the stream's own terminator came: nothing more will arrive
        self.parts: list[str] = []
        self._finished = False

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def emit(self, text: Any) -> list[Event]:
        """A text delta for a non-empty string (anything else carries no text)."""
        if not isinstance(text, str) or not text:
            return []
        self.parts.append(text)
        return [TextDelta(text)]

    def finish(
        self, reason: str = "stop", usage: Mapping[str, Any] | None = None, *, final: bool = False
    ) -> list[Event]:
        """Mark the reply complete (once) and say so."""
        self.done = True
        self.final = self.final or final
        if self._finished:
            return []
        self._finished = True
        return [Finish(reason, usage)]

    def parse_json(self, text: str, what: str) -> Any:
        """One event's JSON; a garbled event means the stream cannot be trusted."""
        try:
            return json.loads(text)
        except ValueError:
            raise StreamError(f"{what} is not JSON: the stream is garbled.", received=self.text) from None

    @abc.abstractmethod
    def on_event(self, event: ServerSentEvent) -> list[Event]:
        """What one streamed event carries (may set :attr:`done`/:attr:`final`, or raise)."""

    @abc.abstractmethod
    def on_json(self, body: Any) -> list[Event]:
        """What a non-streamed JSON reply carries (or raise the error it reports)."""


@dataclass(frozen=True)
class Step:
    """One request of a chat. With a ``reader`` it is the streamed reply; without, its whole body is
    sent back into the plugin's flow as a :class:`~scraper.wire.Reply`."""

    request: HTTPRequest
    reader: Reader | None = None


ChatFlow = Generator[Step, Reply, None]


# -- what a plugin talks to ----------------------------------------------------------------------------


class ChatPage(Protocol):
    """The small page protocol plugins use: the page as served, its live DOM, requests from it."""

    page_url: str
    origin: str
    served_html: str

    def keep(self, name: str, make: Callable[[], T]) -> T:
        """A value kept for the site as long as the session lives (like the page's localStorage)."""
        ...

    async def send(self, request: HTTPRequest, timeout: float) -> Response:
        """Send ``request`` from the page; return once the status and headers are in."""
        ...

    async def live_html(self, wait_for: str | None, timeout: float, *, until_quiet: float | None = None) -> str | None:
        """The live DOM as HTML, after waiting (up to ``timeout``) for ``wait_for`` to match if given;
        None when there is no live DOM (a plain HTTP client). With ``until_quiet`` the wait also ends once
        the page has loaded, its network is idle and its DOM has not changed for that many seconds."""
        ...


class ChatSite(ChatPage, Protocol):
    """A chat page plus what a session keeps about it between chats: plugin values per bot, and the
    plugins and bots detected on it (None until detected; forgotten when the page is loaded again)."""

    values: ValueCache
    detections: list[Detection] | None


@dataclass
class Detection:
    """What one plugin recognised on a page: the markers found, its version, and its bots."""

    plugin: Plugin
    markers: list[str] = field(default_factory=list)
    version: str | None = None
    bots: list[Bot] = field(default_factory=list)


@dataclass(frozen=True)
class Volatile:
    """What a plugin's requests carry that changes on every run (ids, timestamps, one-use keys): a
    replayed request is matched with these taken as anything. JSON paths use ``*`` for any key/index.
    ``ids`` are patterns of values the site makes up per run (one-use keys, message ids): a cassette
    names them ``ID_n`` so that recording twice gives the same files."""

    form_fields: frozenset[str] = frozenset()
    query_params: frozenset[str] = frozenset()
    json_paths: tuple[tuple[str, ...], ...] = ()
    ids: tuple[str, ...] = ()

    def __or__(self, other: Volatile) -> Volatile:
        return Volatile(
            self.form_fields | other.form_fields,
            self.query_params | other.query_params,
            self.json_paths + other.json_paths,
            self.ids + other.ids,
        )

    def json_path(self, path: tuple[str | int, ...]) -> bool:
        return any(
            len(pattern) == len(path) and all(p == "*" or p == str(q) for p, q in zip(pattern, path, strict=True))
            for pattern in self.json_paths
        )


_DOTTED = re.compile(r"\d+(?:\.\d+)+[\w.\-]*")  # 2.4.71, 3.0.5-beta; not 1787344627


class Plugin(abc.ABC):
    """One WordPress chat plugin's protocol (one generation of it)."""

    name: ClassVar[PluginName]
    label: ClassVar[str]
    generation: ClassVar[str]  # which generation of the plugin, and how it speaks (for inspect)
    family: ClassVar[str]  # plugins a user knows by one name share it ("aipower": both AI Power generations)
    slug: ClassVar[str]  # its folder under wp-content/plugins, where a page shows its version
    markers: ClassVar[tuple[str, ...]]  # text that shows the plugin on a page
    bot_selector: ClassVar[str]  # CSS: the elements that carry a bot's values
    # attributes of those elements a page script may change or remove: the browser notes them as they appear
    box_attributes: ClassVar[tuple[str, ...]] = ()
    ready_selector: ClassVar[str]  # CSS, live DOM: matches once a bot with its nonce is there
    request_markers: ClassVar[tuple[str, ...]]  # text in a request's URL or body that shows it is this plugin's
    message_field: ClassVar[str]  # the request field (form or JSON) that carries the user's message
    volatile: ClassVar[Volatile] = Volatile()
    history: ClassVar[HistoryMode] = "none"  # how the site carries a conversation's earlier turns
    # How much earlier-turn text one message may carry when the page declares no input limit (a
    # conversation the site never saw is started with its earlier turns as context).
    context_limit: ClassVar[int] = 4000

    def input_limit(self, values: Values) -> int | None:
        """The longest message (in characters) the chat box takes, as its page declares it; None: no limit."""
        limit = values.get("input_limit")
        return limit if isinstance(limit, int) and limit > 0 else None

    def record_turn(self, conversation: dict[str, Any], prompt: str, reply: str, state: dict[str, Any]) -> None:
        """Keep what the next turn needs of this one in ``conversation`` (the ids and history the page
        script would keep); ``state`` is the finished chat's. Nothing by default."""
        return None

    def version(self, html: str) -> str | None:
        """The plugin version a page's asset URLs show (``…/plugins/<slug>/…?ver=X``): its scripts' first,
        and only a dotted version (a stylesheet's ``?ver=`` is often a cache-busting timestamp)."""
        asset = rf"/plugins/{re.escape(self.slug)}/[^\"'?]*\?ver=([\w.\-]+)"
        scripts = re.findall(rf"<script\b[^>]*\bsrc=[\"'][^\"']*{asset}", html, re.IGNORECASE)
        return next((v for v in [*scripts, *re.findall(asset, html)] if _DOTTED.fullmatch(v)), None)

    @abc.abstractmethod
    def find_bots(self, doc: Document) -> list[Bot]:
        """The bots of this plugin on a page, in page order."""

    @abc.abstractmethod
    async def read_values(self, page: ChatPage, bot: Bot, timeout: float) -> Values:
        """What a chat with ``bot`` needs (nonce, ids, endpoints); raise MissingTokenError if absent."""

    @abc.abstractmethod
    async def refresh_values(self, page: ChatPage, bot: Bot, stale: Values, timeout: float) -> Values:
        """Fresh values after the site rejected ``stale``, without navigating the page (other chats
        may be streaming from it)."""

    def generation_of(self, bots: Sequence[Bot]) -> str:
        """Which generation these bots of one page speak (for inspect); the plugin's own by default."""
        return self.generation

    @abc.abstractmethod
    def chat(self, values: Values, prompt: str, state: dict[str, Any]) -> ChatFlow:
        """The exchanges of one chat. ``state`` belongs to this chat and survives a restart; in a
        conversation it holds ``history`` (the earlier turns, ``{"role", "content"}``) and
        ``conversation`` (the ids this plugin keeps for the site's conversation)."""

    @abc.abstractmethod
    def nonce_rejected(self, status: int, body: str) -> bool:
        """True when an error response means "your nonce is bad": worth one refresh and retry."""

    def error_for(self, status: int, body: str, url: str) -> ScraperError:
        """The error for a non-2xx answer that is not a nonce rejection."""
        return HTTPError(
            f"{url} answered HTTP {status}; the site refused or failed the chat request.",
            status=status,
            url=url,
            body=excerpt(body),
        )


async def fetch_page(page: ChatPage, plugin: Plugin, timeout: float) -> Document:
    """The chat page's HTML fetched again from the page itself, as the server sends it now: fresh
    values without navigating the page that other chats may be streaming from."""
    request = HTTPRequest("GET", page.page_url, {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    response = await page.send(request, timeout)
    try:
        body = (await response.aread(32 << 20)).decode("utf-8", "replace")
    finally:
        await response.aclose()
    if response.status >= 400:
        raise plugin.error_for(response.status, body, response.url)
    return Document(body)


# -- values, read once ---------------------------------------------------------------------------------


class ValueCache:
    """Plugin values of one site session, per bot. A first read and a refresh run once however many
    chats ask at the same moment; they all get its result (or its error)."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, str], Values] = {}
        self._pending: dict[tuple[str, str], asyncio.Future[Values]] = {}

    def get_cached(self, bot: Bot) -> Values | None:
        return self._values.get(bot.key)

    def snapshot(self) -> list[Values]:
        """Every bot's values held now."""
        return list(self._values.values())

    def clear(self) -> None:
        self._values.clear()

    async def get(self, bot: Bot, read: Callable[[], Awaitable[Values]]) -> Values:
        """The cached values of ``bot``, read with ``read()`` on first use."""
        cached = self._values.get(bot.key)
        if cached is not None:
            return cached
        return await self._once(bot, read)

    async def refresh(self, bot: Bot, stale: Values, refresh: Callable[[], Awaitable[Values]]) -> Values:
        """Fresh values of ``bot``: another chat's refresh if it already replaced ``stale``."""
        current = self._values.get(bot.key)
        if current is not None and current is not stale:
            return current
        pending = self._pending.get(bot.key)
        if pending is not None:
            return await asyncio.shield(pending)
        self._values.pop(bot.key, None)
        return await self._once(bot, refresh)

    async def _once(self, bot: Bot, work: Callable[[], Awaitable[Values]]) -> Values:
        pending = self._pending.get(bot.key)
        if pending is None:
            pending = self._pending[bot.key] = asyncio.ensure_future(work())

            def settle(done: asyncio.Future[Values]) -> None:
                if self._pending.get(bot.key) is done:
                    del self._pending[bot.key]
                if not done.cancelled() and done.exception() is None:
                    self._values[bot.key] = done.result()
                    remember(done.result())

            pending.add_done_callback(settle)
        return await asyncio.shield(pending)
