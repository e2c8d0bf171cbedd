"""ChatService: the one place that runs a chat in the browser.

It takes a lane slot, warms the page, finds the bot, runs the plugin's flow, keeps debug files when
something goes wrong, and hands back typed events. The provider classes, the command line and the
OpenAI-compatible server all chat through it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from ..browser import BrowserRuntime, Lane, debug_folder, get_runtime, playwright_error, save_artifacts
from ..browser._runtime import BrowserOptions
from ..errors import ChallengeError, ScraperError, ScraperTimeoutError, SiteError, StreamError
from ..plugins import (
    Bot,
    Finish,
    TextDelta,
    Values,
    all_bots,
    choose_bot,
    find_bots,
    get_plugin,
    plugins_named,
    run_chat,
)
from ..wire import logger

__all__ = ["ChatOptions", "ChatService", "ChatTarget"]

log = logger("scraper.chat")
# Errors about one reply: the page and its values are still sound, so the lane stays warm.
_ABOUT_THE_REPLY = (StreamError, SiteError, ScraperTimeoutError)


@dataclass(frozen=True)
class ChatTarget:
    """Where to chat: the chat page, which plugins may answer there (None: any), which bot."""

    page_url: str
    plugins: tuple[str, ...] | None = None
    bot: str | int | None = None


class ChatOptions(TypedDict, total=False):
    """Per-chat options: ``timeout`` bounds each step (page load, headers, silence between chunks)."""

    timeout: float
    proxy: str | None
    cookies: Mapping[str, str] | None
    trace: str | None
    debug_dir: str | None
    max_pages: int | None


class ChatService:
    """Runs chats on one browser runtime. Its coroutines run on the runtime's thread; :meth:`events`
    and :meth:`call` carry them to any caller's event loop."""

    def __init__(self, runtime: BrowserRuntime) -> None:
        self.runtime = runtime

    @classmethod
    def for_options(cls, options: BrowserOptions | None = None) -> ChatService:
        """The service of the process-wide browser for these options."""
        return cls(get_runtime(options))

    # -- from any event loop ------------------------------------------------------------------------------
    def events(
        self,
        target: ChatTarget,
        prompt: str,
        *,
        on_values: Callable[[Bot, Values], None] | None = None,
        **options: Any,
    ) -> AsyncIterator[TextDelta | Finish]:
        """The reply's events, for a caller on any event loop (closing it aborts the chat)."""
        return self.runtime.iterate(self.chat(target, prompt, on_values=on_values, **options))

    async def bots(self, target: ChatTarget, *, timeout: float = 120, proxy: str | None = None) -> list[Bot]:
        """The bots on the target's page (detected once per page load), from any event loop."""
        return await self.runtime.call(self._bots(target, timeout, proxy))

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
    ) -> AsyncIterator[TextDelta | Finish]:
        """One chat: the reply's text as it streams, then its :class:`~scraper.plugins.Finish`."""
        timeout = float(timeout)
        pool = self.runtime.sites.pool(target.page_url, proxy=proxy, max_pages=max_pages)
        lane = await pool.acquire()
        try:
            if trace:
                await lane.trace_to(str(trace))
            await lane.add_cookies(cookies)
            bot = await self._bot(lane, target, timeout)
            plugin = get_plugin(bot.plugin)

            async def pass_check(challenge: Any) -> None:
                await lane.pass_check(challenge, timeout)

            async for event in run_chat(plugin, lane, bot, prompt, timeout=timeout, pass_check=pass_check):
                yield event
            if on_values is not None:
                on_values(bot, lane.values.get_cached(bot) or {})
            await lane.save_trace()
        except ScraperError as exc:
            await self._failed(lane, exc, debug_dir)
            raise
        except Exception as exc:
            error = playwright_error(exc, f"chatting with {target.page_url}")
            await self._failed(lane, error, debug_dir)
            raise error from exc
        finally:
            pool.release(lane)

    async def _bot(self, lane: Lane, target: ChatTarget, timeout: float) -> Bot:
        await lane.ready(timeout)
        plugins = plugins_named(target.plugins)
        found = await find_bots(lane, plugins, timeout)
        return choose_bot(found, target.bot, lane.page_url, plugins)

    async def _bots(self, target: ChatTarget, timeout: float, proxy: str | None) -> list[Bot]:
        pool = self.runtime.sites.pool(target.page_url, proxy=proxy)
        lane = await pool.acquire()
        try:
            await lane.ready(timeout)
            return all_bots(await find_bots(lane, plugins_named(target.plugins), timeout))
        except ScraperError:
            lane.spoil()
            raise
        finally:
            pool.release(lane)

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
