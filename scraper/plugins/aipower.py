"""AI Power legacy (gpt3-ai-content-generator up to 2.2): ``admin-ajax.php`` and OpenAI SSE.

The page carries the nonce and post id as ``data-*`` attributes of the chat box (they stay in the
DOM) and again in ``wpaicgParams``. The reply is the upstream OpenAI stream passed through raw.
"""

from __future__ import annotations

import json
import random
import re
import string
from typing import Any
from urllib.parse import urlencode

from ..errors import MissingTokenError, SiteError, StreamError
from ..wire import Document, HTTPRequest, ServerSentEvent
from .base import Bot, ChatFlow, ChatPage, Event, Plugin, Reader, Step, Values, Volatile, fetch_page

__all__ = ["AIPowerPlugin", "AIPowerReader"]

CHATBOX_SELECTOR = ".wpaicg-chat-shortcode, .wpaicg-chatbox, [data-nonce][data-post-id]"
_FLAGS = {
    "tokenLimitReached": "token_limit",
    "messageFlagged": "flagged",
    "ipBanned": "ip_banned",
    "pineconeError": "pinecone_error",
}
_EXPIRED = "the link you followed has expired"
HUMAN, AI = "Human: ", "AI: "  # how the script prefixes the texts of its history


def _client_id() -> str:
    """Ten random characters, like the id the plugin's script keeps in localStorage."""
    return "".join(random.choices(string.ascii_letters + string.digits, k=10))


class AIPowerReader(Reader):
    """OpenAI chunks; ``[DONE]`` or a ``finish_reason`` ends the reply."""

    terminator = "[DONE]"

    def on_event(self, event: ServerSentEvent) -> list[Event]:
        data = event.data.strip()
        if not data:
            return []
        if data == "[DONE]":
            return self.finish(final=True)
        if self.done:
            return []  # after finish_reason: the plugin may repeat itself (seen on upstream errors)
        if data == "[LIMITED]":
            raise SiteError("The site's chat limit is reached ([LIMITED]). Try again later.", kind="limited")
        return self._chunk(self.parse_json(data, "An AI Power stream event"))

    def _chunk(self, chunk: Any) -> list[Event]:
        if not isinstance(chunk, dict):
            raise StreamError(f"Unexpected AI Power event: a JSON {type(chunk).__name__}.", received=self.text)
        if chunk.get("error"):
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise SiteError(f"The site reported an error: {message}", kind="upstream_error")
        for flag, kind in _FLAGS.items():
            if chunk.get(flag):
                raise SiteError(f"The site refused the message: {chunk.get('msg') or flag}", kind=kind)
        choices = chunk.get("choices")
        if not choices:
            if chunk.get("msg"):
                raise SiteError(f"The site reported: {chunk['msg']}", kind="error")
            return []
        choice = choices[0] or {}
        delta = choice.get("delta") or {}
        text = delta.get("content")
        if text is None:
            text = choice.get("text")
        events = self.emit(text)
        if choice.get("finish_reason"):
            events += self.finish(str(choice["finish_reason"]), chunk.get("usage"))
        return events

    def on_json(self, body: Any) -> list[Event]:
        self.final = True
        if isinstance(body, dict) and body.get("status") == "success":
            return self.emit(str(body.get("data") or "")) + self.finish(final=True)
        if isinstance(body, dict) and body.get("status") == "error":
            raise SiteError(f"The site reported: {body.get('msg') or 'an error'}", kind="error")
        if isinstance(body, dict) and ("choices" in body or "error" in body):
            return self._chunk(body) + self.finish(final=True)
        raise SiteError("Unexpected AI Power reply: neither text nor an error.", kind="unexpected_response")


