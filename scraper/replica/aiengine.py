"""AI Engine (Meow Apps, 3.6.2): the chatbot page, ``start_session`` and ``chats/submit``.

Everything the plugin writes is PHP-encoded JSON, so non-ASCII text travels as ``\\uXXXX`` escapes.
The stream is ``live`` events and a final ``end`` whose ``data`` is itself a JSON string.
"""

from __future__ import annotations

import re
import time
from typing import Any

from . import upstream
from .exchange import Exchange
from .wordpress import (
    CSS,
    JS,
    NOCACHE_HEADERS,
    Headers,
    PageParts,
    WordPressApp,
    esc_attr,
    php_json,
    php_session_id,
    rest_headers,
    uniqid,
)

__all__ = ["AIEngineApp"]

VERSION = "3.6.2"
PLUGIN_PATH = "/wp-content/plugins/ai-engine"
SESSION_COOKIE = "mwai_session_id"
REJECTED = "Sorry, your query has been rejected."
PAGE_TEXT = "Our assistant is here to help. Ask it anything."
STREAM_ERROR = f"Lab Fake OpenAI: Error: {upstream.UPSTREAM_ERROR} (lab_forced_error) (server_error)"
JSON_ERROR = (
    'Lab Fake OpenAI: {"error": {"message": "'
    + upstream.UPSTREAM_ERROR
    + '", "type": "server_error", "param": null, "code": "lab_forced_error"}}'
)
# The bot's instructions (what its model gets first) and how many earlier messages it keeps ("maxMessages").
INSTRUCTIONS = "Converse as if you were an AI assistant. Be friendly, creative."
MAX_MESSAGES = 15
_SESSION_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

INVALID_NONCE = {"code": "rest_cookie_invalid_nonce", "message": "Cookie check failed", "data": {"status": 403}}
NOT_ALLOWED = {"code": "rest_forbidden", "message": "Sorry, you are not allowed to do that.", "data": {"status": 401}}
INVALID_JSON = {
    "code": "rest_invalid_json",
    "message": "Invalid JSON body passed.",
    "data": {"status": 400, "json_error_code": 4, "json_error_message": "Syntax error"},
}

FRONT_PARAMS: dict[str, Any] = {
    "aiName": "AI: ",
    "userName": "User: ",
    "guestName": "Guest: ",
    "textSend": "Send",
    "textClear": "Clear",
    "imageUpload": False,
    "fileUpload": False,
    "multiUpload": False,
    "maxUploads": 1,
    "fileUploads": 0,
    "mode": "chat",
    "textInputPlaceholder": "Type your message...",
    "textInputMaxLength": 512,
    "textCompliance": "",
    "startSentence": "Hi! How can I help you?",
    "localMemory": True,
    "themeId": "chatgpt",
    "window": False,
    "icon": "",
    "iconText": "",
    "iconTextDelay": 1,
    "iconAlt": "AI Engine Chatbot",
    "iconPosition": "bottom-right",
    "centerOpen": False,
    "width": "",
    "openDelay": "",
    "iconBubble": False,
    "windowAnimation": "zoom",
    "fullscreen": False,
    "copyButton": False,
    "pdfButton": False,
    "headerSubtitle": "Discuss with",
    "containerType": "standard",
    "headerType": "standard",
    "messagesType": "standard",
    "inputType": "standard",
    "footerType": "standard",
}


def model_input(messages: Any, message: str) -> list[dict[str, str]]:
    """What the plugin gives its model: the bot's instructions, the last ``MAX_MESSAGES`` of the page's
    ``messages`` (the start sentence and earlier turns, by their ``role``), then this turn's message."""
    turns = [
        {"role": str(m.get("role")), "content": str(m.get("content", ""))}
        for m in (messages if isinstance(messages, list) else [])
        if isinstance(m, dict) and m.get("role") in ("user", "assistant")
    ]
    return [{"role": "system", "content": INSTRUCTIONS}, *turns[-MAX_MESSAGES:], {"role": "user", "content": message}]


