"""ChatService: the one place that runs a chat in the browser.

It takes a lane slot, warms the page, finds the bot, runs the plugin's flow, keeps debug files when
something goes wrong, and hands back typed events. The provider classes, the command line and the
OpenAI-compatible server all chat through it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from .._aio import closing
from ..browser import (
    BrowserPool,
    BrowserRuntime,
    Lane,
    PoolMember,
    debug_folder,
    get_runtime,
    playwright_error,
    save_artifacts,
)
from ..browser._runtime import BrowserOptions
from ..errors import (
    BrowserCrashedError,
    BrowserError,
    ChallengeError,
    HTTPError,
    MissingTokenError,
    PageError,
    ScraperError,
    ScraperTimeoutError,
    SiteError,
    StreamError,
)
from ..plugins import (
    Bot,
    Finish,
    Plugin,
    TextDelta,
    Values,
    all_bots,
    choose_bot,
    find_bots,
    get_plugin,
    plugins_named,
    read_values,
    run_chat,
)
from ..wire import json_object, logger
from ._conversation import ConversationBook, Record, TurnRequest, default_book, site_turns
from ._prompt import Messages

__all__ = ["ChatOptions", "ChatService", "ChatTarget", "PooledChatService"]

log = logger("scraper.chat")


def _not_here(exc: ScraperError) -> bool:
    """The page is not where the chat is (no such page, or no chat box on it): look elsewhere."""
    if isinstance(exc, HTTPError):
        return exc.status in (404, 410)
    return isinstance(exc, PageError) and not isinstance(exc, MissingTokenError)


# Errors about one reply: the page and its values are still sound, so the lane stays warm.
_ABOUT_THE_REPLY = (StreamError, SiteError, ScraperTimeoutError)


@dataclass(frozen=True)
class ChatTarget:
    """Where to chat: the chat page, which plugins may answer there (None: any), which bot."""

    page_url: str
    plugins: tuple[str, ...] | None = None
    bot: str | int | None = None
    fallback_urls: tuple[str, ...] = ()  # where else the chat may be when the page has none (tried in order)
    model: str | None = None  # with no bot asked for: the bot of this name or model, else the page's default


def bot_for_model(bots: Sequence[Bot], model: str) -> Bot | None:
    """The bot a model name means on a page: the bot of that name (or id), else the one whose settings
    name that model; None when no bot says (the page's default bot then answers)."""
    wanted = model.strip().casefold()
    for bot in bots:
        if bot.matches(model):
            return bot
    for bot in bots:
        for value in bot.attrs.values():
            settings = json_object(value) if value.lstrip().startswith("{") else None
            if settings and str(settings.get("model") or "").strip().casefold() == wanted:
                return bot
    return None


class ChatOptions(TypedDict, total=False):
    """Per-chat options: ``timeout`` bounds each step (page load, headers, silence between chunks)."""

    timeout: float
    proxy: str | None
    cookies: Mapping[str, str] | None
    trace: str | None
    debug_dir: str | None
    max_pages: int | None


_WHERE_KEPT = 1024  # pages whose chat box was found elsewhere, remembered (the most recent)


@dataclass(frozen=True)
class _Seat:
    """Where one chat runs: the plugin, the lane holding the page, the bot, and the chat's timeout."""

    plugin: Plugin
    lane: Lane
    bot: Bot
    timeout: float

    async def pass_check(self, challenge: Any) -> None:
        await self.lane.pass_check(challenge, self.timeout)

    def run(
        self, prompt: str, history: Sequence[Mapping[str, str]] = (), conversation: dict[str, Any] | None = None
    ) -> AsyncIterator[TextDelta | Finish]:
        """The plugin's flow for ``prompt`` on this page (in a conversation, its history and state)."""
        return run_chat(
            self.plugin,
            self.lane,
            self.bot,
            prompt,
            timeout=self.timeout,
            pass_check=self.pass_check,
            history=history,
            conversation=conversation,
        )


class ChatService:
    """Runs chats on one browser runtime. Its coroutines run on the runtime's thread; :meth:`events`
    and :meth:`call` carry them to any caller's event loop."""

    def __init__(self, runtime: BrowserRuntime, book: ConversationBook | None = None) -> None:
        self.runtime = runtime
        self._where: dict[str, str] = {}  # a target's page -> where its chat box was found
        self._book = book

    @property
    def book(self) -> ConversationBook:
        """Which site conversation goes on with which history (the process's book unless given one)."""
        if self._book is None:
            self._book = default_book()
        return self._book

    @book.setter
    def book(self, book: ConversationBook) -> None:
        self._book = book

    def _candidates(self, target: ChatTarget) -> list[str]:
        """The pages to look at for the target's chat: where it was found last time first."""
        urls = [target.page_url, *target.fallback_urls]
        found = self._where.get(target.page_url)
        return list(dict.fromkeys([found, *urls])) if found else urls

    @classmethod
    def for_options(cls, options: BrowserOptions | BrowserPool | None = None) -> ChatService:
        """The service of the process-wide browser for these options, or of a pool of browsers."""
        if isinstance(options, BrowserPool):
            return PooledChatService(options)
        return cls(get_runtime(options))

    @property
    def runtimes(self) -> list[BrowserRuntime]:
        """Every browser this service chats in."""
        return [self.runtime]

    # -- from any event loop ------------------------------------------------------------------------------
    def events(
        self,
        target: ChatTarget,
        prompt: str,
        *,
        on_values: Callable[[Bot, Values], None] | None = None,
        **options: Any,
    ) -> AsyncIterator[TextDelta | Finish]:
        """The reply's events, for a caller on any event loop (closing it aborts the chat). ``turn=``
        (a :class:`TurnRequest`) makes it one turn of a conversation; ``prompt`` is then unused."""
        return self._events(
            target,
            lambda service: service.runtime.iterate(service.chat(target, prompt, on_values=on_values, **options)),
            options,
        )

    def _events(
        self,
        target: ChatTarget,
        start: Callable[[ChatService], AsyncIterator[TextDelta | Finish]],
        options: Mapping[str, Any],
    ) -> AsyncIterator[TextDelta | Finish]:
        """The events ``start`` gives for the service of the browser the chat runs in: this one."""
        return start(self)

    def turn(
        self,
        target: ChatTarget,
        messages: Messages | Callable[[], Messages],
        *,
        record: Record | None = None,
        book: ConversationBook | None = None,
        wait: float | None = None,
        **options: Any,
    ) -> tuple[TurnRequest, AsyncIterator[TextDelta | Finish]]:
        """One turn of a conversation given as its whole history (see :mod:`._conversation`): the
        request (its ``plan`` says which site conversation answered) and the reply's events. ``wait``
        bounds how long it waits for the conversation's other turns (default: the chat's timeout)."""
        if not callable(messages):
            site_turns(messages)  # a history that cannot be a turn is refused now, not in the browser
        request = TurnRequest(messages, book or self.book, record, wait=wait)
        return request, self.events(target, "", turn=request, **options)

    async def bots(self, target: ChatTarget, *, timeout: float = 120, proxy: str | None = None) -> list[Bot]:
        """The bots on the target's page (detected once per page load), from any event loop."""

        async def bots() -> list[Bot]:
            async with self._slot(target, float(timeout), proxy=proxy) as (lane, _):
                return all_bots(await find_bots(lane, plugins_named(target.plugins), float(timeout)))

        return await self.runtime.call(bots())

    async def values(self, target: ChatTarget, *, timeout: float = 120, proxy: str | None = None) -> Values:
        """What a chat with the target's bot would use (nonce, ids), from any event loop."""

        async def values() -> Values:
            async with self._slot(target, float(timeout), proxy=proxy) as (lane, bot):
                return await read_values(lane, get_plugin(bot.plugin), bot, float(timeout))

        return await self.runtime.call(values())

    # -- on the browser thread -------------------------------------------------------------------------
    async def chat(
        self,
        target: ChatTarget,
        prompt: str,
        *,
        timeout: float = 120,
        proxy: str | None = None,
        cookies: Mapping[str, str] | None = None,
        trace: str | None = None,
        debug_dir: str | None = None,
        max_pages: int | None = None,
        on_values: Callable[[Bot, Values], None] | None = None,
        turn: TurnRequest | None = None,
    ) -> AsyncIterator[TextDelta | Finish]:
        """One chat: the reply's text as it streams, then its :class:`~scraper.plugins.Finish`.

        When the page or the whole browser dies before the reply started, the chat is started once
        more on a new page (or browser): nothing was said yet, so nothing is said twice.
        """
        timeout = float(timeout)
        for attempt in (1, 2):
            yielded = False
            slot = self._slot(
                target, timeout, proxy=proxy, max_pages=max_pages, cookies=cookies, trace=trace, debug_dir=debug_dir
            )
            try:
                async with slot as (lane, bot):
                    seat = _Seat(get_plugin(bot.plugin), lane, bot, timeout)
                    chat = seat.run(prompt) if turn is None else self._turn(turn, target, seat)
                    async with closing(chat):
                        async for event in chat:
                            yielded = True
                            yield event
                    if on_values is not None:
                        on_values(bot, lane.values.get_cached(bot) or {})
                    await lane.save_trace()
                return
            except BrowserCrashedError:
                if yielded or attempt == 2:
                    raise
                log.info("the browser lost the page before the reply began; starting the chat again")

    async def _turn(self, turn: TurnRequest, target: ChatTarget, seat: _Seat) -> AsyncIterator[TextDelta | Finish]:
        """One turn of a conversation: planned against the book, run alone among its conversation's
        turns, and remembered once answered."""
        plugin, bot = seat.plugin, seat.bot
        values = await read_values(seat.lane, plugin, bot, seat.timeout)
        wait = seat.timeout if turn.wait is None else turn.wait
        known = turn.book.hold(turn.record.id, wait) if turn.record is not None else None
        async with known or contextlib.nullcontext():  # a known conversation: wait for its turn first
            record = turn.record
            if record is not None and getattr(turn.book.store, "shared", False):  # the last turn may have run elsewhere
                record = await asyncio.to_thread(turn.book.refresh, record)
            plan = turn.plan = turn.book.plan(plugin, bot, target.page_url, values, turn.history(), record)
            async with turn.book.hold(plan.record.id, wait) if known is None else contextlib.nullcontext():
                parts: list[str] = []
                async with closing(seat.run(plan.prompt, history=plan.history, conversation=plan.record.state)) as run:
                    async for event in run:
                        if isinstance(event, TextDelta):
                            parts.append(event.text)
                        elif isinstance(event, Finish):  # remembered before the caller hears the reply is complete
                            turn.book.answered(plan, bot, "".join(parts))
                        yield event

    @contextlib.asynccontextmanager
    async def _slot(
        self,
        target: ChatTarget,
        timeout: float,
        *,
        proxy: str | None = None,
        max_pages: int | None = None,
        cookies: Mapping[str, str] | None = None,
        trace: str | None = None,
        debug_dir: str | None = None,
    ) -> AsyncIterator[tuple[Lane, Bot]]:
        """A lane slot on the page where the target's chat is, with the bot to talk to; on failure the
        browser's view is kept and the lane marked for a reload; the slot is given back however it ends."""
        urls = self._candidates(target)
        for index, url in enumerate(urls):
            pool = self.runtime.sites.pool(url, proxy=proxy, max_pages=max_pages)
            lane = await pool.acquire()
            try:
                await self.runtime.sites.trim()  # a new site may push the least recently used idle one out
                if trace:
                    await lane.trace_to(str(trace))
                await lane.add_cookies(cookies)
                try:
                    bot = await self._bot(lane, target, timeout)
                except (PageError, HTTPError) as exc:
                    if index + 1 == len(urls) or not _not_here(exc):
                        raise
                    log.info("no chat box at %s (%s); trying %s", url, type(exc).__name__, urls[index + 1])
                    continue
                self._where.pop(target.page_url, None)
                self._where[target.page_url] = url
                while len(self._where) > _WHERE_KEPT:  # bounded in a long-running process
                    del self._where[next(iter(self._where))]
                yield lane, bot
                return
            except ScraperError as exc:
                await self._failed(lane, exc, debug_dir)
                raise
            except Exception as exc:
                error = playwright_error(exc, f"chatting with {url}")
                await self._failed(lane, error, debug_dir)
                raise error from exc
            finally:
                pool.release(lane)

    async def _bot(self, lane: Lane, target: ChatTarget, timeout: float) -> Bot:
        await lane.ready(timeout)
        plugins = plugins_named(target.plugins)
        found = await find_bots(lane, plugins, timeout)
        if target.bot in (None, "") and target.model:
            chosen = bot_for_model(all_bots(found), target.model)
            if chosen is not None:
                return chosen
        return choose_bot(found, target.bot, lane.page_url, plugins)

    async def _failed(self, lane: Lane, exc: ScraperError, debug_dir: str | None) -> None:
        """Keep what the browser showed, and make the next chat load the page again when the page
        itself may be what went wrong (a broken or refused reply says nothing about the page)."""
        if not isinstance(exc, _ABOUT_THE_REPLY):
            lane.spoil()
        paths = await save_artifacts(lane, type(exc).__name__, debug_folder(debug_dir))
        if isinstance(exc, ChallengeError):
            exc.screenshot = next((p for p in paths if p.endswith(".png")), None)
            exc.html = next((p for p in paths if p.endswith(".html")), None)
        exc.add_artifacts(paths)


def _site(target: ChatTarget, proxy: str | None) -> str:
    """The key placement keeps a site's chats together by: its page and proxy."""
    return f"{target.page_url} {proxy or ''}"


class PooledChatService(ChatService):
    """Runs chats on a :class:`~scraper.browser.BrowserPool`: each chat on the browser the pool places it
    on, through that browser's own service. A chat whose browser is lost before it said anything starts
    again on another browser; one that had started its reply ends with its error, as on one browser.

    ``runtime`` is the pool's first browser, for code that reads one browser's state."""

    def __init__(self, pool: BrowserPool, book: ConversationBook | None = None) -> None:
        super().__init__(next(iter(pool)).runtime, book)
        self.pool = pool
        self._services: dict[BrowserRuntime, ChatService] = {}

    @property
    def runtimes(self) -> list[BrowserRuntime]:
        return [member.runtime for member in self.pool]

    def _service(self, member: PoolMember) -> ChatService:
        service = self._services.get(member.runtime)
        if service is None:
            service = self._services[member.runtime] = ChatService(member.runtime, self._book)
        return service

    async def _events(
        self,
        target: ChatTarget,
        start: Callable[[ChatService], AsyncIterator[TextDelta | Finish]],
        options: Mapping[str, Any],
    ) -> AsyncIterator[TextDelta | Finish]:
        """The events on the browser the pool places the chat on; on another when that one is lost
        before the reply began."""
        tried: list[PoolMember] = []
        timeout, site = float(options.get("timeout", 120)), _site(target, options.get("proxy"))
        while True:
            member = await self.pool.acquire(site, timeout, avoid=tried)
            yielded = False
            try:
                async with closing(start(self._service(member))) as events:
                    async for event in events:
                        yielded = True
                        yield event
                return
            except ScraperError as exc:
                if not isinstance(exc, BrowserError) and member.runtime.connected:
                    raise
                down = await asyncio.get_running_loop().run_in_executor(None, self.pool.failed, member, exc)
                if yielded or not down:
                    raise
                tried.append(member)
                log.info("the browser %s was lost before the reply began; starting the chat on another", member.where)
            finally:
                self.pool.release(member)

    async def bots(self, target: ChatTarget, *, timeout: float = 120, proxy: str | None = None) -> list[Bot]:
        member = await self.pool.acquire(_site(target, proxy), timeout)
        try:
            return await self._service(member).bots(target, timeout=timeout, proxy=proxy)
        finally:
            self.pool.release(member)

    async def values(self, target: ChatTarget, *, timeout: float = 120, proxy: str | None = None) -> Values:
        member = await self.pool.acquire(_site(target, proxy), timeout)
        try:
            return await self._service(member).values(target, timeout=timeout, proxy=proxy)
        finally:
            self.pool.release(member)
