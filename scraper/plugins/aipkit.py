"""AI Power 2.3+ ("AIPKit", now "AI Puffer"): two steps, a cache POST then an event-stream GET.

Each bot on the page carries a ``data-config`` JSON (``botId``, ``nonce``, ``ajaxUrl``, ``postId``,
``headerName``): on ``.aipkit_chat_container`` for inline bots, on ``.aipkit_popup_wrapper`` for popup
ones (the popup's container has none). A chat first POSTs the message (``aipkit_cache_sse_message``,
``multipart/form-data`` as the page's ``FormData`` sends it) and gets a one-use ``cache_key`` (60 s);
then it GETs the stream (``aipkit_frontend_chat_stream``). The stream step always answers HTTP 200:
errors, a bad nonce included, come in-band as ``event: error``. A bad nonce does not use up the key,
so after a refresh the same key is tried again; a key that is gone starts the chat from step one.
"""

from __future__ import annotations

import random
import string
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from ..errors import MissingTokenError, PageError, ScraperError, SiteError, excerpt
from ..wire import Document, HTTPRequest, ServerSentEvent, json_object, logger
from .base import (
    Bot,
    ChatFlow,
    ChatPage,
    Event,
    Plugin,
    Reader,
    Rejected,
    Step,
    Values,
    Volatile,
    fetch_page,
)

__all__ = ["AIPKitPlugin", "AIPKitReader"]

log = logger("scraper.aipkit")

BOT_SELECTOR = ".aipkit_chat_container[data-config], .aipkit_popup_wrapper[data-config]"
_HAS_NONCE = '[data-config*=\'"nonce":"\']:not([data-config*=\'"nonce":""\'])'
CACHE_ACTION = "aipkit_cache_sse_message"
STREAM_ACTION = "aipkit_frontend_chat_stream"
NONCE_ACTION = "aipkit_get_frontend_chat_nonce"
_NONCE_CODE = "nonce_failure_cache_sse"
# In-band errors of the stream step: a nonce to refresh, or a cache key that is gone.
_BAD_NONCE = ("security check failed", "session has expired", "nonce")
_KEY_GONE = ("message not found in cache", "cached message has expired")


def _client_message_id(bot_id: str) -> str:
    """What the page script sends as ``user_client_message_id``."""
    tail = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
    return f"aipkit-client-msg-{bot_id}-{int(time.time() * 1000)}-{tail}"


def _config(attrs: Any, url: str) -> dict[str, Any]:
    raw = attrs.get("data-config")
    config = json_object(raw)
    if config is None:
        raise PageError(
            f"The AI Power (AIPKit) chat box on {url} has a data-config that is not valid JSON. "
            "The page may be truncated or altered by a cache plugin.",
            url=url,
        )
    return config


class AIPKitReader(Reader):
    """``data: {"delta"}`` events are the text; ``done`` ends the reply; ``error`` ends it badly."""

    terminator = "its done event"

    def __init__(self, *, key_reused: bool = False) -> None:
        super().__init__()
        self.key_reused = key_reused

    def on_event(self, event: ServerSentEvent) -> list[Event]:
        kind = event.event
        if self.final:
            return []
        if kind == "done":
            return self.finish(final=True)
        if not event.data.strip():
            return []
        if kind == "message":
            data = self.parse_json(event.data, "An AIPKit stream event")
            return self.emit(data.get("delta")) if isinstance(data, dict) else []
        if kind == "error":
            return self._error(self.parse_json(event.data, "An AIPKit error event"))
        if kind == "warning":
            data = json_object(event.data) or {}
            log.warning("the site warned: %s", data.get("error") or excerpt(event.data, 120))
        return []  # message_start, status, openai_response_id, citations: not reply text

    def _error(self, data: Any) -> list[Event]:
        message = str((data or {}).get("error") if isinstance(data, dict) else data or "unknown error")
        lowered = message.lower()
        if not self.parts:
            if any(marker in lowered for marker in _BAD_NONCE):
                self.final = True  # nothing of this reply will come: the flow tries again
                return [Rejected(message, refresh=True)]
            if self.key_reused and any(marker in lowered for marker in _KEY_GONE):
                self.final = True
                return [Rejected(message, refresh=False, forget=("cache_key",))]
        raise SiteError(f"The site reported an error: {message}", kind="upstream_error")

    def on_json(self, body: Any) -> list[Event]:
        if isinstance(body, dict) and body.get("success") is False:
            raw = body.get("data")
            data: dict[str, Any] = raw if isinstance(raw, dict) else {}
            raise SiteError(f"The site reported: {data.get('message') or 'an error'}", kind=str(data.get("code")))
        reply = ((body or {}).get("data") or {}).get("reply") if isinstance(body, dict) else None
        if not isinstance(reply, str):
            raise SiteError("Unexpected AIPKit reply: no text in it.", kind="unexpected_response")
        return self.emit(reply) + self.finish(final=True)


