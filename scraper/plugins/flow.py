"""The one chat flow that drives every plugin: find the bot, read its values, run its exchanges.

Every exchange passes the same checks: an anti-bot page, a rejected nonce, an HTTP error. The whole
sequence starts again (once per cause) when a nonce or a check needs it, and only before any text
was yielded, so a reply is never repeated. A reply that does not end with its plugin's terminator is
a :class:`~scraper.StreamError`, never a silently short answer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from .._aio import closing
from ..errors import (
    BotNotFoundError,
    ChallengeError,
    HTTPError,
    InputTooLongError,
    MissingTokenError,
    NonceError,
    PageError,
    ScraperError,
    SiteError,
    StreamError,
    excerpt,
)
from ..wire import Document, Reply, Response, SSEDecoder, detect_challenge, logger
from .base import (
    Bot,
    ChatSite,
    Detection,
    Event,
    Finish,
    NonceRotated,
    Plugin,
    Reader,
    Rejected,
    Step,
    TextDelta,
    Values,
)
from .registry import PLUGINS, detect

__all__ = [
    "ChallengeMet",
    "all_bots",
    "check_length",
    "check_page",
    "choose_bot",
    "find_bots",
    "read_reply",
    "read_values",
    "run_chat",
]

log = logger("scraper.chat")

# After a reply is complete but before the stream's terminator, wait this long for the rest, so the
# site sees the response read to its end rather than a dropped connection.
DRAIN_SECONDS = 1.0
# How long a page may take to write a chat box or a nonce after it loaded (scripts, sensors).
LATE_VALUES_SECONDS = 10.0
# A page that shows no sign of the plugins asked for (no marker, none of their files) is given up on
# sooner: once it has loaded, its network is idle and its DOM has not changed for this long.
QUIET_SECONDS = 3.0


class ChallengeMet(Exception):
    """Raised inside the flow when an exchange met an anti-bot page: the caller passes it (a browser
    can) and the flow goes on, or it becomes a :class:`~scraper.ChallengeError`."""

    def __init__(self, challenge: Any) -> None:
        super().__init__(challenge)
        self.challenge = challenge


def check_page(url: str, status: int, html: str) -> None:
    """An error page where the chat page should be is an :class:`HTTPError` showing what it says."""
    if status >= 400:
        raise HTTPError(
            f"The chat page {url} answered HTTP {status}. Open it in a browser to see why, or check the URL.",
            status=status,
            url=url,
            body=excerpt(html),
        )


# -- which bot, with which values --------------------------------------------------------------------


async def find_bots(site: ChatSite, plugins: Sequence[Plugin], timeout: float) -> list[Detection]:
    """The detections of ``plugins`` on the site's page. Every known plugin is detected once per page
    load, so chats asking for different plugins on one page each get their own.

    The HTML as served is read first, then the live DOM; when neither shows a bot of ``plugins``, the
    live DOM is watched (up to ``timeout``, at most :data:`LATE_VALUES_SECONDS`) for a chat box a script
    builds; on a page with no sign of those plugins, only until the page is quiet (:data:`QUIET_SECONDS`).
    """
    names = {plugin.name for plugin in plugins}

    def wanted(found: list[Detection]) -> list[Detection]:
        return [d for d in found if d.plugin.name in names]

    if site.detections is not None:
        return wanted(site.detections)
    served = Document(site.served_html)
    live = await site.live_html(None, timeout)
    found = detect([served, *([Document(live)] if live else [])], PLUGINS)
    if live is not None and not any(d.bots for d in wanted(found)):
        selector = ", ".join(p.bot_selector for p in plugins)
        docs = [served, *([Document(live)] if live else [])]
        assets = [f"/plugins/{p.slug}/" for p in plugins]
        marked = any(d.markers for d in wanted(found)) or any(doc.contains(a) for doc in docs for a in assets)
        limit = min(timeout, LATE_VALUES_SECONDS)
        log.info(
            "no chat box on the page yet; waiting up to %.0f s for one to appear%s",
            limit,
            "" if marked else " (less once the page is quiet: it shows no sign of a chat plugin)",
        )
        live = await site.live_html(selector, limit, until_quiet=None if marked else QUIET_SECONDS)
        found = detect([served, *([Document(live)] if live else [])], PLUGINS)
    site.detections = found
    return wanted(found)


def all_bots(found: Sequence[Detection]) -> list[Bot]:
    """Every bot detected, in page order."""
    return sorted((bot for d in found for bot in d.bots), key=lambda b: b.position)


def choose_bot(found: Sequence[Detection], wanted: str | int | None, url: str, plugins: Sequence[Plugin]) -> Bot:
    """The bot asked for (by id or name), or the first one on the page."""
    bots = all_bots(found)
    if not bots:
        looked = "; ".join(f"{p.label} ({p.bot_selector})" for p in plugins)
        seen = "; ".join(f"{d.plugin.label} markers ({', '.join(d.markers)})" for d in found if d.markers)
        raise PageError(
            f"No chat box on {url}: looked for {looked}"
            + (f"; the page has {seen} but no chat box with its data" if seen else "")
            + ". Check the URL points at the page with the chat, or run `scraper inspect URL`.",
            url=url,
        )
    if wanted is None or wanted == "":
        return bots[0]
    for bot in bots:
        if bot.matches(wanted):
            return bot
    offered = ", ".join(f"{b.id} {b.name!r} ({b.plugin})" for b in bots)
    raise BotNotFoundError(f"No bot {str(wanted)!r} on {url}; the page has: {offered}.")


async def read_values(site: ChatSite, plugin: Plugin, bot: Bot, timeout: float) -> Values:
    """The values of ``bot``, read once per page load (single-flight across concurrent chats).

    A nonce a page script writes late (after a check, say) is waited for in the live DOM.
    """

    async def read() -> Values:
        try:
            return await plugin.read_values(site, bot, timeout)
        except MissingTokenError:
            live = await site.live_html(plugin.ready_selector, min(timeout, LATE_VALUES_SECONDS))
            if live is None:
                raise
            fresh = next((b for b in plugin.find_bots(Document(live)) if b.key == bot.key), None)
            if fresh is None:
                raise
            log.info("read the values of %s bot %s from the live page", plugin.label, bot.id)
            return await plugin.read_values(site, fresh, timeout)

    return await site.values.get(bot, read)


# -- the chat ------------------------------------------------------------------------------------------


def check_length(plugin: Plugin, values: Values, prompt: str) -> None:
    """Refuse a message longer than the chat box's declared limit, naming it (the site's own refusal
    says nothing useful, and the message would be sent for nothing)."""
    limit = plugin.input_limit(values)
    if limit is not None and len(prompt) > limit:
        raise InputTooLongError(
            f"The message is {len(prompt)} characters long; this {plugin.label} chat box takes at most {limit} "
            "(its page declares the limit). Shorten the message or split it over several turns.",
            limit=limit,
            length=len(prompt),
        )


class _Restart(Exception):
    def __init__(self, cause: str, detail: str, rejected: Rejected | None = None) -> None:
        super().__init__(detail)
        self.cause = cause
        self.detail = detail
        self.rejected = rejected


async def run_chat(
    plugin: Plugin,
    site: ChatSite,
    bot: Bot,
    prompt: str,
    *,
    timeout: float,
    pass_check: Callable[[Any], Any] | None = None,
    history: Sequence[Mapping[str, str]] = (),
    conversation: dict[str, Any] | None = None,
) -> AsyncIterator[TextDelta | Finish]:
    """The reply's text as it streams, then one :class:`Finish`. Raises a ScraperError rather than end
    a reply early. ``pass_check(challenge)`` is awaited when an exchange meets an anti-bot page.

    In a conversation, ``history`` is the earlier turns (for a plugin whose page sends them) and
    ``conversation`` the dict where the plugin keeps the site conversation's ids; once the reply is
    complete the plugin records the turn there. A message longer than the page allows is an
    :class:`~scraper.InputTooLongError` before anything is sent."""
    conversation = {} if conversation is None else conversation
    state: dict[str, Any] = {"history": [dict(turn) for turn in history], "conversation": conversation}
    retries = {"nonce": 1, "check": 1, "again": 1}
    values = await read_values(site, plugin, bot, timeout)
    check_length(plugin, values, prompt)
    while True:
        try:
            parts: list[str] = []
            async with closing(_attempt(plugin, site, values, prompt, state, timeout)) as attempt:
                async for event in attempt:
                    if isinstance(event, NonceRotated):
                        log.debug("the site handed over a new nonce")
                        values["nonce"] = event.nonce
                        continue
                    if isinstance(event, Rejected):  # _attempt turns a Rejected into a restart
                        continue
                    if isinstance(event, TextDelta):
                        parts.append(event.text)
                    elif isinstance(event, Finish):
                        plugin.record_turn(conversation, prompt, "".join(parts), state)
                    yield event
            return
        except ChallengeMet as met:
            challenge = met.challenge
            if pass_check is None or not retries["check"] or challenge.kind == "block":
                raise ChallengeError(
                    f"{challenge.vendor} answered the chat request with a {challenge.kind} page again. "
                    f"Run `scraper solve {site.origin} --headed`, then retry.",
                    vendor=challenge.vendor,
                    kind=challenge.kind,
                    url=challenge.url,
                ) from None
            retries["check"] -= 1
            log.info("%s challenged the chat request; passing it in the browser", challenge.vendor)
            await pass_check(challenge)
        except _Restart as restart:
            if not retries[restart.cause]:
                if restart.cause == "nonce":
                    raise NonceError(
                        f"{site.origin} rejected a fresh nonce too ({restart.detail}). "
                        "The site may require a login or block this browser; try `scraper inspect`.",
                        status=403,
                        url=site.page_url,
                        body=restart.detail,
                    ) from None
                raise SiteError(f"The site refused the chat again: {restart.detail}", kind="rejected") from None
            retries[restart.cause] -= 1
            for key in restart.rejected.forget if restart.rejected else ():
                state.pop(key, None)
            if restart.cause == "nonce":
                log.info("%s rejected the nonce; fetching a fresh one", site.origin)
                stale = values

                async def refresh(stale: Values = stale) -> Values:
                    return await plugin.refresh_values(site, bot, stale, timeout)

                values = await site.values.refresh(bot, stale, refresh)
            else:
                log.info("%s: %s; starting the chat again", site.origin, restart.detail)


async def _attempt(
    plugin: Plugin, site: ChatSite, values: Values, prompt: str, state: dict[str, Any], timeout: float
) -> AsyncIterator[Event]:
    """One pass through the plugin's exchanges."""
    flow = plugin.chat(values, prompt, state)
    try:
        step: Step = next(flow)
        while True:
            response = await site.send(step.request, timeout)
            try:
                if response.status >= 400:
                    body = await _error_body(response)
                    challenge = detect_challenge(response.url, response.headers, body)
                    if challenge is not None:
                        raise ChallengeMet(challenge)
                    if plugin.nonce_rejected(response.status, body):
                        raise _Restart("nonce", f"HTTP {response.status}")
                    raise plugin.error_for(response.status, body, response.url)
                if step.reader is not None:
                    async with closing(read_reply(step.reader, response)) as events:
                        async for event in events:
                            if isinstance(event, Rejected):
                                raise _Restart("nonce" if event.refresh else "again", event.reason, event)
                            yield event
                    return
                text = (await response.aread()).decode("utf-8", "replace")
                reply = Reply(response.status, response.url, response.headers, text)
            finally:
                await response.aclose()
            step = flow.send(reply)
    except StopIteration:
        raise SiteError(f"The {plugin.label} chat ended without a reply step.", kind="unexpected_response") from None
    finally:
        flow.close()


