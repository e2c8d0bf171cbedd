"""What every chat plugin protocol provides, and the one chat flow that drives them all.

A plugin module (``_aipower``, ``_aiengine``) knows its page markup, its request, its events and how
its site says "bad nonce". The flow here is shared: load the page, read the values, send the request
from the page, retry once with fresh values when the nonce is rejected, and turn the body into text.
"""

from __future__ import annotations

import abc
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from ._antibot import detect
from ._errors import ChallengeError, HTTPError, NonceError, ScraperError, SiteError, StreamError, excerpt
from ._session import SiteSession
from ._sse import ServerSentEvent, SSEDecoder
from ._transport import HTTPRequest, StreamingResponse

__all__ = ["ChatPlugin", "ReplyReader", "run_chat"]

log = logging.getLogger("scraper.chat")

# After a reply is complete but before the stream's terminator, wait this long for the rest, so the
# site sees the response read to its end rather than a dropped connection.
DRAIN_SECONDS = 1.0


class ReplyReader(abc.ABC):
    """Turns one reply's events into text; knows the plugin's terminator and its error events."""

    def __init__(self) -> None:
        self.done = False  # the reply's text is complete
        self.final = False  # the stream's own terminator came: nothing more will arrive
        self.parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def _emit(self, text: str | None) -> list[str]:
        if not text:
            return []
        self.parts.append(text)
        return [text]

    def _json(self, text: str, what: str) -> Any:
        """Parse one event's JSON; a garbled event means the stream cannot be trusted."""
        try:
            return json.loads(text)
        except ValueError:
            raise StreamError(f"{what} is not JSON: {excerpt(text, 120)}", received=self.text) from None

    @abc.abstractmethod
    def on_event(self, event: ServerSentEvent) -> list[str]:
        """Text pieces carried by one streamed event (may set :attr:`done` or raise)."""

    @abc.abstractmethod
    def on_json(self, body: Any) -> list[str]:
        """Text of a non-streaming JSON reply (or raise the error it reports)."""

    @property
    @abc.abstractmethod
    def terminator(self) -> str:
        """How this plugin marks the end of a reply, for error messages."""


