"""Kognetiks Chatbot (``chatbot-chatgpt`` 2.4.6): one chat box, two ``kchat_settings`` objects, one JSON answer.

The page prints two config objects under one name in the script before the plugin's: the first (made at
``wp_enqueue_scripts``) has the eight nonces, the second (the shortcode's) has none and wins, so the
page script asks ``chatbot_chatgpt_refresh_nonce`` before its first message. A message
(``chatbot_chatgpt_send_message``) is checked in the plugin's order: nonce (403), session id (403), the
per-address rate limit (429), the message (200, ``success: false``), the conversation lock (a second
message of a busy conversation is queued: its answer is made and never sent), a repeated message id
(a success reply reading "Error: Duplicate request detected"), then the model. An upstream failure is
a success reply too, one of eight canned sentences. The history the model gets is one store for the
whole site, every visitor's turns in it; ``chat_history[("model", message_id)]`` keeps what the model
was given for each message.

Page modes: "widget" prints the floating box (with its open button) instead of the embedded one;
"guests_off" (audience "logged-in") prints no box for guests, but the config script stays and the
endpoint answers guests as before.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
import time
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from . import upstream
from .aipkit import JSON_HEADERS
from .exchange import Exchange
from .wordpress import CSS, JS, Headers, PageParts, WordPressApp, esc_attr, php_json, uniqid

if TYPE_CHECKING:
    from .server import ReplicaSite

__all__ = ["KognetiksApp"]

VERSION = "2.4.6"
PLUGIN_PATH = "/wp-content/plugins/chatbot-chatgpt"
SCRIPT_PATH = f"{PLUGIN_PATH}/assets/js/chatbot-chatgpt.js"
STYLE_PATH = f"{PLUGIN_PATH}/assets/css/chatbot-chatgpt.css"
COOKIE = "kognetiks_unique_id"
COOKIE_AGE = 2592000  # 30 days
SEND_ACTION = "chatbot_chatgpt_send_message"
REFRESH_ACTION = "chatbot_chatgpt_refresh_nonce"
QUEUE_ACTION = "chatbot_chatgpt_get_queue_status"
NONCE_NAMES = (
    "chatbot_message_nonce",
    "chatbot_upload_nonce",
    "chatbot_erase_nonce",
    "chatbot_unlock_nonce",
    "chatbot_reset_nonce",
    "chatbot_queue_nonce",
    "chatbot_tts_nonce",
    "chatbot_transcript_nonce",
)
BOT_NAME = "Kognetiks Chatbot"
PAGE_TEXT = "Ask the Kognetiks Chatbot anything."
SECURITY_CHECK = "Security check failed. Please refresh the page and try again."
SESSION_REQUIRED = "Session ID required for anonymous users."
UNAUTHORIZED = "Unauthorized access to conversation."
RATE_LIMITED = "Rate limit exceeded. Please wait before sending another message."
INVALID_MESSAGE = "Error: Invalid API key or Message. Please check the plugin settings."
DUPLICATE = "Error: Duplicate request detected. Please try again."
QUEUED = "Message queued. Processing..."
MISSING_PARAMETERS = "Missing required parameters"
SYSTEM_PROMPT = (
    "You are a versatile, friendly, and helpful assistant designed to support me in a variety of tasks "
    "that responds in Markdown. "
)
CONTEXT_INTRO = "We previously have been talking about the following things:  "
RATE_WINDOW = 60.0  # seconds the rate counter lives after the last counted message
LOCK_SECONDS = 30.0  # a guest conversation's lock
DUPLICATE_SECONDS = 120.0
GATHER_SECONDS = 30.0  # the longest an answer waits for others under ``config.gather``
CANNED_ERRORS = (
    " It seems there may have been an issue with the API. Let's try again later.",
    " Unfortunately, we might have encountered a problem with the API. Please give it another shot in a little while.",
    " I apologize, but it appears there's a hiccup with the API at the moment. We can attempt this again later.",
    " The API seems to be experiencing difficulties right now. We can come back to this when it's resolved.",
    " I'm sorry, but it seems like there's an error from the API side. Please retry in a bit.",
    " There might be a temporary issue with the API. Please try your request again in a little while.",
    " The API encountered an error, but don't worry, it happens. Let's give it another shot later.",
    " It looks like there could be a technical problem with the API. Feel free to try again in a bit to see if "
    "things are working smoothly.",
)
LEARNINGS = (
    " Please note that I'm continuously enhancing my abilities. In the meantime, you can find more information here: ",
    " I am currently in the process of expanding my knowledge. For additional details, please check: ",
    " I am constantly evolving and learning. For now, you can check out: ",
    " I'm still in the learning phase, so your patience is greatly appreciated. You might find what you're looking "
    "for here: ",
)
# The site's own posts the learnings block links to when a message word is in their title.
POSTS = (("Hello world!", "/?p=1"), ("Sample Page", "/?page_id=2"))
_MARKDOWN_LINK = re.compile(r"(!)?\[([^\]]+)\]\(([^)]+)\)")
_SESSION_ID = re.compile(r"^[A-Za-z0-9._-]{10,128}$")


def _links_to_html(text: str) -> str:
    """``chatbot_chatgpt_check_for_links_and_images``: Markdown links and images as the plugin's HTML."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            return (
                f'<span><center><img src="{match.group(3)}" alt="{match.group(2)}" '
                'style="max-width: 95%; width: auto;" /></center></span>'
            )
        return f'<span><a href="{match.group(3)}" target="_blank">{match.group(2)}</a></span>'

    return _MARKDOWN_LINK.sub(replace, text)