def sse(value: Any) -> bytes:
    """One event: the PHP-encoded value after ``data:``."""
    return f"data: {php_json(value)}\n\n".encode("ascii")


class AIEngineApp(WordPressApp):
    """The AI Engine site: chatbot page at ``/`` and ``/aiengine-chat/``, chat through the REST API."""

    plugin = "aiengine"
    slug = "aiengine-chat"
    title = "AI Engine Chat"
    page_text = PAGE_TEXT
    static_files = (
        ("/wp-content/plugins/ai-engine/app/chatbot.js", "chatbot.js", JS),
        ("/wp-content/plugins/ai-engine/themes/chatgpt.css", "chatgpt.css", CSS),
    )

    @classmethod
    def chat_call(cls, ex: Exchange) -> bool:
        """Its REST routes, pretty or as ``?rest_route=``."""
        if ex.path.startswith("/wp-json/mwai"):
            return True
        route = ex.query.get("rest_route", "").lstrip("/")
        return ex.path in ("/", "/index.php") and route.startswith("mwai")

    def rest_namespaces(self) -> list[str]:
        """AI Engine's two namespaces."""
        return ["mwai/v1", "mwai-ui/v1", "mwai-bot/v1"]

    # -- page ------------------------------------------------------------------------------------

    def page_parts(self, ex: Exchange) -> PageParts:
        """The chatbot container with its settings, shaped by ``config.page``, and the plugin's script."""
        site = self.site
        mode = site.config.page
        url = site.url
        core = self.core_url
        extra: Headers = []
        session_id = None
        nonce = None
        if mode in ("nonce_in_page", "v1_endpoint"):  # older versions handed guests a nonce and a session in the page
            session_id = self.session_from(ex)
            nonce = site.nonce
            if ex.cookies.get(SESSION_COOKIE) != session_id:
                extra.append(("Set-Cookie", f"{SESSION_COOKIE}={session_id}; path=/; HttpOnly"))
        system: dict[str, Any] = {
            "botId": "default",
            "customId": None,
            "userData": None,
            "sessionId": session_id,
            "restNonce": nonce,
            "contextId": self.post_id,
            "pluginUrl": f"{core}{PLUGIN_PATH}",
            "restUrl": f"{url}/wp-json",
            "stream": site.config.stream,
            "debugMode": False,
            "eventLogs": False,
            "speech_recognition": False,
            "speech_synthesis": False,
            "typewriter": False,
            "crossSite": False,
            "actions": [],
            "blocks": [],
            "shortcuts": [],
        }
        if mode == "v1_endpoint":  # AI Engine 1.x (up to 1.6.75): one bot by chatId, mwai-bot/v1/chat, JSON
            system = {
                "chatId": "default",
                "sessionId": session_id,
                "restNonce": nonce,
                "contextId": self.post_id,
                "pluginUrl": f"{core}{PLUGIN_PATH}",
                "restUrl": f"{url}/wp-json",
                "debugMode": False,
                "typewriter": False,
                "speech_recognition": False,
                "speech_synthesis": False,
            }
        theme = {
            "type": "internal",
            "name": "ChatGPT",
            "themeId": "chatgpt",
            "settings": [],
            "style": "",
            "cssUrl": f"{core}{PLUGIN_PATH}/themes/chatgpt.css",
        }
        system_json = php_json(system)
        if mode == "malformed":  # cut short, as a broken cache or optimiser leaves it
            system_json = system_json[: len(system_json) // 2]
        element = (
            f"<div class='mwai-chatbot-container' data-params='{esc_attr(php_json(FRONT_PARAMS))}' "
            f"data-system='{esc_attr(system_json)}' data-theme='{esc_attr(php_json(theme))}'></div>"
        )
        head = (
            f"<link rel='stylesheet' id='mwai_chatbot_theme_chatgpt-css' href='{theme['cssUrl']}?ver={VERSION}' "
            "media='all' />\n"
        )
        return PageParts(
            before=f"<p>{PAGE_TEXT}</p>",
            box=element,
            head=head,
            scripts=[(f"{core}{PLUGIN_PATH}/app/chatbot.js?ver={VERSION}", "mwai_chatbot-js")],
            headers=extra,
        )

    def session_from(self, ex: Exchange) -> str:
        """The session id the request's cookie names, or a new one."""
        current = ex.cookies.get(SESSION_COOKIE, "")
        return current if _SESSION_ID.match(current) else uniqid()

    # -- REST ------------------------------------------------------------------------------------

    @property
    def v1(self) -> bool:
        """AI Engine 1.x: ``mwai-bot/v1/chat`` instead of ``mwai-ui/v1/chats/submit``."""
        return self.site.config.page == "v1_endpoint"

    def rest(self, ex: Exchange, route: str) -> None:
        """AI Engine's two routes (POST only); everything else as WordPress."""
        if ex.method == "POST" and route == "/mwai/v1/start_session":
            self.start_session(ex)
        elif ex.method == "POST" and route == "/mwai-ui/v1/chats/submit" and not self.v1:
            self.submit(ex)
        elif ex.method == "POST" and route == "/mwai-bot/v1/chat" and self.v1:
            self.submit(ex, legacy=True)
        else:
            super().rest(ex, route)

    def start_session(self, ex: Exchange) -> None:
        """A guest's session id and REST nonce, with the cookies the plugin and PHP set."""
        site = self.site
        site.count("session_starts")
        had_cookie = bool(_SESSION_ID.match(ex.cookies.get(SESSION_COOKIE, "")))
        session_id = self.session_from(ex)
        headers: Headers = []
        if "PHPSESSID" not in ex.cookies:
            headers.append(("Set-Cookie", f"PHPSESSID={php_session_id()}; path=/"))
        headers += [
            ("Expires", "Thu, 19 Nov 1981 08:52:00 GMT"),
            ("Cache-Control", "no-store, no-cache, must-revalidate"),
            ("Pragma", "no-cache"),
            ("Content-Type", "application/json; charset=UTF-8"),
            *rest_headers(site.url, ex.origin),
        ]
        if not had_cookie:
            headers.append(("Set-Cookie", f"{SESSION_COOKIE}={session_id}; path=/; HttpOnly"))
        headers.append(("Allow", "POST"))
        body: dict[str, Any] = {"success": True, "sessionId": session_id}
        if site.config.page != "no_nonce":
            body["restNonce"] = site.nonce
        ex.respond(200, headers, php_json(body).encode("ascii"))

    def submit(self, ex: Exchange, legacy: bool = False) -> None:
        """``chats/submit``: WordPress's nonce check, the plugin's checks, then the reply. ``legacy``:
        AI Engine 1.x's ``mwai-bot/v1/chat``, which names its bot by ``chatId`` or ``id`` and answers
        one JSON object (``success``, ``reply``, ``images``, ``html``, ``usage``)."""
        site = self.site
        config = site.config
        site.count("chat_requests")
        nonce = ex.headers.get("x-wp-nonce") or ex.query.get("_wpnonce") or ""
        verdict = site.nonce_verdict(nonce) if nonce else None
        if nonce and verdict is None:
            self.rest_json(ex, 403, INVALID_NONCE, NOCACHE_HEADERS)
            return
        body = ex.json if ex.json_ok else None
        if ex.body.strip() and not ex.json_ok:
            self.rest_json(ex, 400, INVALID_JSON)
            return
        if not nonce:
            self.rest_json(ex, 401, NOT_ALLOWED)
            return
        payload: dict[str, Any] = body if isinstance(body, dict) else {}
        cookie = ex.cookies.get(SESSION_COOKIE)
        if config.require_session_cookie and (not cookie or cookie != str(payload.get("session"))):
            self.rest_json(ex, 403, INVALID_NONCE, NOCACHE_HEADERS)
            return
        own: Headers = [("X-WP-Nonce", site.nonce)]
        if not cookie:  # the plugin starts a session for a visitor who has none
            own.append(("Set-Cookie", f"{SESSION_COOKIE}={uniqid()}; path=/; HttpOnly"))
        if config.failure == "http_500":
            self.critical_error(ex)
            return
        message = upstream.php_trim(payload.get("newMessage"))
        too_long = len(message) > int(FRONT_PARAMS["textInputMaxLength"])  # the plugin counts characters
        if (
            config.failure == "rejected"
            or not message
            or too_long
            or (legacy and not (payload.get("chatId") or payload.get("id")))
        ):
            self.rest_json(ex, 403, {"success": False, "message": REJECTED}, own)
            return
        site.note("model_inputs", model_input(payload.get("messages"), message))
        pieces = upstream.reply_pieces(config, message)
        reply = "".join(pieces)
        if legacy:
            legacy_result = {
                "success": True,
                "reply": reply,
                "images": None,
                "html": reply,
                "usage": upstream.usage(reply),
            }
            self.json_reply(ex, own, pieces, legacy_result)
            return
        result: dict[str, Any] = {
            "success": True,
            "reply": reply,
            "images": None,
            "actions": [],
            "shortcuts": [],
            "blocks": [],
            "usage": upstream.usage(reply),
            "responseId": upstream.completion_id(),
        }
        if verdict == "previous":  # an old but still valid nonce: hand over the current one
            result["new_token"] = site.nonce
        if payload.get("stream") is True:
            self.stream_reply(ex, own, pieces, result)
        else:
            self.json_reply(ex, own, pieces, result)

    def live_events(self, pieces: list[str]) -> list[bytes]:
        """The ``live`` events of a reply, with the newer versions' extra subtypes when configured."""
        config = self.site.config
        keep = len(pieces) - max(0, config.drop_live_tail)
        pieces = pieces[: max(0, keep)]
        if not config.live_subtypes:
            return [sse({"type": "live", "data": piece}) for piece in pieces]

        def live(subtype: str, data: str) -> bytes:
            """A newer-version live event, stamped in milliseconds."""
            return sse({"type": "live", "subtype": subtype, "data": data, "timestamp": int(time.time() * 1000)})

        events = [live("status", "Processing request"), live("thinking", "Reading the question…")]
        for index, piece in enumerate(pieces):
            if index and index % 4 == 0:
                events.append(live("heartbeat", ""))
            if index == len(pieces) // 2:
                events.append(live("thinking", "Choosing the next words…"))
            events.append(live("content", piece))
        events.append(live("status", "Reply complete"))
        return events

    def stream_reply(self, ex: Exchange, own: Headers, pieces: list[str], result: dict[str, Any]) -> None:
        """The streamed answer, or the stream a failure mode makes."""
        failure = self.site.config.failure
        headers = [
            *rest_headers(self.site.url, None),
            *own,
            ("Cache-Control", "no-cache"),
            ("Content-type", "text/event-stream;charset=UTF-8"),
            ("X-Accel-Buffering", "no"),
        ]
        live = self.live_events(pieces)
        end = sse({"type": "end", "data": php_json(result)})
        events = [*live, end]
        if failure == "upstream_error":
            events = [sse({"type": "error", "data": STREAM_ERROR})]
        elif failure == "cut_stream":
            events = events[: len(events) // 2]
        elif failure == "no_terminator":
            events = live
        ex.stream(200, headers, events)

    def json_reply(self, ex: Exchange, own: Headers, pieces: list[str], result: dict[str, Any]) -> None:
        """The non-streamed answer (sent once the whole reply is in), or its failure."""
        config = self.site.config
        ex.pause(config.first_delay + config.chunk_delay * len(pieces))
        if config.failure == "upstream_error":
            self.rest_json(ex, 500, {"success": False, "message": JSON_ERROR}, own)
            return
        encoded = php_json(result).encode("ascii")
        if config.failure == "cut_stream":
            encoded = encoded[: len(encoded) // 2]
        headers = [("Content-Type", "application/json; charset=UTF-8"), *rest_headers(self.site.url, ex.origin)]
        ex.respond(200, headers + own, encoded)
