"""MxChat 3.0.5 (mxchat-basic): the shortcode page and ``admin-ajax.php`` chat with server-side history.

The chat box is the plugin's markup (``static/mxchat-box.html``, ``[mxchat_chatbot floating="no"]``, or
inside a floating ``.floating-chatbot`` in page mode "widget"), its settings are ``var mxchatChat``.
``mxchat_stream_chat`` streams ``data: {"content": …}`` events (PHP ``json_encode``: ``\\u`` escapes)
ending ``data: [DONE]``; ``mxchat_handle_chat_request`` answers one JSON object. Errors found before
the model is called are JSON for both actions, as the real plugin sends them.

The server keeps each session's turns (``chat_history[(bot_id, session_id)]``, roles ``user``/``bot``)
and records what the model was given for each message (``chat_history[("model", session_id, n)]``).
A session belongs to the address that sent its first message (:attr:`MxChatApp.owners`).
Version 3.0.5 does not check the nonce on chat; with ``nonce_mode`` other than "ok" the site checks it
as later versions do, so a client's refresh can be tested.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import upstream
from .aipkit import JSON_HEADERS  # the same WordPress and PHP build as the AIPKit recordings
from .aipkit import STREAM_HEADERS as AIPKIT_STREAM_HEADERS
from .exchange import Exchange
from .wordpress import CSS, JS, Headers, PageParts, WordPressApp, esc_attr, php_json, uniqid

if TYPE_CHECKING:
    from .server import ReplicaSite

__all__ = ["MxChatApp", "mxchat_app"]

VERSION = "3.0.5"
PLUGIN_PATH = "/wp-content/plugins/mxchat-basic"
BOT_ID = "default"
PAGE_TEXT = "Questions about this site? Our assistant answers."
STREAM_ACTION = "mxchat_stream_chat"
JSON_ACTION = "mxchat_handle_chat_request"
TRACK_ACTION = "mxchat_track_originating_page"
PRE_CHAT_ACTION = "mxchat_check_pre_chat_message_status"
HISTORY_ACTION = "mxchat_fetch_conversation_history"
RATE_LIMIT_MESSAGE = "Rate limit exceeded. Please try again later."
SESSION_MISSING = "Session ID is missing."
NO_MESSAGE = "No message received."
SESSION_EXPIRED = "Your session has expired. Starting a new conversation."
INVALID_NONCE = "Invalid nonce"
UPSTREAM_ERROR = f"OpenAI API error: {upstream.UPSTREAM_ERROR}"
SYSTEM_PROMPT = "You are an AI Chatbot assistant for this website. Answer briefly, in the user's language."
NO_CONTENT = "\n\n===== NO RELEVANT CONTENT FOUND IN KNOWLEDGE DATABASE =====\n"
CODE_BLOCKS = (
    "Preserved code blocks are marked with [CODE BLOCK PRESERVED]. Maintain formatting and syntax "
    "highlighting when referencing code."
)
_BOX = (Path(__file__).with_name("static") / "mxchat-box.html").read_text(encoding="utf-8").rstrip("\n")
_KEPT_TAGS = re.compile(r"</?(?:pre|code|span|div)\b[^>]*>", re.I)
_ANY_TAG = re.compile(r"<[^>]*>")

# The event stream: the plugin replaces WordPress's cache headers, and adds its own Connection header
# after the one PHP's server already sent.
STREAM_HEADERS: Headers = [
    *AIPKIT_STREAM_HEADERS[:5],  # what WordPress's admin-ajax sent before the plugin took over
    ("Content-type", "text/event-stream;charset=UTF-8"),
    ("Cache-Control", "no-cache"),
    ("Connection", "keep-alive"),
    ("X-Accel-Buffering", "no"),
]

SETTINGS: dict[str, Any] = {
    "model": upstream.MODEL,
    "enable_streaming_toggle": "on",
    "contextual_awareness_toggle": "off",
    "link_target_toggle": "off",
    "rate_limit_message": RATE_LIMIT_MESSAGE,
    "complianz_toggle": "",
    "user_message_bg_color": "#fff",
    "user_message_font_color": "#212121",
    "bot_message_bg_color": "#212121",
    "bot_message_font_color": "#fff",
    "top_bar_bg_color": "#212121",
    "send_button_font_color": "#212121",
    "close_button_color": "#fff",
    "chatbot_background_color": "#212121",
    "chatbot_bg_color": "#fff",
    "icon_color": "#fff",
    "chat_input_font_color": "#212121",
    "chat_persistence_toggle": "off",
    "appendWidgetToBody": "off",
    "live_agent_message_bg_color": "#ffffff",
    "live_agent_message_font_color": "#333333",
    "chat_toolbar_toggle": "off",
    "mode_indicator_bg_color": "#767676",
    "mode_indicator_font_color": "#ffffff",
    "toolbar_icon_color": "#212121",
    "use_pinecone": "0",
    "email_collection_enabled": "off",
    "initial_email_state": None,
    "skip_email_check": "1",
    "pinecone_enabled": "",
    "skip_inline_colors": "",
    "bot_theme_assignments": [],
}


def event(value: Any) -> bytes:
    """One ``data:`` line of the stream, PHP-encoded."""
    return f"data: {php_json(value)}\n\n".encode()


DONE = b"data: [DONE]\n\n"


def wp_kses_chat(text: str) -> str:
    """The message as the plugin keeps it: only ``pre``, ``code``, ``span`` and ``div`` tags stay."""
    kept: list[str] = []

    def hold(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"\x00{len(kept) - 1}\x00"

    held = _KEPT_TAGS.sub(hold, text)
    cleaned = _ANY_TAG.sub("", held)
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], cleaned).strip()


def mxchat_app(site: ReplicaSite) -> MxChatApp:
    """The MxChat app of a running site (alone or among other plugins)."""
    app: Any = site._app
    for candidate in [app, *getattr(app, "apps", [])]:
        if isinstance(candidate, MxChatApp):
            return candidate
    raise LookupError(f"{site!r} runs no MxChat")


class MxChatApp(WordPressApp):
    """The MxChat site: the chat box on ``/`` and ``/mxchat-chat/``, chat through ``admin-ajax.php``."""

    plugin = "mxchat"
    slug = "mxchat-chat"
    title = "MxChat Chat"
    page_text = PAGE_TEXT
    powered_by = "PHP/8.2.36"
    ajax_actions = (STREAM_ACTION, JSON_ACTION, TRACK_ACTION, PRE_CHAT_ACTION, HISTORY_ACTION)
    json_headers = JSON_HEADERS
    static_files = (
        (f"{PLUGIN_PATH}/js/chat-script.js", "mxchat-chat.js", JS),
        (f"{PLUGIN_PATH}/css/chat-style.css", "mxchat-chat.css", CSS),
    )

    def __init__(self, site: ReplicaSite) -> None:
        super().__init__(site)
        self.owners: dict[str, str] = {}  # session id -> the address that sent its first message
        self._lock = threading.Lock()

    # -- page ------------------------------------------------------------------------------------

    def page_parts(self, ex: Exchange) -> PageParts:
        """The chat box (inline, or floating in page mode "widget"), ``var mxchatChat`` and the script."""
        mode = self.site.config.page
        plugin = f"{self.core_url}{PLUGIN_PATH}/includes/.."
        settings = php_json(self.settings(mode))
        if mode == "malformed":  # cut short, as a broken cache or optimiser leaves it
            settings = settings[: len(settings) // 2]
        footer = f"<script id='mxchat-chat-js-js-extra'>\nvar mxchatChat = {settings};\n</script>"
        return PageParts(
            before=f"<p>{PAGE_TEXT}</p>",
            box=self.chatbox(BOT_ID, floating=mode == "widget"),
            head=(
                f"<link rel='stylesheet' id='mxchat-chat-css-css' href='{plugin}/css/chat-style.css?ver={VERSION}' "
                "media='all' />\n"
            ),
            footer=footer,
            scripts=[(f"{plugin}/js/chat-script.js?ver={VERSION}", "mxchat-chat-js-js")],
        )

    def settings(self, mode: str) -> dict[str, Any]:
        """``mxchatChat`` (``wp_localize_script``): where to post, the nonce, the model, the switches."""
        values: dict[str, Any] = {"ajax_url": f"{self.core_url}/wp-admin/admin-ajax.php"}
        if mode != "no_nonce":
            values["nonce"] = self.site.nonce
        values.update(SETTINGS)
        values["enable_streaming_toggle"] = "on" if self.site.config.stream else "off"
        return values

    def chatbox(self, bot: str, *, floating: bool) -> str:
        """The shortcode's markup for ``bot``; floating, it sits in a hidden box behind a launcher."""
        box = _BOX.replace("__BOT__", esc_attr(bot))
        if not floating:
            return box
        return (
            f'<div id="floating-chatbot-{esc_attr(bot)}" class="floating-chatbot hidden">{box}</div>\n'
            f'<div id="floating-chatbot-button-{esc_attr(bot)}" class="floating-chatbot-button" '
            'role="button" tabindex="0" aria-label="Open chat"><span>Chat</span></div>'
        )

    # -- admin-ajax ------------------------------------------------------------------------------

    def ajax(self, ex: Exchange) -> None:
        """The plugin's actions; anything else is WordPress's ``0``."""
        fields = {**ex.query, **(ex.form or {})}  # PHP's $_REQUEST
        action = fields.get("action")
        if action in (STREAM_ACTION, JSON_ACTION):
            self.chat(ex, fields, stream=action == STREAM_ACTION and self.site.config.stream)
        elif action == TRACK_ACTION:
            if not self.nonce_ok(fields.get("nonce")):
                self.ajax_json(ex, {"success": False, "data": {"message": INVALID_NONCE}})
            else:
                self.ajax_json(ex, {"success": True, "data": {"message": "Originating page tracked"}})
        elif action == PRE_CHAT_ACTION:
            self.ajax_json(ex, {"success": True, "data": {"dismissed": False}})
        elif action == HISTORY_ACTION:
            self.history(ex, fields)
        else:
            super().ajax(ex)

    def nonce_ok(self, value: str | None) -> bool:
        """A nonce of this tick or the previous one (what ``wp_verify_nonce`` accepts)."""
        return bool(value) and value in (self.site.nonce, self.site.previous_nonce)

    def history(self, ex: Exchange, fields: dict[str, str]) -> None:
        """``mxchat_fetch_conversation_history``: the stored turns of a session (owner check only)."""
        session = upstream.sanitize_text_field(fields.get("session_id"))
        turns = self.site.chat_history.get((BOT_ID, session), [])
        conversation = [
            {
                "id": turn.get("id", ""),
                "role": turn["role"],
                "content": turn["content"],
                "timestamp": int(turn.get("time", "0")),
                "agent_name": turn.get("owner", ""),
            }
            for turn in turns
        ]
        self.ajax_json(ex, {"success": True, "data": {"conversation": conversation, "chat_mode": "ai"}})

    def chat(self, ex: Exchange, fields: dict[str, str], *, stream: bool) -> None:
        """One message: the checks the plugin makes before calling the model, then the answer."""
        site = self.site
        config = site.config
        site.count("chat_requests")
        if config.nonce_mode != "ok" and site.nonce_verdict(fields.get("nonce") or "") is None:
            # 3.0.5 never gets here: later versions check the chat nonce
            self.ajax_json(ex, {"success": False, "data": {"message": INVALID_NONCE}})
            return
        if config.failure == "http_500":
            self.critical_error(ex)
            return
        session = upstream.sanitize_text_field(fields.get("session_id"))
        if not session:
            self.ajax_json(ex, {"success": False, "data": SESSION_MISSING})
            return
        message = wp_kses_chat(fields.get("message") or "")
        if not message:
            self.ajax_json(ex, {"success": False, "data": NO_MESSAGE})
            return
        bot_id = upstream.sanitize_text_field(fields.get("bot_id")) or BOT_ID
        if config.failure == "rate_limit":
            body = {"success": False, "message": RATE_LIMIT_MESSAGE, "status": "rate_limit_exceeded"}
            self.ajax_json(ex, body)
            return
        with self._lock:
            owner = self.owners.setdefault(session, ex.peer)
        if owner != ex.peer:
            reset = {"message": SESSION_EXPIRED, "code": "session_expired", "action": "reset_session"}
            self.ajax_json(ex, {"success": False, "data": reset})
            return
        self.model_messages(bot_id, session, message, ex.peer)
        pieces = upstream.reply_pieces(config, message)
        failed = config.failure == "upstream_error"
        if not failed:
            site.remember((bot_id, session), self.turn("bot", "".join(pieces), ex.peer))
        if stream:
            self.stream_reply(ex, pieces, failed)
        else:
            self.json_reply(ex, pieces, failed, session)

    def turn(self, role: str, content: str, owner: str) -> dict[str, str]:
        """One stored turn, as the plugin keeps it in the session's history."""
        return {
            "id": uniqid(),
            "role": role,
            "content": content,
            "time": str(int(time.time() * 1000)),
            "owner": owner,
        }

    def model_messages(self, bot_id: str, session: str, message: str, owner: str) -> list[dict[str, str]]:
        """Store the user's turn, then what the model is given: the system prompt quoting the message,
        and every stored turn of the session (a turn that still holds a tag is left out)."""
        site = self.site
        with self._lock:  # messages at once in one session: each gets its own record
            site.remember((bot_id, session), self.turn("user", message, owner))
            turns = list(site.chat_history.get((bot_id, session), []))
        messages = [
            {"role": "system", "content": f"{SYSTEM_PROMPT} User asked: '{message}'{NO_CONTENT}"},
            {"role": "system", "content": CODE_BLOCKS},
        ]
        for turn in turns:
            if _ANY_TAG.search(turn["content"]):
                continue
            role = "assistant" if turn["role"] == "bot" else turn["role"]
            messages.append({"role": role, "content": turn["content"]})
        asked = sum(turn["role"] == "user" for turn in turns)
        site.remember(("model", session, asked), *messages)
        return messages

    def stream_reply(self, ex: Exchange, pieces: list[str], failed: bool) -> None:
        """The event stream: an empty first event (the model's role chunk), one per piece, ``[DONE]``."""
        config = self.site.config
        if failed:
            error = {
                "error": True,
                "error_message": UPSTREAM_ERROR,
                "error_code": "openai_api_error",
                "text": UPSTREAM_ERROR,
                "message": UPSTREAM_ERROR,
            }
            ex.stream(200, STREAM_HEADERS, [event(error), DONE])
            return
        events = [event({"content": ""}), *(event({"content": piece}) for piece in pieces), DONE]
        if config.failure == "cut_stream":
            events = events[: len(events) // 2]
        elif config.failure == "no_terminator":
            events = events[:-1]
        ex.stream(200, STREAM_HEADERS, events)

    def json_reply(self, ex: Exchange, pieces: list[str], failed: bool, session: str) -> None:
        """The JSON answer (no ``success`` key when it succeeds), once the whole reply is in."""
        config = self.site.config
        ex.pause(config.first_delay + config.chunk_delay * len(pieces))
        if failed:
            body: dict[str, Any] = {
                "success": False,
                "data": {"error_message": UPSTREAM_ERROR, "error_code": "openai_api_error"},
            }
        else:
            body = {"text": "".join(pieces), "html": "", "session_id": session}
        encoded = php_json(body).encode("utf-8")
        if config.failure == "cut_stream":
            encoded = encoded[: len(encoded) // 2]
        ex.respond(200, JSON_HEADERS, encoded)
