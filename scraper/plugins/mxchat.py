"""MxChat (``mxchat-basic``): one ``admin-ajax.php`` action, ``data: {"content"}`` events, history on the server.

The page carries the settings in ``var mxchatChat = {…}`` (``ajax_url``, ``nonce``, ``model``,
``enable_streaming_toggle``) and each chat box as ``.mxchat-chatbot-wrapper[data-bot-id]``, inline or
inside a floating ``.floating-chatbot``. The page script makes the session id itself
(``mxchat_chat_`` and nine base-36 characters, kept a day in the cookie ``mxchat_session_id_<bot>``);
the server keeps the conversation per session id, so a later message in the same session continues it:
each conversation here has a session of its own.

A message is a ``FormData`` POST of ``mxchat_stream_chat``: an event stream of ``data: {"content": …}``
lines ending ``data: [DONE]``, or JSON when streaming is off (``mxchat_handle_chat_request``, urlencoded,
answering ``{"text", "html", "session_id"}``). Errors before a stream starts are JSON with
``success: false`` and the text in one of several places; errors inside a stream are
``data: {"error": true, …}``. Version 3.0.5 does not check the nonce on chat; later versions do, and
hand out fresh ones at ``GET /wp-json/mxchat/v1/nonce``.
"""

from __future__ import annotations

import random
import re
import string
from typing import Any
from urllib.parse import urlencode

from ..errors import MissingTokenError, PageError, RateLimitError, ScraperError, SiteError, excerpt
from ..wire import Document, HTTPRequest, ServerSentEvent, json_object, logger
from .base import Bot, ChatFlow, ChatPage, Event, Plugin, Reader, Rejected, Step, Values, Volatile, fetch_page

__all__ = ["ChatSession", "MxChatPlugin", "MxChatReader"]

log = logger("scraper.mxchat")

BOT_SELECTOR = ".mxchat-chatbot-wrapper[data-bot-id]"
CONFIG_VARIABLE = "mxchatChat"
STREAM_ACTION = "mxchat_stream_chat"
JSON_ACTION = "mxchat_handle_chat_request"
NONCE_ROUTE = "/mxchat/v1/nonce"
# The first version known to have the REST nonce route (and to check the chat nonce).
REST_NONCE_SINCE = (3, 2, 7)
# Models the page script streams with (when the site's streaming switch is on).
_STREAMING_MODELS = ("gpt", "o1", "claude", "grok", "deepseek")
_SCRIPT_VERSION = re.compile(r"/plugins/mxchat-basic/[^\"'?]*chat-script\.js\?ver=([\w.\-]+)")


def new_session_id() -> str:
    """A session id as the page script makes one: ``mxchat_chat_`` and nine base-36 characters."""
    return "mxchat_chat_" + "".join(random.choices(string.ascii_lowercase + string.digits, k=9))


class ChatSession:
    """The site's conversation a client is in: its id, replaced for every later chat when the site
    gives the session to another visitor. Shown (and kept out of logs) as the id itself."""

    __slots__ = ("id",)

    def __init__(self, session_id: str | None = None) -> None:
        self.id = session_id or new_session_id()

    def __str__(self) -> str:
        return self.id


def _version_tuple(version: str | None) -> tuple[int, ...] | None:
    numbers = re.findall(r"\d+", version or "")
    return tuple(int(n) for n in numbers[:3]) if numbers else None


def _error_text(body: dict[str, Any]) -> str:
    """The site's words in a ``success: false`` answer: ``data`` as text, ``data.error_message``,
    ``data.message`` or a top-level ``message``, whichever the case uses."""
    data = body.get("data")
    if isinstance(data, str) and data:
        return data
    if isinstance(data, dict):
        for key in ("error_message", "message"):
            if isinstance(data.get(key), str) and data[key]:
                return str(data[key])
    message = body.get("message")
    return str(message) if message else "the chat failed"


