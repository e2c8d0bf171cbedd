"""Kognetiks Chatbot (slug ``chatbot-chatgpt``, 2.4.x): one admin-ajax action answering one JSON object.

The page carries two config objects both named ``kchat_settings`` in one inline script; the second
(the shortcode's, no nonces) wins, so the plugin's own script asks ``chatbot_chatgpt_refresh_nonce``
for the message nonce before its first message. This client does the same.

A message is ``chatbot_chatgpt_send_message`` (form-encoded); the answer is
``{"success":true,"data":"<html>"}``: the model's text, Markdown links turned into HTML, then
``<br><br>`` and an optional "learnings" block of links to the site's posts. Errors come three ways:
HTTP 403 (nonce, session id), HTTP 429 (10 guest messages a rolling minute per IP), and, for upstream
failures and duplicate message ids, ``success: true`` with a canned sentence. Each of these is raised
as its typed error here, never returned as a reply.

The site locks a conversation per (assistant, user, page, session id) while it is answered, and a
second message meanwhile is queued and its answer never sent. The session id is only checked for its
shape, so each chat here uses a session id of its own: chats at once never meet that lock. History
is one store for the whole site (every visitor's last turns go to the model), which no client can
choose or clear.
"""

from __future__ import annotations

import html
import json
import random
import re
import secrets
import string
import time
from typing import Any
from urllib.parse import urlencode

from ..errors import MissingTokenError, RateLimitError, ScraperError, SiteError, excerpt
from ..wire import Document, HTTPRequest, ServerSentEvent, json_object, logger
from .base import Bot, ChatFlow, ChatPage, Event, Plugin, Reader, Rejected, Step, Values, Volatile

__all__ = ["CANNED_ERRORS", "KognetiksPlugin", "KognetiksReader", "model_text", "page_configs"]

log = logger("scraper.kognetiks")

SEND_ACTION = "chatbot_chatgpt_send_message"
REFRESH_ACTION = "chatbot_chatgpt_refresh_nonce"
QUEUE_ACTION = "chatbot_chatgpt_get_queue_status"
BOX_SELECTOR = "#chatbot-chatgpt"
CONFIG_VARIABLE = "kchat_settings"
# The window of the site's guest rate limit: its counter lives 60 s after the last counted message.
RATE_WINDOW_SECONDS = 60.0
LEARNINGS_CUT = "<br><br>"
# The plugin's canned replies for a failed model call (``$errorResponses``), sent as success:true.
CANNED_ERRORS = (
    "It seems there may have been an issue with the API. Let's try again later.",
    "Unfortunately, we might have encountered a problem with the API. Please give it another shot in a little while.",
    "I apologize, but it appears there's a hiccup with the API at the moment. We can attempt this again later.",
    "The API seems to be experiencing difficulties right now. We can come back to this when it's resolved.",
    "I'm sorry, but it seems like there's an error from the API side. Please retry in a bit.",
    "There might be a temporary issue with the API. Please try your request again in a little while.",
    "The API encountered an error, but don't worry, it happens. Let's give it another shot later.",
    "It looks like there could be a technical problem with the API. Feel free to try again in a bit to see if "
    "things are working smoothly.",
)
_ERROR_PREFIX = "Error: "  # the plugin's own failures before the model (duplicate id, missing key) read so
_VERSION = re.compile(r'"chatbot_chatgpt_version"\s*:\s*"([\w.\-]+)"')
# What the server made of the model's Markdown (chatbot_chatgpt_check_for_links_and_images), undone.
_LINK = re.compile(r'<span><a href="([^"]*)" target="_blank">(.*?)</a></span>', re.S)
_IMAGE = re.compile(r'<span><center><img src="([^"]*)" alt="([^"]*)" style="[^"]*" /></center></span>', re.S)


def page_configs(source: str) -> list[dict[str, Any]]:
    """Every ``kchat_settings`` object literal in the page's scripts, in page order (``var``, ``let``, bare)."""
    found: list[dict[str, Any]] = []
    decoder = json.JSONDecoder()
    for match in re.finditer(rf"\b{CONFIG_VARIABLE}\s*=\s*(?=\{{)", source):
        try:
            value, _ = decoder.raw_decode(source, match.end())
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def model_text(data: str) -> str:
    """The model's text inside the plugin's reply HTML: the learnings block cut off, the links and
    images the server made of Markdown put back as Markdown, entities decoded; line breaks kept."""
    cut = data.rfind(LEARNINGS_CUT)  # the learnings block holds no <br><br>; the model's text may
    text = data[:cut] if cut >= 0 else data
    text = _IMAGE.sub(lambda m: f"![{m.group(2)}]({m.group(1)})", text)
    text = _LINK.sub(lambda m: f"[{m.group(2)}]({m.group(1)})", text)
    return html.unescape(text)