async def _error_body(response: Response) -> str:
    try:
        return (await response.aread(64 << 10)).decode("utf-8", "replace")
    except ScraperError:
        return ""


async def _drain(reader: Reader, decoder: SSEDecoder, response: Response) -> None:
    """Read what follows a complete reply (up to its terminator, briefly); its text is not used."""
    response.idle_timeout = min(response.idle_timeout, DRAIN_SECONDS)
    try:
        async for chunk in response.aiter_bytes():
            for event in decoder.feed(chunk):
                reader.on_event(event)
            if reader.final:
                return
    except ScraperError:
        return  # the reply is already complete; a stalled or broken tail does not change it


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _read_events(reader: Reader, response: Response, chunks: AsyncIterator[bytes]) -> AsyncIterator[Event]:
    """The events of an SSE body arriving as ``chunks``; raises unless the plugin's terminator came."""
    decoder = SSEDecoder()
    try:
        async for chunk in chunks:
            for event in decoder.feed(chunk):
                for item in reader.on_event(event):
                    yield item
                if reader.final:
                    break
            if reader.final:
                return
            if reader.done:
                await _drain(reader, decoder, response)
                return
        for event in decoder.flush():
            for item in reader.on_event(event):
                yield item
    except StreamError as exc:
        if reader.done:
            return
        exc.received = reader.text
        raise
    if reader.done:
        return
    raise StreamError(
        f"The reply from {response.url} ended without {reader.terminator} after "
        f"{len(reader.text)} characters: the stream was cut, the reply is incomplete. Try again.",
        received=reader.text,
    )


async def read_reply(reader: Reader, response: Response) -> AsyncIterator[Event]:
    """The events of one reply body, streamed (SSE) or whole (JSON); raises unless it is complete."""
    if response.content_type == "text/event-stream":
        async with closing(_read_events(reader, response, response.aiter_bytes())) as events:
            async for event in events:
                yield event
        return
    body = await response.aread()
    text = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        if not text.lstrip().startswith(("data:", "event:", ":")):
            raise SiteError(
                f"{response.url} answered {response.content_type or 'an unknown type'} that is neither a stream "
                "nor JSON; the site may have changed its plugin version.",
                kind="unexpected_response",
                status=response.status,
            ) from None
        async with closing(_read_events(reader, response, _once(body))) as events:  # SSE by another type
            async for event in events:
                yield event
        return
    for event in reader.on_json(parsed):
        yield event
