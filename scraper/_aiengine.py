"""The "AI Engine" plugin (Meow Apps): REST ``mwai`` / ``mwai-ui`` namespaces, ``live``/``end`` events.

The page's ``data-system`` JSON names the bot, the REST root and (for older versions) the nonce. The
plugin's script deletes these attributes once it starts, so they are read from the HTML as served.
Guests get ``restNonce: null`` and must ask ``start_session`` for one.
"""

from __future__ import annotations

import json
import logging
import random
import string
import time
from typing import Any

from ._errors import MissingTokenError, PageError, ScraperError, SiteError, excerpt
from ._html import DOM_ATTRS, element_attrs
from ._plugin import ChatPlugin, ReplyReader
from ._session import SiteSession
from ._sse import ServerSentEvent
from ._transport import HTTPRequest

__all__ = ["AIEnginePlugin"]

log = logging.getLogger("scraper.aiengine")

CHATBOT_SELECTOR = ".mwai-chatbot-container[data-system], [data-system]"
SUBMIT_PATH = "/mwai-ui/v1/chats/submit"
START_SESSION_PATH = "/mwai/v1/start_session"
_NONCE_CODES = ("rest_forbidden", "rest_cookie_invalid_nonce")


def _chat_id() -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=11))


def _json_attr(attrs: dict[str, str], name: str, url: str) -> dict[str, Any]:
    raw = attrs.get(name)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise PageError(
            f"The AI Engine chatbot on {url} has a {name} attribute that is not valid JSON "
            f"({excerpt(raw, 80)}). The page may be truncated or altered by a cache plugin.",
            url=url,
        ) from None
    if not isinstance(value, dict):
        raise PageError(f"The AI Engine chatbot on {url} has a {name} that is not an object.", url=url)
    return value


class AIEngineReader(ReplyReader):
    """``live`` chunks are the text; ``end`` carries the full reply and closes it; ``error`` raises."""

    terminator = "its end event"

    def __init__(self, on_new_token: Any = None) -> None:
        super().__init__()
        self._on_new_token = on_new_token

    def on_event(self, event: ServerSentEvent) -> list[str]:
        if self.final or not event.data.strip():
            return []
        message = self._json(event.data, "An AI Engine stream event")
        if not isinstance(message, dict):
            return []
        kind = message.get("type")
        if kind == "live":
            if message.get("subtype") in (None, "content"):
                return self._emit(message.get("data"))
            return []  # thinking, status, tool calls, heartbeats: not reply text
        if kind == "error":
            raise SiteError(
                f"The site reported an error: {message.get('data') or 'unknown error'}", kind="upstream_error"
            )
        if kind == "end":
            payload = message.get("data")
            if isinstance(payload, str):
                payload = self._json(payload, "The AI Engine end event")
            return self._finish(payload if isinstance(payload, dict) else {})
        return []

    def _finish(self, payload: dict[str, Any]) -> list[str]:
        if payload.get("success") is False:
            raise SiteError(f"The site reported: {payload.get('message') or 'the chat failed'}", kind="error")
        token = payload.get("new_token")
        if token and self._on_new_token is not None:
            self._on_new_token(token)
        self.done = self.final = True
        reply = payload.get("reply")
        if not isinstance(reply, str):
            return []
        sent = self.text
        if reply == sent:
            return []
        if reply.startswith(sent):
            return self._emit(reply[len(sent) :])  # the live chunks fell short: add what they missed
        log.warning(
            "the streamed text (%d chars) differs from the final reply (%d chars); keeping the streamed text",
            len(sent),
            len(reply),
        )
        return []

    def on_json(self, body: Any) -> list[str]:
        if not isinstance(body, dict):
            raise SiteError(f"Unexpected AI Engine reply: {excerpt(json.dumps(body), 160)}", kind="unexpected_response")
        return self._finish(body)