class MxChatReader(Reader):
    """``data: {"content"}`` events are the text; ``[DONE]`` ends the reply; ``{"error": true}`` raises.

    A ``reset_session`` answer (the session belongs to another visitor) gives ``session`` a new id, as
    the page script does, and asks for one more try."""

    terminator = "[DONE]"

    def __init__(self, session: ChatSession) -> None:
        super().__init__()
        self.session = session
        self.used = session.id

    def on_event(self, event: ServerSentEvent) -> list[Event]:
        data = event.data.strip()
        if not data or self.final:
            return []
        if data == "[DONE]":
            return self.finish(final=True)
        message = self.parse_json(data, "An MxChat stream event")
        if not isinstance(message, dict):
            return []
        if message.get("error"):
            raise SiteError(
                f"The site reported an error: {message.get('error_message') or message.get('message') or 'unknown'}",
                kind=str(message.get("error_code") or "upstream_error"),
            )
        return self.emit(message.get("content"))

    def on_json(self, body: Any) -> list[Event]:
        if not isinstance(body, dict):
            raise SiteError(f"Unexpected MxChat reply: {excerpt(str(body), 160)}", kind="unexpected_response")
        if body.get("success") is False or body.get("error"):
            return self._failure(body)
        text = body.get("text")
        if not isinstance(text, str):
            raise SiteError(f"Unexpected MxChat reply: {excerpt(str(body), 160)}", kind="unexpected_response")
        return self.emit(text) + self.finish(final=True)

    def _failure(self, body: dict[str, Any]) -> list[Event]:
        text = _error_text(body)
        raw = body.get("data")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if body.get("status") == "rate_limit_exceeded":
            raise RateLimitError(f"The site's chat limit is reached: {text}", status=200)
        if data.get("action") == "reset_session" and not self.parts:
            if self.session.id == self.used:
                self.session.id = new_session_id()
            self.final = True
            return [Rejected(text, refresh=False)]
        if "nonce" in text.lower() and not self.parts:
            self.final = True
            return [Rejected(text, refresh=True)]
        raise SiteError(f"The site reported: {text}", kind=str(data.get("error_code") or data.get("code") or "error"))


