"""AI Engine (Meow Apps): REST ``mwai`` / ``mwai-ui`` namespaces, ``live``/``end`` events.

The page's ``data-system`` JSON names the bot, the REST root and (for older versions) the nonce. The
plugin's script deletes these attributes once it starts, so they are read from the HTML as served.
Guests get ``restNonce: null`` and must ask ``start_session`` for one.

AI Engine 1.x (up to 1.6.75, mid-2023) is told apart by its ``data-system``: the bot is named by
``chatId`` (or ``id``), there is no ``botId``, and the nonce is always in the page. It posts to
``mwai-bot/v1/chat`` and answers one JSON object; there is no ``start_session``, so a rejected nonce
is renewed by reading the page again.
"""

from __future__ import annotations

import json
import random
import string
import time
from collections.abc import Sequence
from typing import Any

from ..errors import MissingTokenError, PageError, ScraperError, SiteError
from ..wire import Document, HTTPRequest, ServerSentEvent, json_object, logger
from .base import (
    Bot,
    ChatFlow,
    ChatPage,
    Event,
    NonceRotated,
    Plugin,
    Reader,
    Step,
    Values,
    Volatile,
    fetch_page,
)

__all__ = ["AIEnginePlugin", "AIEngineReader"]

log = logger("scraper.aiengine")

CHATBOT_SELECTOR = ".mwai-chatbot-container[data-system], [data-system]"
SUBMIT_PATH = "/mwai-ui/v1/chats/submit"
LEGACY_CHAT_PATH = "/mwai-bot/v1/chat"
START_SESSION_PATH = "/mwai/v1/start_session"
_NONCE_CODES = ("rest_forbidden", "rest_cookie_invalid_nonce")


def _chat_id() -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=11))


def _legacy(system: dict[str, Any]) -> bool:
    """AI Engine 1.x names its bot by ``chatId``/``id`` and has no ``botId``."""
    return "botId" not in system and ("chatId" in system or "id" in system)


def _limit(params: dict[str, Any]) -> int | None:
    """The chatbot's ``textInputMaxLength`` (the plugin refuses longer messages on the server)."""
    try:
        limit = int(params.get("textInputMaxLength") or 0)
    except (TypeError, ValueError):
        return None
    return limit if limit > 0 else None


def _json_attr(attrs: Any, name: str, url: str) -> dict[str, Any]:
    raw = attrs.get(name)
    if not raw:
        return {}
    value = json_object(raw)
    if value is None:
        raise PageError(
            f"The AI Engine chatbot on {url} has a {name} attribute that is not valid JSON. "
            "The page may be truncated or altered by a cache plugin.",
            url=url,
        )
    return value


def _entry(names: list[str], role: str, content: str, stamp: int) -> dict[str, Any]:
    """One earlier message as the script keeps it: ``who`` is the user's or the bot's name; a finished
    reply is marked as no longer querying."""
    if role == "user":
        return {"id": _chat_id(), "role": "user", "content": content, "who": names[0], "timestamp": stamp}
    entry = {"id": _chat_id(), "role": "assistant", "content": content, "who": names[1], "timestamp": stamp}
    return {**entry, "isQuerying": False}


class AIEngineReader(Reader):
    """``live`` chunks are the text; ``end`` carries the full reply and closes it; ``error`` raises."""

    terminator = "its end event"

    def on_event(self, event: ServerSentEvent) -> list[Event]:
        if self.final or not event.data.strip():
            return []
        message = self.parse_json(event.data, "An AI Engine stream event")
        if not isinstance(message, dict):
            return []
        kind = message.get("type")
        if kind == "live":
            if message.get("subtype") in (None, "content"):
                return self.emit(message.get("data"))
            return []  # thinking, status, tool calls, heartbeats: not reply text
        if kind == "error":
            raise SiteError(
                f"The site reported an error: {message.get('data') or 'unknown error'}", kind="upstream_error"
            )
        if kind == "end":
            payload = message.get("data")
            if isinstance(payload, str):
                payload = self.parse_json(payload, "The AI Engine end event")
            return self._end(payload if isinstance(payload, dict) else {})
        return []

    def _end(self, payload: dict[str, Any]) -> list[Event]:
        if payload.get("success") is False:
            raise SiteError(f"The site reported: {payload.get('message') or 'the chat failed'}", kind="error")
        events: list[Event] = []
        token = payload.get("new_token")
        if isinstance(token, str) and token:
            events.append(NonceRotated(token))
        reply = payload.get("reply")
        if isinstance(reply, str):
            sent = self.text
            if reply.startswith(sent):
                events += self.emit(reply[len(sent) :])  # the live chunks fell short: add what they missed
            else:
                log.warning(
                    "the streamed text (%d chars) differs from the final reply (%d chars); keeping the streamed text",
                    len(sent),
                    len(reply),
                )
        usage = payload.get("usage")
        return events + self.finish(usage=usage if isinstance(usage, dict) else None, final=True)

    def on_json(self, body: Any) -> list[Event]:
        if not isinstance(body, dict):
            raise SiteError("Unexpected AI Engine reply: not a JSON object.", kind="unexpected_response")
        return self._end(body)