class AIPowerPlugin(Plugin):
    """AI Power's shortcode and floating-widget chat boxes (the generation before AIPKit)."""

    name = "aipower"
    label = "AI Power"
    generation = "AI Power up to 2.2 (wpaicg): one admin-ajax POST, OpenAI stream passed through"
    family = "aipower"
    slug = "gpt3-ai-content-generator"
    markers = ("wpaicg-chat-shortcode", "wpaicg-chatbox", "wpaicgParams")
    bot_selector = CHATBOX_SELECTOR
    box_attributes = ("data-bot-id", "data-nonce", "data-post-id")
    ready_selector = (
        ".wpaicg-chat-shortcode[data-nonce]:not([data-nonce='']), .wpaicg-chatbox[data-nonce]:not([data-nonce=''])"
    )
    request_markers = ("wpaicg_chat_shortcode_message", "wpaicg_chatbox_message")
    message_field = "message"
    volatile = Volatile(
        form_fields=frozenset({"chat_id", "wpaicg_chat_client_id"}),
        json_paths=(("wpaicg_chat_history", "*", "id"),),  # each earlier reply's chat_id
    )
    history = "client"  # the page sends the earlier turns in ``wpaicg_chat_history``

    def find_bots(self, doc: Document) -> list[Bot]:
        bots: list[Bot] = []
        for position, attrs in doc.elements(CHATBOX_SELECTOR):
            kind = _kind(attrs)
            number = attrs.get("data-bot-id") or "0"
            custom = number not in ("", "0")
            bot = Bot(
                id=number if custom else kind,
                name=f"custom bot {number}" if custom else f"{kind} chat",
                plugin="aipower",
                attrs=attrs,
                position=position,
            )
            if all(b.key != bot.key for b in bots):
                bots.append(bot)
        return bots

    async def read_values(self, page: ChatPage, bot: Bot, timeout: float) -> Values:
        return self._values(page, bot.attrs, Document(page.served_html).script_object("wpaicgParams"))

    def _values(self, page: ChatPage, attrs: dict[str, str] | Any, params: dict[str, Any] | None) -> Values:
        url = page.page_url
        nonce = attrs.get("data-nonce") or (params or {}).get("search_nonce")
        post_id = re.sub(r"\D", "", attrs.get("data-post-id", ""))
        if not nonce:
            raise MissingTokenError(
                f"The AI Power chat box on {url} has no nonce (data-nonce / wpaicgParams.search_nonce). "
                "The page may be a cached copy or need a login; reload it in a browser and check.",
                url=url,
            )
        if not post_id:
            raise MissingTokenError(
                f"The AI Power chat box on {url} has no post id (data-post-id). "
                "Point the URL at the page that shows the chat box.",
                url=url,
            )
        kind = _kind(attrs)
        bot_id = attrs.get("data-bot-id") or "0"
        if bot_id not in ("", "0"):
            identity = f"custom_bot_{bot_id}"
        else:
            identity = "widget" if kind == "widget" else "shortcode"
        ajax_url = (params or {}).get("ajax_url") or f"{page.origin}/wp-admin/admin-ajax.php"
        return {
            "nonce": nonce,
            "post_id": post_id,
            "bot_id": bot_id,
            "url": attrs.get("data-url") or url,
            "ajax_url": ajax_url,
            "action": "wpaicg_chatbox_message" if kind == "widget" else "wpaicg_chat_shortcode_message",
            "chatbot_identity": identity,
            "client_id": page.keep("aipower_client_id", _client_id),
            "stream": attrs.get("data-openai_stream_nav") == "1",
        }

    async def refresh_values(self, page: ChatPage, bot: Bot, stale: Values, timeout: float) -> Values:
        doc = await fetch_page(page, self, timeout)
        fresh = next((b for b in self.find_bots(doc) if b.key == bot.key), None)
        return self._values(page, fresh.attrs if fresh else {}, doc.script_object("wpaicgParams"))

    def chat(self, values: Values, prompt: str, state: dict[str, Any]) -> ChatFlow:
        conversation = state.setdefault("conversation", {})
        chat_id = state.setdefault("chat_id", random.randint(1000, 9999))
        history = _native(conversation, state.get("history") or [])
        form = [
            ("_wpnonce", values["nonce"]),
            ("post_id", values["post_id"]),
            ("url", values["url"]),
            ("action", values["action"]),
            ("message", prompt),
            ("bot_id", values["bot_id"]),
            ("chatbot_identity", values["chatbot_identity"]),
            ("wpaicg_chat_history", json.dumps(history, ensure_ascii=False, separators=(",", ":"))),
            ("wpaicg_chat_client_id", values["client_id"]),
            ("chat_id", str(chat_id)),
        ]
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        yield Step(HTTPRequest("POST", values["ajax_url"], headers, urlencode(form)), AIPowerReader())

    def record_turn(self, conversation: dict[str, Any], prompt: str, reply: str, state: dict[str, Any]) -> None:
        """The message and the reply join the history as the script keeps it: the reply under the
        request's ``chat_id``, its text exactly as received."""
        native = conversation.setdefault("native", [])
        native += [{"id": "", "text": HUMAN + prompt}, {"id": state.get("chat_id", ""), "text": AI + reply}]

    def nonce_rejected(self, status: int, body: str) -> bool:
        return status == 403 and (_EXPIRED in body.lower() or body.strip() == "-1")


def _native(conversation: dict[str, Any], turns: list[Any]) -> list[dict[str, Any]]:
    """The ``wpaicg_chat_history`` the script sends: the conversation's own entries when they are these
    turns, else entries made for them now ("Human: " and "AI: " texts, each reply with its chat id)."""
    wanted = [(HUMAN if turn["role"] == "user" else AI) + turn["content"] for turn in turns]
    kept = conversation.get("native")
    if isinstance(kept, list) and [entry.get("text") for entry in kept] == wanted:
        return kept
    entries = [{"id": "" if text.startswith(HUMAN) else random.randint(1000, 9999), "text": text} for text in wanted]
    conversation["native"] = entries
    return entries


def _kind(attrs: Any) -> str:
    """ "widget" or "shortcode": the two chat boxes of AI Power legacy."""
    return attrs.get("data-type") or ("widget" if "wpaicg-chatbox" in attrs.get("class", "") else "shortcode")