class MxChatPlugin(Plugin):
    """MxChat's chat boxes (shortcode or floating widget), guest visitors."""

    name = "mxchat"
    label = "MxChat"
    generation = "MxChat: one admin-ajax action, data/content events, the history on the server per session"
    family = "mxchat"
    slug = "mxchat-basic"
    markers = ("mxchat-chatbot-wrapper", "var mxchatChat", "mxchat-chat-js")
    bot_selector = BOT_SELECTOR
    box_attributes = ("data-bot-id",)
    ready_selector = BOT_SELECTOR
    request_markers = (STREAM_ACTION, JSON_ACTION, "/mxchat/v1/")
    message_field = "message"
    volatile = Volatile(form_fields=frozenset({"session_id"}), ids=(r"mxchat_chat_[a-z0-9]{9}",))
    history = "server"  # the page sends this turn alone; the site keeps the rest per session id

    def version(self, html: str) -> str | None:
        """The version on the chat script's URL (a stylesheet's ``ver`` may be a cache-buster)."""
        match = _SCRIPT_VERSION.search(html)
        return match.group(1) if match else super().version(html)

    def find_bots(self, doc: Document) -> list[Bot]:
        bots: list[Bot] = []
        for position, attrs in doc.elements(BOT_SELECTOR):
            bot_id = str(attrs.get("data-bot-id") or "").strip()
            if not bot_id:
                continue
            bot = Bot(bot_id, "MxChat" if bot_id == "default" else f"MxChat {bot_id}", "mxchat", attrs, position)
            if all(b.key != bot.key for b in bots):
                bots.append(bot)
        return bots

    async def read_values(self, page: ChatPage, bot: Bot, timeout: float) -> Values:
        return self._values(page, bot, Document(page.served_html))

    def _values(self, page: ChatPage, bot: Bot, doc: Document) -> Values:
        config = doc.script_object(CONFIG_VARIABLE)
        if config is None:
            if doc.contains(f"var {CONFIG_VARIABLE}"):
                raise PageError(
                    f"The MxChat settings (var {CONFIG_VARIABLE}) on {page.page_url} are not valid JSON. "
                    "The page may be truncated or altered by a cache plugin.",
                    url=page.page_url,
                )
            raise MissingTokenError(
                f"The MxChat box on {page.page_url} has no settings (var {CONFIG_VARIABLE}) on the page. "
                "The page may be a cached copy; reload it in a browser and check.",
                url=page.page_url,
            )
        model = str(config.get("model") or "")
        stream = config.get("enable_streaming_toggle") == "on" and (
            model.startswith(_STREAMING_MODELS) or model == "openrouter"
        )
        return {
            "nonce": str(config.get("nonce") or ""),
            "ajax_url": str(config.get("ajax_url") or f"{page.origin}/wp-admin/admin-ajax.php"),
            "bot_id": bot.id,
            "stream": stream,
            "page_url": page.page_url,
            "page_title": _title(doc),
            "version": self.version(doc.html),
        }

    async def refresh_values(self, page: ChatPage, bot: Bot, stale: Values, timeout: float) -> Values:
        """The REST nonce route where the version has one, else the page as it is served now."""
        version = _version_tuple(stale.get("version"))
        if version is None or version >= REST_NONCE_SINCE:
            url = page.origin + "/wp-json" + NONCE_ROUTE
            response = await page.send(HTTPRequest("GET", url, {"Accept": "application/json"}), timeout)
            try:
                body = (await response.aread(1 << 20)).decode("utf-8", "replace")
            finally:
                await response.aclose()
            nonce = (json_object(body) or {}).get("nonce") if response.status < 400 else None
            if isinstance(nonce, str) and nonce:
                return {**stale, "nonce": nonce}
            log.info("the nonce route answered HTTP %s; reading the page again", response.status)
        doc = await fetch_page(page, self, timeout)
        fresh = next((b for b in self.find_bots(doc) if b.key == bot.key), bot)
        return self._values(page, fresh, doc)

    def chat(self, values: Values, prompt: str, state: dict[str, Any]) -> ChatFlow:
        # The site keeps a conversation per session id: each conversation has a session of its own (the
        # page's cookie would give every chat of a visitor one), made as the page script makes one.
        conversation = state["conversation"]
        session: ChatSession = state.setdefault("session", ChatSession(conversation.get("session_id")))
        conversation["session_id"] = session.id  # a session the site gave away is replaced on the retry
        fields = (
            ("message", prompt),
            ("session_id", session.id),
            ("nonce", values["nonce"]),
            ("current_page_url", values["page_url"]),
            ("current_page_title", values["page_title"]),
            ("bot_id", values["bot_id"]),
        )
        if values["stream"]:
            form = (("action", STREAM_ACTION), *fields)
            request = HTTPRequest("POST", values["ajax_url"], {}, form=form)
        else:
            headers = {
                "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
                "X-Requested-With": "XMLHttpRequest",
            }
            request = HTTPRequest("POST", values["ajax_url"], headers, urlencode((("action", JSON_ACTION), *fields)))
        yield Step(request, MxChatReader(session))

    def nonce_rejected(self, status: int, body: str) -> bool:
        return status == 403 and (body.strip() == "-1" or "nonce" in body.lower())

    def error_for(self, status: int, body: str, url: str) -> ScraperError:
        data = json_object(body)
        if data and data.get("success") is False:
            return SiteError(f"The site answered HTTP {status}: {_error_text(data)}", kind="error", status=status)
        return super().error_for(status, body, url)


def _title(doc: Document) -> str:
    """The page's title as ``document.title`` gives it (entities decoded, spaces collapsed)."""
    element = doc.soup.title if doc.html else None
    return " ".join(element.get_text().split()) if element is not None else ""