class AIEnginePlugin(ChatPlugin):
    """AI Engine's chatbot shortcode, guest visitors."""

    name = "aiengine"
    label = "AI Engine"

    def __init__(self, api_endpoint: str = "/wp-json" + SUBMIT_PATH) -> None:
        self.api_endpoint = api_endpoint

    async def read_values(self, session: SiteSession, timeout: float) -> dict[str, Any]:
        url = session.page_url
        attrs = element_attrs(session.served_html, CHATBOT_SELECTOR)
        if attrs is None:  # built by a script rather than served: take the live DOM
            attrs = await session.evaluate(DOM_ATTRS, CHATBOT_SELECTOR)
        if attrs is None:
            raise PageError(
                f"No AI Engine chatbot on {url} (no .mwai-chatbot-container with data-system). "
                "Check the URL points at the page with the chat, or run `scraper inspect URL`.",
                url=url,
            )
        system = _json_attr(attrs, "data-system", url)
        params = _json_attr(attrs, "data-params", url)
        rest_url = str(system.get("restUrl") or "").rstrip("/")
        submit_url = f"{rest_url}{SUBMIT_PATH}" if rest_url else session.origin + self.api_endpoint
        values: dict[str, Any] = {
            "bot_id": system.get("botId") or "default",
            "custom_id": system.get("customId"),
            "context_id": system.get("contextId"),
            "rest_url": rest_url or session.origin + "/wp-json",
            "submit_url": submit_url,
            "stream": system.get("stream", True) is not False,
            "nonce": system.get("restNonce"),
            "session": system.get("sessionId"),
            "start_sentence": params.get("startSentence") or "",
            "ai_name": params.get("aiName") or "AI: ",
        }
        if not values["nonce"]:
            values.update(await self.start_session(session, values["rest_url"], timeout))
        return values

    async def start_session(self, session: SiteSession, rest_url: str, timeout: float) -> dict[str, Any]:
        """Ask the site for a guest nonce, as the plugin's script does (also sets its session cookie)."""
        url = rest_url + START_SESSION_PATH
        response = await session.fetch(HTTPRequest("POST", url, {"Content-Type": "application/json"}, None), timeout)
        try:
            body = (await response.aread(1 << 20)).decode("utf-8", "replace")
        finally:
            await response.aclose()
        if response.status >= 400:
            raise self.error_for(response.status, body, url)
        try:
            data = json.loads(body)
        except ValueError:
            data = {}
        nonce = data.get("restNonce") if isinstance(data, dict) else None
        if not nonce:
            raise MissingTokenError(
                f"{session.origin} gave no nonce: the page has restNonce null and start_session answered "
                f"{excerpt(body, 120) or '(empty)'}. The site may have changed its AI Engine version.",
                url=session.page_url,
            )
        return {"nonce": nonce, "session": data.get("sessionId")}

    async def refresh_values(self, session: SiteSession, stale: dict[str, Any], timeout: float) -> dict[str, Any]:
        return {**stale, **await self.start_session(session, stale["rest_url"], timeout)}

    def build_request(self, values: dict[str, Any], prompt: str) -> HTTPRequest:
        now = int(time.time() * 1000)
        history = []
        if values["start_sentence"]:
            history.append(
                {
                    "id": _chat_id(),
                    "role": "assistant",
                    "content": values["start_sentence"],
                    "who": values["ai_name"],
                    "timestamp": now,
                    "key": f"start-{now}",
                }
            )
        body = {
            "botId": values["bot_id"],
            "customId": values["custom_id"],
            "session": values["session"],
            "chatId": _chat_id(),
            "contextId": values["context_id"],
            "messages": history,
            "newMessage": prompt,
            "newFileId": None,
            "newFileIds": None,
            "stream": values["stream"],
        }
        headers = {"Content-Type": "application/json", "X-WP-Nonce": values["nonce"]}
        if values["stream"]:
            headers["Accept"] = "text/event-stream"
        return HTTPRequest("POST", values["submit_url"], headers, json.dumps(body, ensure_ascii=False))

    def nonce_rejected(self, status: int, body: str) -> bool:
        if status not in (401, 403):
            return False
        try:
            code = json.loads(body).get("code")
        except (ValueError, AttributeError):
            return False
        return code in _NONCE_CODES

    def error_for(self, status: int, body: str, url: str) -> ScraperError:
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("message"):
            return SiteError(f"The site answered HTTP {status}: {data['message']}", kind="rejected", status=status)
        return super().error_for(status, body, url)

    def new_reader(self, session: SiteSession, values: dict[str, Any]) -> ReplyReader:
        def rotate(token: str) -> None:
            log.debug("the site handed over a new nonce")
            values["nonce"] = token

        return AIEngineReader(on_new_token=rotate)