def canned_error(text: str) -> str | None:
    """The site's own failure sentence when ``text`` (a success reply's model text) is one, else None."""
    stripped = text.strip()
    if stripped in CANNED_ERRORS:
        return stripped
    if stripped.startswith(_ERROR_PREFIX):
        return stripped
    return None


def session_id() -> str:
    """A guest session id in the shape the plugin makes them (PHP ``uniqid('kognetiks_', true)``)."""
    now = time.time()
    return f"kognetiks_{int(now):08x}{secrets.randbelow(1 << 20):05x}.{secrets.randbelow(10**8):08d}"


def client_message_id() -> str:
    """What the page script sends as ``client_message_id``: ``client_<ms>_<9 base36 chars>``."""
    tail = "".join(random.choices(string.ascii_lowercase + string.digits, k=9))
    return f"client_{int(time.time() * 1000)}_{tail}"


class KognetiksReader(Reader):
    """One JSON answer: the model's text as one chunk, or the error it stands for."""

    terminator = "its JSON answer"

    def on_event(self, event: ServerSentEvent) -> list[Event]:
        raise SiteError(
            f"The Kognetiks Chatbot answered an event stream, which it never sends: {excerpt(event.data, 120)}",
            kind="unexpected_response",
        )

    def on_json(self, body: Any) -> list[Event]:
        if not isinstance(body, dict):
            raise SiteError(f"Unexpected Kognetiks reply: {excerpt(json.dumps(body), 160)}", kind="unexpected_response")
        data = body.get("data")
        if body.get("success") is not True:
            raise SiteError(f"The site reported: {_message(data)}", kind="error")
        if isinstance(data, dict) and data.get("queued"):
            # The conversation was busy: the site answers this message later and never sends the answer.
            self.final = True
            return [Rejected(str(data.get("message") or "queued"), refresh=False, forget=("session_id", "message_id"))]
        if not isinstance(data, str):
            raise SiteError(f"Unexpected Kognetiks reply: {excerpt(json.dumps(body), 160)}", kind="unexpected_response")
        text = model_text(data)
        failure = canned_error(text)
        if failure is not None:
            kind = "duplicate" if "duplicate request" in failure.lower() else "upstream_error"
            raise SiteError(f"The site reported an error: {failure}", kind=kind)
        return self.emit(text) + self.finish(final=True)


def _message(data: Any) -> str:
    """The text of a ``data`` that is a string or ``{"message": …}``."""
    if isinstance(data, dict):
        return str(data.get("message") or json.dumps(data, ensure_ascii=False))
    return str(data) if data else "an error"