class KognetiksApp(WordPressApp):
    """The Kognetiks Chatbot site: the embedded box on ``/``, ``/chat/`` and ``/kognetiks-chat/``."""

    plugin = "kognetiks"
    slug = "kognetiks-chat"
    title = "Kognetiks Chat"
    page_text = PAGE_TEXT
    powered_by = "PHP/8.2.36"
    ajax_actions = (SEND_ACTION, REFRESH_ACTION, QUEUE_ACTION)
    json_headers = JSON_HEADERS
    static_files = ((SCRIPT_PATH, "kognetiks-chat.js", JS), (STYLE_PATH, "kognetiks-chat.css", CSS))

    def __init__(self, site: ReplicaSite) -> None:
        super().__init__(site)
        self._lock = threading.Condition()
        self._history: list[str] = []  # the site-wide store: user, assistant, user, … by position
        self._rate: dict[str, tuple[int, float]] = {}  # address -> (count, expiry)
        self._locks: dict[tuple[str, ...], float] = {}  # conversation -> lock expiry
        self._queues: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        self._seen_ids: dict[str, float] = {}
        self._answering = 0

    # -- nonces and cookie ------------------------------------------------------------------------

    def nonce_for(self, name: str, base: str) -> str:
        """Each action's nonce of one tick: the message nonce is the site's, the others derive from it."""
        if name == "chatbot_message_nonce":
            return base
        return hashlib.sha256(f"{name}|{base}".encode()).hexdigest()[:10]

    def nonces(self) -> dict[str, str]:
        """The eight nonces of the current tick, in the plugin's order."""
        base = self.site.nonce
        return {name: self.nonce_for(name, base) for name in NONCE_NAMES}

    def visitor(self, ex: Exchange) -> tuple[str, Headers]:
        """The visitor's id: the cookie's, or a new one with its Set-Cookie (every response sets it on ``init``)."""
        current = ex.cookies.get(COOKIE, "")
        if _SESSION_ID.match(current):
            return current, []
        value = f"kognetiks_{uniqid(more_entropy=True)}"
        expires = formatdate(time.time() + COOKIE_AGE, usegmt=True)
        cookie = f"{COOKIE}={value}; expires={expires}; Max-Age={COOKIE_AGE}; path=/; secure; HttpOnly"
        return value, [("Set-Cookie", cookie)]

    # -- page ------------------------------------------------------------------------------------

    def page_parts(self, ex: Exchange) -> PageParts:
        """The box, the shortcode's settings script, and the two config objects before the plugin's script."""
        site = self.site
        mode = site.config.page
        session, cookie = self.visitor(ex)
        core = self.core_url
        ajax_url = f"{core}/wp-admin/admin-ajax.php"
        plugins_url = f"{core}{PLUGIN_PATH}/"
        style = "floating" if mode == "widget" else "embedded"
        enqueued = {
            "user_id": session,
            "page_id": self.post_id,
            "session_id": session,
            "thread_id": None,
            "assistant_id": None,
            "additional_instructions": None,
            "model": "gpt-4-1106-preview",
            "voice": None,
            **({} if mode == "no_nonce" else self.nonces()),
            "nonce_timestamp": int(time.time()) * 1000,
            "chatbot_chatgpt_message_limit_setting": "999",
            "chatbot_chatgpt_message_limit_period_setting": "Lifetime",
            "chatbot_chatgpt_display_message_count": "No",
            "chatbot_chatgpt_display_style": None,
            "chatbot_chatgpt_version": VERSION,
            "plugins_url": plugins_url,
            "ajax_url": ajax_url,
            "chatbot_chatgpt_timeout_setting": "240",
        }
        shortcode = {
            "chatbot_chatgpt_model": upstream.MODEL,
            "chatbot_chatgpt_display_style": style,
            "model": upstream.MODEL,
            "chatbot_chatgpt_version": VERSION,
            "plugins_url": plugins_url,
            "ajax_url": ajax_url,
            "user_id": 0,
            "page_id": self.post_id,
            "session_id": session,
            "thread_id": None,
            "assistant_id": "original",
            "chatbot_chatgpt_start_status": "open",
            "chatbot_chatgpt_initial_greeting": "Hello! How can I help you today?",
            "chatbot_chatgpt_audience_choice": "logged-in" if mode == "guests_off" else "all",
            "chatbot_chatgpt_conversation_continuation": "Off",
            "chatbot_chatgpt_bot_name": BOT_NAME,
        }
        if mode == "malformed":  # cut short, as a broken cache or optimiser leaves it
            shortcode_json = php_json(shortcode)[:200]
        else:
            shortcode_json = php_json(shortcode)
        lines = [
            f'if (typeof kchat_settings === "undefined") {{ var kchat_settings = {value}; }} '
            f"else {{ kchat_settings = {value}; }}"
            for value in (php_json(enqueued), shortcode_json)
        ]
        settings = (
            '<script type="text/javascript">\n'
            'document.addEventListener("DOMContentLoaded", function() {\n'
            f"    let kchat_settings = {shortcode_json};\n"
            '    localStorage.setItem("chatbot_chatgpt_start_status", kchat_settings.chatbot_chatgpt_start_status);\n'
            "});\n</script>"
        )
        box = "" if mode == "guests_off" else self.box(style)
        return PageParts(
            before=f"<p>{PAGE_TEXT}</p>",
            box=box,
            after="" if mode == "guests_off" else settings,
            head=f"<link rel='stylesheet' id='chatbot-chatgpt-css-css' href='{core}{STYLE_PATH}?ver={VERSION}' "
            "media='all' />\n",
            footer="<script id='chatbot-chatgpt-js-js-before'>\n" + "\n".join(lines) + "\n</script>",
            scripts=[(f"{core}{SCRIPT_PATH}?ver={VERSION}", "chatbot-chatgpt-js-js")],
            headers=cookie,
        )

    def box(self, style: str) -> str:
        """The one chat box (fixed ids), embedded or floating."""
        header = (
            '<div id="chatbot-chatgpt-header-embedded">' if style == "embedded" else '<div id="chatbot-chatgpt-header">'
        )
        display = "flex" if style == "embedded" else "none"
        return (
            f'<div id="chatbot-chatgpt" style="display: {display};" class="chatbot-{style}-style chatbot-full" '
            f'data-cache-buster="{int(time.time())}">\n'
            f'{header}<div id="chatbot-chatgpt-title" class="title">{esc_attr(BOT_NAME)}</div></div>\n'
            '<div id="chatbot-chatgpt-conversation"></div>\n'
            '<div id="chatbot-chatgpt-input"><div id="chatbot-chatgpt-input-area">\n'
            '<label for="chatbot-chatgpt-message"></label>\n'
            "<textarea id='chatbot-chatgpt-message' rows='2' placeholder='Enter your question ...' "
            "style='width: 95%;'></textarea></div></div>\n"
            '<div id="chatbot-chatgpt-buttons-container">\n'
            '<button id="chatbot-chatgpt-submit" title="Send Message">Send</button>\n'
            '<button id="chatbot-chatgpt-erase-btn" title="Clear Conversation">Clear</button>\n'
            "</div>\n</div>\n"
            f'<button id="chatgpt-open-btn" style="display: {"none" if style == "embedded" else "block"};">'
            '<i class="chatbot-open-icon"></i>Chat</button>'
        )

    # -- admin-ajax ------------------------------------------------------------------------------

    def ajax(self, ex: Exchange) -> None:
        """The plugin's three guest actions; anything else is WordPress's ``0``."""
        action = {**ex.query, **(ex.form or {})}.get("action")
        if action == REFRESH_ACTION:
            self.refresh_nonce(ex)
        elif action == SEND_ACTION:
            self.send_message(ex)
        elif action == QUEUE_ACTION:
            self.queue_status(ex)
        else:
            super().ajax(ex)

    def answer(self, ex: Exchange, value: Any, status: int = 200) -> None:
        """``wp_send_json`` with the visitor cookie set on ``init`` when the request had none."""
        _, cookie = self.visitor(ex)
        ex.respond(status, cookie + self.json_headers, php_json(value).encode("utf-8"))

    def refresh_nonce(self, ex: Exchange) -> None:
        """All eight nonces of the tick; no nonce and no cookie needed."""
        self.site.count("nonce_refreshes")
        self.answer(ex, {"success": True, "data": self.nonces()})

    def queue_status(self, ex: Exchange) -> None:
        """The queue poll: its own nonce; ``user_id`` 0 (what the page sends) counts as missing."""
        post = ex.form or {}
        nonce = post.get("chatbot_nonce", "")
        valid = {
            self.nonce_for("chatbot_queue_nonce", base) for base in (self.site.nonce, self.site.previous_nonce) if base
        }
        if nonce not in valid:
            self.answer(ex, {"success": False, "data": SECURITY_CHECK}, 403)
            return
        fields = [post.get(name) for name in ("user_id", "page_id", "session_id", "assistant_id")]
        if not all(value and value != "0" for value in fields):
            self.answer(ex, {"success": False, "data": MISSING_PARAMETERS})
            return
        key = (str(post.get("assistant_id")), "0", str(post.get("page_id")), str(post.get("session_id")))
        with self._lock:
            count = len(self._queues.get(key, []))
        self.answer(ex, {"success": True, "data": {"has_messages": count > 0, "count": count, "next_message": None}})

    def send_message(self, ex: Exchange) -> None:
        """One message, checked in the plugin's order, answered as one JSON object."""
        site = self.site
        config = site.config
        post = ex.form or {}
        site.count("chat_requests")
        nonce = post.get("chatbot_nonce")
        if nonce is None or site.nonce_verdict(nonce) is None:
            status = "missing" if nonce is None else "invalid"
            data = {
                "message": SECURITY_CHECK,
                "code": "nonce_failed",
                "suggestion": "refresh_nonce",
                "nonce_status": status,
            }
            self.answer(ex, {"success": False, "data": data}, 403)
            return
        if "session_id" not in post:
            self.answer(ex, {"success": False, "data": SESSION_REQUIRED}, 403)
            return
        session = upstream.sanitize_text_field(post["session_id"])
        if not _SESSION_ID.match(session):
            self.answer(ex, {"success": False, "data": UNAUTHORIZED}, 403)
            return
        if not self.count_message(ex.peer):
            self.answer(ex, {"success": False, "data": RATE_LIMITED}, 429)
            return
        if config.failure == "http_500":
            self.critical_error(ex)
            return
        message = upstream.sanitize_text_field(post.get("message"))
        if not message:
            self.answer(ex, {"success": False, "data": INVALID_MESSAGE})
            return
        message_id = upstream.sanitize_text_field(post.get("client_message_id")) or uniqid()
        conversation = ("original", "0", str(post.get("page_id") or ""), session)
        if not self.take_lock(conversation, message, message_id):
            site.count("queued_messages")
            self.answer(
                ex, {"success": True, "data": {"queued": True, "client_message_id": message_id, "message": QUEUED}}
            )
            return
        try:
            reply = self.reply(ex, message, message_id)
            for queued_message, queued_id in self.drain_queue(conversation):
                self.reply(ex, queued_message, queued_id, wait=False)  # answered and logged, never sent
        finally:
            with self._lock:
                self._locks.pop(conversation, None)
        self.answer(ex, {"success": True, "data": reply})

    def count_message(self, address: str) -> bool:
        """The per-address guest limit: ``config.rate_limit`` messages while the counter lives (renewed by each)."""
        now = time.monotonic()
        with self._lock:
            count, expires = self._rate.get(address, (0, 0.0))
            if expires <= now:
                count = 0
            if count >= self.site.config.rate_limit:
                return False
            self._rate[address] = (count + 1, now + RATE_WINDOW)
            return True

    def take_lock(self, conversation: tuple[str, ...], message: str, message_id: str) -> bool:
        """Hold the conversation, or queue the message behind the request that holds it."""
        now = time.monotonic()
        with self._lock:
            if self._locks.get(conversation, 0.0) > now:
                self._queues.setdefault(conversation, []).append((message, message_id))
                self._lock.notify_all()
                return False
            self._locks[conversation] = now + LOCK_SECONDS
            return True

    def in_hand(self) -> int:
        """Messages being answered or waiting in a queue (under the lock)."""
        return self._answering + sum(len(queue) for queue in self._queues.values())

    def drain_queue(self, conversation: tuple[str, ...]) -> list[tuple[str, str]]:
        with self._lock:
            return self._queues.pop(conversation, [])

    def reply(self, ex: Exchange, message: str, message_id: str, *, wait: bool = True) -> str:
        """The plugin's answer HTML for one message: the model's text (or its failure), then the learnings."""
        site = self.site
        config = site.config
        now = time.monotonic()
        with self._lock:
            self._seen_ids = {key: until for key, until in self._seen_ids.items() if until > now}
            duplicate = message_id in self._seen_ids or config.failure == "duplicate"
            self._seen_ids[message_id] = now + DUPLICATE_SECONDS
            context = self._history[-20:]
            self._history.append(message)
        if duplicate:
            return DUPLICATE + "<br><br> "
        messages = [{"role": "system", "content": CONTEXT_INTRO + " ".join(context) + " " + SYSTEM_PROMPT}]
        messages += [
            {"role": "user" if index % 2 == 0 else "assistant", "content": text} for index, text in enumerate(context)
        ]
        messages.append({"role": "user", "content": message})
        site.remember(("model", message_id), *messages)
        pieces = upstream.reply_pieces(config, message)
        self.gather(wait)
        try:
            ex.pause(config.first_delay + config.chunk_delay * len(pieces))
        finally:
            with self._lock:
                self._answering -= 1
                self._lock.notify_all()
        if config.failure == "upstream_error":
            return random.choice(CANNED_ERRORS) + "<br><br> "
        text = "".join(pieces)
        with self._lock:
            self._history.append(text)
            limit = 10 if sum(map(len, self._history)) > 10000 else 20 if sum(map(len, self._history)) > 5000 else 30
            del self._history[:-limit]
        return _links_to_html(text + "<br><br>" + self.learnings(message))

    def gather(self, wait: bool) -> None:
        """Count this answer in; with ``config.gather`` set (and ``wait``), wait until that many messages are
        in hand at once: being answered, or queued behind a busy conversation."""
        with self._lock:
            self._answering += 1
            self._lock.notify_all()
            if wait:
                self._lock.wait_for(lambda: self.in_hand() >= self.site.config.gather, timeout=GATHER_SECONDS)
            site = self.site
            site.count("peak_answers", max(0, self._answering - site.stats.peak_answers))

    def learnings(self, message: str) -> str:
        """The "learnings" block: a sentence and links to the site's posts a message word matches."""
        words = {word.strip(".,!?").casefold() for word in message.split() if len(word) > 3}
        links = [
            f'<li><span><a href="{self.site.url}{path}" target="_blank">{title}</a></span></li>'
            for title, path in POSTS
            if words & {word.strip(".,!?").casefold() for word in title.split()}
        ]
        if not links:
            return " "
        return "\n\n" + random.choice(LEARNINGS) + " <ul>" + "".join(links) + "</ul> "