class AIPKitPlugin(Plugin):
    """AI Power's chatbots from version 2.3 on: inline and popup bots, several per page."""

    name = "aipkit"
    label = "AI Power (AIPKit)"
    generation = "AI Power 2.3+ (AIPKit): cache POST, then event-stream GET"
    family = "aipower"
    slug = "gpt3-ai-content-generator"
    markers = (
        "aipkit_chat_container",
        "aipkit_popup_wrapper",
        "aipkit_getChatNonceAction",
        "aipkit_chat_config_global",
    )
    bot_selector = BOT_SELECTOR
    box_attributes = ("data-config", "data-bot-id")
    ready_selector = f".aipkit_chat_container{_HAS_NONCE}, .aipkit_popup_wrapper{_HAS_NONCE}"
    request_markers = (CACHE_ACTION, STREAM_ACTION, NONCE_ACTION)
    message_field = "message"
    volatile = Volatile(
        form_fields=frozenset({"user_client_message_id"}),
        query_params=frozenset({"_ts", "session_id", "conversation_uuid", "cache_key"}),
        ids=(r"aipkit_sse_[A-Za-z0-9]{32}", r"aipkit-msg-[0-9a-f]{14}\.\d{8}"),
    )
    history = "server"  # the page sends this turn alone; the site keeps the rest per conversation_uuid

    def find_bots(self, doc: Document) -> list[Bot]:
        bots: list[Bot] = []
        for position, attrs in doc.elements(BOT_SELECTOR):
            config = json_object(attrs.get("data-config")) or {}
            bot_id = str(config.get("botId") or attrs.get("data-bot-id") or "").strip()
            if not bot_id:
                continue
            name = str(config.get("headerName") or "").strip() or f"bot {bot_id}"
            bot = Bot(bot_id, name, "aipkit", attrs, position)
            if all(b.key != bot.key for b in bots):
                bots.append(bot)
        return bots

    async def read_values(self, page: ChatPage, bot: Bot, timeout: float) -> Values:
        return self._values(page, bot, _config(bot.attrs, page.page_url))

    def _values(self, page: ChatPage, bot: Bot, config: dict[str, Any]) -> Values:
        nonce = config.get("nonce")
        if not nonce:
            raise MissingTokenError(
                f"The AI Power (AIPKit) bot {bot.id} on {page.page_url} has no nonce in its data-config. "
                "The page may be a cached copy or need a login; reload it in a browser and check.",
                url=page.page_url,
            )
        try:
            post_id = int(config.get("postId") or 0)
        except (TypeError, ValueError):
            post_id = 0
        return {
            "nonce": str(nonce),
            "bot_id": str(config.get("botId") or bot.id),
            "ajax_url": str(config.get("ajaxUrl") or f"{page.origin}/wp-admin/admin-ajax.php"),
            "post_id": str(post_id) if post_id > 0 else "",
            # The page keeps one guest id for the site (localStorage.aipkit_guest_uuid).
            "session_id": page.keep("aipkit_guest_uuid", lambda: str(uuid.uuid4())),
        }

    async def refresh_values(self, page: ChatPage, bot: Bot, stale: Values, timeout: float) -> Values:
        """The page script's own refresh: ``aipkit_get_frontend_chat_nonce``; else read the page again."""
        form = (("action", NONCE_ACTION), ("bot_id", stale["bot_id"]))
        response = await page.send(HTTPRequest("POST", stale["ajax_url"], {}, form=form), timeout)
        try:
            body = (await response.aread(1 << 20)).decode("utf-8", "replace")
        finally:
            await response.aclose()
        nonce = ((json_object(body) or {}).get("data") or {}).get("nonce") if response.status < 400 else None
        if nonce:
            return {**stale, "nonce": str(nonce)}
        log.info("the nonce refresh answered HTTP %s; reading the page again", response.status)
        doc = await fetch_page(page, self, timeout)
        fresh = next((b for b in self.find_bots(doc) if b.key == bot.key), None)
        if fresh is None:
            raise self.error_for(response.status, body, response.url)
        return self._values(page, fresh, _config(fresh.attrs, page.page_url))

    def chat(self, values: Values, prompt: str, state: dict[str, Any]) -> ChatFlow:
        key = state.get("cache_key")
        reused = key is not None
        if key is None:
            form = (
                ("action", CACHE_ACTION),
                ("message", prompt),
                ("_ajax_nonce", values["nonce"]),
                ("bot_id", values["bot_id"]),
                ("user_client_message_id", _client_message_id(values["bot_id"])),
            )
            reply = yield Step(HTTPRequest("POST", values["ajax_url"], {}, form=form))
            data = reply.json()
            key = ((data or {}).get("data") or {}).get("cache_key") if isinstance(data, dict) else None
            if not key:
                raise SiteError(
                    "The site gave no cache key for the message; try again, or check the chat box in a browser.",
                    kind="unexpected_response",
                )
            state["cache_key"] = key
        # The site keeps the conversation's turns per bot, session and conversation id: a conversation
        # goes on with the same two ids (a new one makes them as the page does on its first send).
        conversation = state.setdefault("conversation", {})
        conversation.setdefault("session_id", values["session_id"])
        conversation.setdefault("conversation_uuid", str(uuid.uuid4()))
        query = [
            ("action", STREAM_ACTION),
            ("cache_key", key),
            ("bot_id", values["bot_id"]),
            ("session_id", conversation["session_id"]),
            ("conversation_uuid", conversation["conversation_uuid"]),
        ]
        if values["post_id"]:
            query.append(("post_id", values["post_id"]))
        query += [("_ts", str(int(time.time() * 1000))), ("_ajax_nonce", values["nonce"])]
        url = values["ajax_url"] + ("&" if "?" in values["ajax_url"] else "?") + urlencode(query)
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        yield Step(HTTPRequest("GET", url, headers), AIPKitReader(key_reused=reused))

    def nonce_rejected(self, status: int, body: str) -> bool:
        data = json_object(body) or {}
        code = (data.get("data") or {}).get("code") if isinstance(data.get("data"), dict) else None
        return status == 403 and (code == _NONCE_CODE or (code is None and "nonce" in body.lower()))

    def error_for(self, status: int, body: str, url: str) -> ScraperError:
        data = json_object(body) or {}
        raw = data.get("data")
        detail: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if detail.get("message"):
            return SiteError(
                f"The site answered HTTP {status}: {detail['message']}", kind=str(detail.get("code")), status=status
            )
        return super().error_for(status, body, url)
