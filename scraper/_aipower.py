"""The "AI Power" plugin (gpt3-ai-content-generator, up to 2.2): ``admin-ajax.php`` and OpenAI SSE.

The page carries the nonce and post id as ``data-*`` attributes of the chat box (they stay in the
DOM) and again in ``wpaicgParams``. The reply is the upstream OpenAI stream passed through raw.
"""

from __future__ import annotations

import json
import logging
import random
import re
import string
from typing import Any
from urllib.parse import urlencode

from ._errors import MissingTokenError, PageError, SiteError, StreamError, excerpt
from ._html import DOM_ATTRS, element_attrs, script_object
from ._plugin import ChatPlugin, ReplyReader
from ._session import SiteSession
from ._sse import ServerSentEvent
from ._transport import HTTPRequest

__all__ = ["AIPowerPlugin"]

log = logging.getLogger("scraper.aipower")

CHATBOX_SELECTOR = ".wpaicg-chat-shortcode, .wpaicg-chatbox, [data-nonce][data-post-id]"
_PARAMS_JS = (
    "() => { const p = window.wpaicgParams; return p ? {ajax_url: p.ajax_url, search_nonce: p.search_nonce} : null; }"
)
_FLAGS = {
    "tokenLimitReached": "token_limit",
    "messageFlagged": "flagged",
    "ipBanned": "ip_banned",
    "pineconeError": "pinecone_error",
}
_EXPIRED = "the link you followed has expired"


def _client_id() -> str:
    """Ten random characters, like the id the plugin's script keeps in localStorage."""
    return "".join(random.choices(string.ascii_letters + string.digits, k=10))


class AIPowerReader(ReplyReader):
    """OpenAI chunks; ``[DONE]`` or a ``finish_reason`` ends the reply."""

    terminator = "[DONE]"

    def on_event(self, event: ServerSentEvent) -> list[str]:
        data = event.data.strip()
        if not data:
            return []
        if data == "[DONE]":
            self.done = self.final = True
            return []
        if self.done:
            return []  # after finish_reason: the plugin may repeat itself (seen on upstream errors)
        if data == "[LIMITED]":
            raise SiteError("The site's chat limit is reached ([LIMITED]). Try again later.", kind="limited")
        return self._chunk(self._json(data, "An AI Power stream event"))

    def _chunk(self, chunk: Any) -> list[str]:
        if not isinstance(chunk, dict):
            raise StreamError(f"Unexpected AI Power event: {excerpt(json.dumps(chunk), 120)}", received=self.text)
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
        pieces = self._emit(text)
        if choice.get("finish_reason"):
            self.done = True
        return pieces

    def on_json(self, body: Any) -> list[str]:
        self.final = True
        if isinstance(body, dict) and body.get("status") == "success":
            self.done = True
            return self._emit(str(body.get("data") or ""))
        if isinstance(body, dict) and body.get("status") == "error":
            raise SiteError(f"The site reported: {body.get('msg') or 'an error'}", kind="error")
        if isinstance(body, dict) and ("choices" in body or "error" in body):
            pieces = self._chunk(body)
            self.done = True
            return pieces
        raise SiteError(f"Unexpected AI Power reply: {excerpt(json.dumps(body), 160)}", kind="unexpected_response")


class AIPowerPlugin(ChatPlugin):
    """AI Power's shortcode and floating-widget chat boxes."""

    name = "aipower"
    label = "AI Power"

    async def read_values(self, session: SiteSession, timeout: float) -> dict[str, Any]:
        attrs = await session.evaluate(DOM_ATTRS, CHATBOX_SELECTOR)
        params = await session.evaluate(_PARAMS_JS)
        if attrs is None:  # a script may have re-rendered the box: fall back to the HTML as served
            attrs = element_attrs(session.served_html, CHATBOX_SELECTOR)
        if params is None:
            params = script_object(session.served_html, "wpaicgParams")
        return self._values(session, attrs, params)

    def _values(
        self, session: SiteSession, attrs: dict[str, str] | None, params: dict[str, Any] | None
    ) -> dict[str, Any]:
        url = session.page_url
        if attrs is None and not params:
            raise PageError(
                f"No AI Power chat box on {url} (no .wpaicg-chat-shortcode / .wpaicg-chatbox element). "
                "Check the URL points at the page with the chat, or run `scraper inspect URL`.",
                url=url,
            )
        attrs = attrs or {}
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
        kind = attrs.get("data-type") or ("widget" if "wpaicg-chatbox" in attrs.get("class", "") else "shortcode")
        bot_id = attrs.get("data-bot-id") or "0"
        if bot_id not in ("", "0"):
            identity = f"custom_bot_{bot_id}"
        else:
            identity = "widget" if kind == "widget" else "shortcode"
        ajax_url = (params or {}).get("ajax_url") or f"{session.origin}/wp-admin/admin-ajax.php"
        return {
            "nonce": nonce,
            "post_id": post_id,
            "bot_id": bot_id,
            "url": attrs.get("data-url") or url,
            "ajax_url": ajax_url,
            "action": "wpaicg_chatbox_message" if kind == "widget" else "wpaicg_chat_shortcode_message",
            "chatbot_identity": identity,
            "client_id": session.keep("aipower_client_id", _client_id),
            "stream": attrs.get("data-openai_stream_nav") == "1",
        }

    async def refresh_values(self, session: SiteSession, stale: dict[str, Any], timeout: float) -> dict[str, Any]:
        await session.reload(timeout)
        return await self.read_values(session, timeout)

    def build_request(self, values: dict[str, Any], prompt: str) -> HTTPRequest:
        form = [
            ("_wpnonce", values["nonce"]),
            ("post_id", values["post_id"]),
            ("url", values["url"]),
            ("action", values["action"]),
            ("message", prompt),
            ("bot_id", values["bot_id"]),
            ("chatbot_identity", values["chatbot_identity"]),
            ("wpaicg_chat_history", "[]"),
            ("wpaicg_chat_client_id", values["client_id"]),
            ("chat_id", str(random.randint(1000, 9999))),
        ]
        return HTTPRequest(
            "POST",
            values["ajax_url"],
            {"Content-Type": "application/x-www-form-urlencoded"},
            urlencode(form),
        )

    def nonce_rejected(self, status: int, body: str) -> bool:
        return status == 403 and (_EXPIRED in body.lower() or body.strip() == "-1")

    def new_reader(self, session: SiteSession, values: dict[str, Any]) -> ReplyReader:
        return AIPowerReader()