class AIEnginePlugin(Plugin):
    """AI Engine's chatbot shortcode, guest visitors."""

    name = "aiengine"
    label = "AI Engine"
    generation = "AI Engine (mwai-ui): start_session, then chats/submit with live/end events"
    legacy_generation = "AI Engine 1.x (mwai-bot): the nonce in the page, mwai-bot/v1/chat, one JSON answer"
    family = "aiengine"
    slug = "ai-engine"
    markers = ("mwai-chatbot-container", "mwai-chatbot")
    bot_selector = CHATBOT_SELECTOR
    box_attributes = ("data-system", "data-params")
    ready_selector = ".mwai-chatbot-container[data-system]"
    request_markers = ("/mwai-ui/", "/mwai/", "/mwai-bot/", "rest_route=%2Fmwai", "rest_route=/mwai")
    message_field = "newMessage"
    history = "client"  # the page sends the earlier turns in ``messages``, one ``chatId`` throughout
    volatile = Volatile(
        json_paths=(
            ("chatId",),
            ("clientId",),
            ("messages", "*", "id"),
            ("messages", "*", "timestamp"),
            ("messages", "*", "key"),
        )
    )

    def __init__(self, api_endpoint: str = "/wp-json" + SUBMIT_PATH) -> None:
        self.api_endpoint = api_endpoint

    def find_bots(self, doc: Document) -> list[Bot]:
        bots: list[Bot] = []
        for position, attrs in doc.elements(CHATBOT_SELECTOR):
            system = json_object(attrs.get("data-system")) or {}
            params = json_object(attrs.get("data-params")) or {}
            named = (system.get(key) for key in ("customId", "botId", "id", "chatId"))
            bot_id = str(next((value for value in named if value), "default"))
            name = str(params.get("aiName") or "").strip().rstrip(":").strip() or bot_id
            bot = Bot(bot_id, name, "aiengine", attrs, position)
            if all(b.key != bot.key for b in bots):
                bots.append(bot)
        return bots

    def generation_of(self, bots: Sequence[Bot]) -> str:
        systems = [json_object(bot.attrs.get("data-system")) or {} for bot in bots]
        return self.legacy_generation if systems and all(_legacy(system) for system in systems) else self.generation

    async def read_values(self, page: ChatPage, bot: Bot, timeout: float) -> Values:
        url = page.page_url
        system = _json_attr(bot.attrs, "data-system", url)
        params = _json_attr(bot.attrs, "data-params", url)
        rest_url = str(system.get("restUrl") or "").rstrip("/")
        if _legacy(system):
            return self._legacy_values(page, system, params, rest_url or page.origin + "/wp-json")
        submit_url = f"{rest_url}{SUBMIT_PATH}" if rest_url else page.origin + self.api_endpoint
        values: Values = {
            "bot_id": system.get("botId") or "default",
            "custom_id": system.get("customId"),
            "context_id": system.get("contextId"),
            "rest_url": rest_url or page.origin + "/wp-json",
            "submit_url": submit_url,
            "stream": system.get("stream", True) is not False,
            "nonce": system.get("restNonce"),
            "session": system.get("sessionId"),
            "start_sentence": params.get("startSentence") or "",
            "ai_name": params.get("aiName") or "AI: ",
            "user_name": params.get("userName") or "User: ",
            "input_limit": _limit(params),
        }
        if not values["nonce"]:
            values.update(await self.start_session(page, values["rest_url"], timeout))
        return values

    def _legacy_values(self, page: ChatPage, system: dict[str, Any], params: dict[str, Any], rest_url: str) -> Values:
        if not system.get("restNonce"):
            raise MissingTokenError(
                f"No restNonce in the AI Engine 1.x chatbot on {page.page_url}, and this version has no "
                "start_session to ask for one. Is the page cached for a logged-in user?",
                url=page.page_url,
            )
        return {
            "legacy": True,
            "id": system.get("id"),
            "chat_id": system.get("chatId"),
            "context_id": system.get("contextId"),
            "rest_url": rest_url,
            "submit_url": rest_url + LEGACY_CHAT_PATH,
            "nonce": system["restNonce"],
            "session": system.get("sessionId"),
            "client_id": _chat_id(),
            "start_sentence": params.get("startSentence") or "",
            "ai_name": params.get("aiName") or "AI: ",
            "user_name": params.get("userName") or "User: ",
            "input_limit": _limit(params),
        }

    async def start_session(self, page: ChatPage, rest_url: str, timeout: float) -> Values:
        """Ask the site for a guest nonce, as the plugin's script does (also sets its session cookie)."""
        url = rest_url + START_SESSION_PATH
        response = await page.send(HTTPRequest("POST", url, {"Content-Type": "application/json"}, None), timeout)
        try:
            body = (await response.aread(1 << 20)).decode("utf-8", "replace")
        finally:
            await response.aclose()
        if response.status >= 400:
            raise self.error_for(response.status, body, url)
        data = json_object(body) or {}
        nonce = data.get("restNonce")
        if not nonce:
            raise MissingTokenError(
                f"{page.origin} gave no nonce: the page has restNonce null and start_session gave none either. "
                "The site may have changed its AI Engine version.",
                url=page.page_url,
            )
        return {"nonce": nonce, "session": data.get("sessionId")}

    async def refresh_values(self, page: ChatPage, bot: Bot, stale: Values, timeout: float) -> Values:
        if stale.get("legacy"):  # no start_session in 1.x: the page as it is served now has a fresh nonce
            doc = await fetch_page(page, self, timeout)
            fresh = next((b for b in self.find_bots(doc) if b.key == bot.key), None)
            if fresh is None:
                raise PageError(f"The AI Engine chatbot {bot.id!r} is gone from {page.page_url}.", url=page.page_url)
            return await self.read_values(page, fresh, timeout)
        return {**stale, **await self.start_session(page, stale["rest_url"], timeout)}

    def chat(self, values: Values, prompt: str, state: dict[str, Any]) -> ChatFlow:
        conversation = state.setdefault("conversation", {})
        chat_id = conversation.setdefault("chat_id", _chat_id())
        history = self._messages(values, conversation, state.get("history") or [])
        headers = {"Content-Type": "application/json", "X-WP-Nonce": values["nonce"]}
        if values.get("legacy"):
            legacy = {
                "id": values["id"],
                "chatId": values["chat_id"],
                "session": values["session"],
                "clientId": values["client_id"],
                "contextId": values["context_id"],
                "messages": history,
                "newMessage": prompt,
            }
            request = HTTPRequest("POST", values["submit_url"], headers, json.dumps(legacy, ensure_ascii=False))
            yield Step(request, AIEngineReader())
            return
        body = {
            "botId": values["bot_id"],
            "customId": values["custom_id"],
            "session": values["session"],
            "chatId": chat_id,
            "contextId": values["context_id"],
            "messages": history,
            "newMessage": prompt,
            "newFileId": None,
            "newFileIds": None,
            "stream": values["stream"],
        }
        if values["stream"]:
            headers["Accept"] = "text/event-stream"
        request = HTTPRequest("POST", values["submit_url"], headers, json.dumps(body, ensure_ascii=False))
        yield Step(request, AIEngineReader())

    def _messages(self, values: Values, conversation: dict[str, Any], turns: list[Any]) -> list[dict[str, Any]]:
        """The ``messages`` the script sends: its start sentence, then the earlier turns as it keeps them
        (the conversation's own entries when they are these turns, else entries made for them now)."""
        conversation["names"] = [values["user_name"], values["ai_name"]]
        kept = conversation.get("native")
        lead = 1 if values["start_sentence"] else 0
        wanted = [(turn["role"], turn["content"]) for turn in turns]
        if isinstance(kept, list) and [(m.get("role"), m.get("content")) for m in kept[lead:]] == wanted:
            return kept
        now = int(time.time() * 1000)
        entries: list[dict[str, Any]] = []
        if lead:
            start = {"role": "assistant", "content": values["start_sentence"], "who": values["ai_name"]}
            entries.append({"id": _chat_id(), **start, "timestamp": now, "key": f"start-{now}"})
        entries += [_entry(conversation["names"], role, content, now) for role, content in wanted]
        conversation["native"] = entries
        return entries

    def record_turn(self, conversation: dict[str, Any], prompt: str, reply: str, state: dict[str, Any]) -> None:
        """The user's message and the reply join the kept entries, as the script adds them."""
        names = conversation.get("names") or ["User: ", "AI: "]
        native = conversation.setdefault("native", [])
        native.append(_entry(names, "user", prompt, int(time.time() * 1000)))
        native.append(_entry(names, "assistant", reply, int(time.time() * 1000)))

    def nonce_rejected(self, status: int, body: str) -> bool:
        if status not in (401, 403):
            return False
        return (json_object(body) or {}).get("code") in _NONCE_CODES

    def error_for(self, status: int, body: str, url: str) -> ScraperError:
        data = json_object(body)
        if data and data.get("message"):
            return SiteError(f"The site answered HTTP {status}: {data['message']}", kind="rejected", status=status)
        return super().error_for(status, body, url)