class ChatPlugin(abc.ABC):
    """One WordPress chat plugin's protocol."""

    name: ClassVar[str]
    label: ClassVar[str]

    @abc.abstractmethod
    async def read_values(self, session: SiteSession, timeout: float) -> dict[str, Any]:
        """Read what the chat request needs (nonce, ids, endpoint) from the loaded page."""

    @abc.abstractmethod
    async def refresh_values(self, session: SiteSession, stale: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Get a fresh nonce after the site rejected ``stale``."""

    @abc.abstractmethod
    def build_request(self, values: dict[str, Any], prompt: str) -> HTTPRequest:
        """The chat request, exactly as the plugin's own page script sends it."""

    @abc.abstractmethod
    def nonce_rejected(self, status: int, body: str) -> bool:
        """True when an error response means "your nonce is bad": worth one refresh and retry."""

    @abc.abstractmethod
    def new_reader(self, session: SiteSession, values: dict[str, Any]) -> ReplyReader:
        """A reader for one reply."""

    def error_for(self, status: int, body: str, url: str) -> ScraperError:
        """The error for a non-2xx answer that is not a nonce rejection."""
        return HTTPError(
            f"{url} answered HTTP {status}: {excerpt(body, 200) or '(empty body)'}",
            status=status,
            url=url,
            body=excerpt(body),
        )

    async def values(self, session: SiteSession, timeout: float) -> dict[str, Any]:
        """Cached values for this site, read from the page on first use."""
        cached = session.values.get(self.name)
        if cached is None:
            cached = session.values[self.name] = await self.read_values(session, timeout)
        return cached

    async def refreshed(self, session: SiteSession, stale: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Fresh values, fetched once even when several chats hit the same rejection."""
        async with session.refresh_lock:
            current = session.values.get(self.name)
            if current is not None and current is not stale:
                return current  # another chat already refreshed
            log.info("%s rejected the nonce; fetching a fresh one", session.origin)
            fresh = await self.refresh_values(session, stale, timeout)
            session.values[self.name] = fresh
            return fresh


async def _error_body(response: StreamingResponse) -> str:
    try:
        return (await response.aread(64 << 10)).decode("utf-8", "replace")
    except ScraperError:
        return ""


async def run_chat(
    plugin: ChatPlugin,
    session: SiteSession,
    prompt: str,
    *,
    timeout: float,
    values: dict[str, Any] | None = None,
) -> AsyncIterator[str]:
    """Stream one reply's text. Raises a :class:`ScraperError` rather than return a partial reply."""
    await session.open(timeout)
    current = values if values is not None else await plugin.values(session, timeout)
    nonce_retry = challenge_retry = True
    while True:
        request = plugin.build_request(current, prompt)
        response = await session.fetch(request, timeout)
        try:
            if response.status >= 400:
                body = await _error_body(response)
                challenge = detect(response.url, response.headers, body)
                if challenge is not None:
                    if challenge_retry and challenge.kind != "block":
                        # Pass the check in the page (a reload runs it), then ask again once.
                        challenge_retry = False
                        log.info("%s challenged the chat request; passing it in the page", challenge.vendor)
                        await session.reload(timeout)
                        current = await plugin.values(session, timeout)
                        continue
                    raise ChallengeError(
                        f"{challenge.vendor} answered the chat request with a {challenge.kind} page again. "
                        f"Run `scraper solve {session.origin} --headed`, then retry.",
                        vendor=challenge.vendor,
                        kind=challenge.kind,
                        url=response.url,
                    )
                if plugin.nonce_rejected(response.status, body):
                    if nonce_retry:
                        nonce_retry = False
                        current = await plugin.refreshed(session, current, timeout)
                        continue
                    raise NonceError(
                        f"{session.origin} rejected a fresh nonce too (HTTP {response.status}: {excerpt(body, 120)}). "
                        "The site may require a login or block this browser; try `scraper inspect`.",
                        status=response.status,
                        url=response.url,
                        body=excerpt(body),
                    )
                raise plugin.error_for(response.status, body, response.url)
            reader = plugin.new_reader(session, current)
            async for text in _read_reply(reader, response):
                yield text
            return
        finally:
            await response.aclose()


async def _drain(reader: ReplyReader, decoder: SSEDecoder, response: StreamingResponse) -> None:
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


async def _read_events(
    reader: ReplyReader, response: StreamingResponse, chunks: AsyncIterator[bytes]
) -> AsyncIterator[str]:
    """The text of an SSE body arriving as ``chunks``; raises unless the plugin's terminator came."""
    decoder = SSEDecoder()
    try:
        async for chunk in chunks:
            for event in decoder.feed(chunk):
                for text in reader.on_event(event):
                    yield text
                if reader.final:
                    break
            if reader.final:
                return
            if reader.done:
                await _drain(reader, decoder, response)
                return
        for event in decoder.flush():
            for text in reader.on_event(event):
                yield text
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


async def _read_reply(reader: ReplyReader, response: StreamingResponse) -> AsyncIterator[str]:
    if response.content_type == "text/event-stream":
        async for text in _read_events(reader, response, response.aiter_bytes()):
            yield text
        return
    body = await response.aread()
    text = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        if not text.lstrip().startswith(("data:", "event:")):
            raise SiteError(
                f"{response.url} answered {response.content_type or 'an unknown type'} that is neither a stream "
                f"nor JSON: {excerpt(text, 160)}",
                kind="unexpected_response",
                status=response.status,
            ) from None
        async for piece in _read_events(reader, response, _once(body)):  # SSE sent with another content type
            yield piece
        return
    for piece in reader.on_json(parsed):
        yield piece