class KognetiksPlugin(Plugin):
    """Kognetiks Chatbot's one chat box per page (embedded or floating), guest visitors."""

    name = "kognetiks"
    label = "Kognetiks Chatbot"
    generation = "Kognetiks Chatbot 2.x: refresh_nonce, then send_message with one JSON answer (HTML)"
    family = "kognetiks"
    slug = "chatbot-chatgpt"
    markers = ("chatbot-chatgpt-js-js", "kchat_settings", 'id="chatbot-chatgpt"', "chatbot-chatgpt-css-css")
    bot_selector = BOX_SELECTOR
    ready_selector = BOX_SELECTOR
    request_markers = (SEND_ACTION, REFRESH_ACTION, QUEUE_ACTION)
    message_field = "message"
    volatile = Volatile(
        form_fields=frozenset({"client_message_id", "session_id"}),
        ids=(r"client_\d{13}_[a-z0-9]{9}", r"kognetiks_[0-9a-f]{13}\.\d{8}"),
    )

    def version(self, html: str) -> str | None:
        """The version the plugin prints in its config (a ``?ver=`` may be a cache-buster)."""
        match = _VERSION.search(html)
        return match.group(1) if match else super().version(html)

    def find_bots(self, doc: Document) -> list[Bot]:
        found = doc.elements(BOX_SELECTOR)
        if not found:
            return []
        position, attrs = found[0]  # fixed ids: one box per page
        configs = page_configs(doc.html)
        shortcode: dict[str, Any] = next((c for c in reversed(configs) if c.get("assistant_id")), {})
        bot_id = str(shortcode.get("assistant_id") or "original")
        name = str(shortcode.get("chatbot_chatgpt_bot_name") or "").strip() or _title(doc) or "Kognetiks Chatbot"
        style = "floating" if "chatbot-floating-style" in attrs.get("class", "") else "embedded"
        return [Bot(bot_id, name, "kognetiks", {**attrs, "data-style": style}, position)]

    async def read_values(self, page: ChatPage, bot: Bot, timeout: float) -> Values:
        configs = page_configs(page.served_html)
        merged: dict[str, Any] = {}
        for config in configs:  # the later object wins, as in the page
            merged.update({k: v for k, v in config.items() if v is not None})
        try:
            page_id = int(merged.get("page_id") or 0)
        except (TypeError, ValueError):
            page_id = 0
        values: Values = {
            "ajax_url": str(merged.get("ajax_url") or f"{page.origin}/wp-admin/admin-ajax.php"),
            "page_id": str(page_id),
            "assistant_id": str(merged.get("assistant_id") or bot.id),
        }
        nonce = await self._refresh(page, values["ajax_url"], timeout)
        if nonce is None:  # the refresh failed: the first config object carries the nonce too
            nonce = next((c.get("chatbot_message_nonce") for c in configs if c.get("chatbot_message_nonce")), None)
        if not nonce:
            raise MissingTokenError(
                f"The Kognetiks Chatbot on {page.page_url} gave no message nonce: {REFRESH_ACTION} failed and "
                "the page carries none. The site may need a login; try `scraper inspect`.",
                url=page.page_url,
            )
        return {**values, "nonce": str(nonce)}

    async def refresh_values(self, page: ChatPage, bot: Bot, stale: Values, timeout: float) -> Values:
        """The page script's own refresh: ``chatbot_chatgpt_refresh_nonce`` (no nonce, no cookie needed)."""
        nonce = await self._refresh(page, stale["ajax_url"], timeout)
        if nonce is None:
            raise MissingTokenError(f"{REFRESH_ACTION} on {page.origin} gave no nonce.", url=page.page_url)
        return {**stale, "nonce": nonce}

    async def _refresh(self, page: ChatPage, ajax_url: str, timeout: float) -> str | None:
        headers = {
            "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
            "X-Requested-With": "XMLHttpRequest",
        }
        request = HTTPRequest("POST", ajax_url, headers, urlencode({"action": REFRESH_ACTION}))
        response = await page.send(request, timeout)
        try:
            body = (await response.aread(1 << 20)).decode("utf-8", "replace")
        finally:
            await response.aclose()
        if response.status == 429:
            raise self.error_for(response.status, body, response.url)
        data = (json_object(body) or {}).get("data") if response.status < 400 else None
        nonce = data.get("chatbot_message_nonce") if isinstance(data, dict) else None
        if not nonce:
            log.info("%s answered HTTP %s without a nonce", REFRESH_ACTION, response.status)
            return None
        return str(nonce)

    def chat(self, values: Values, prompt: str, state: dict[str, Any]) -> ChatFlow:
        # A session of its own per chat: the site's per-conversation lock never holds two chats back, and
        # a retry after a nonce refresh reuses the message id, as the page script does.
        session = state.setdefault("session_id", session_id())
        message_id = state.setdefault("message_id", client_message_id())
        form = (
            ("action", SEND_ACTION),
            ("message", prompt),
            ("user_id", "0"),
            ("page_id", values["page_id"]),
            ("session_id", session),
            ("client_message_id", message_id),
            ("chatbot_nonce", values["nonce"]),
        )
        headers = {
            "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
            "Cache-Control": "no-cache, no-store, must-revalidate",
            "Pragma": "no-cache",
            "Expires": "0",
            "X-Requested-With": "XMLHttpRequest",
        }
        yield Step(HTTPRequest("POST", values["ajax_url"], headers, urlencode(form)), KognetiksReader())

    def nonce_rejected(self, status: int, body: str) -> bool:
        data = (json_object(body) or {}).get("data")
        return status == 403 and isinstance(data, dict) and data.get("code") == "nonce_failed"

    def error_for(self, status: int, body: str, url: str) -> ScraperError:
        parsed = json_object(body)
        if parsed is None or "data" not in parsed:
            return super().error_for(status, body, url)
        message = _message(parsed.get("data"))
        if status == 429:
            return RateLimitError(
                f"The site limits guest messages ({message}); it counts 10 a rolling minute per visitor address, "
                f"so try again within {RATE_WINDOW_SECONDS:.0f} s.",
                retry_after=RATE_WINDOW_SECONDS,
            )
        return SiteError(f"The site answered HTTP {status}: {message}", kind="rejected", status=status)


def _title(doc: Document) -> str:
    """The box's title text (``#chatbot-chatgpt-title``), when the page shows one."""
    found = doc.soup.select_one("#chatbot-chatgpt-title")
    return found.get_text(strip=True) if found is not None else ""
