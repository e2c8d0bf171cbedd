"""AIPKit (AI Power 2.3+, "AI Puffer", 2.4.71): bots configured in ``data-config``, then a chat in two steps.

Step 1 POSTs the message to ``admin-ajax.php`` (``aipkit_cache_sse_message``) and gets back a cache key
that can be read once, within a minute. Step 2 opens an EventSource on ``aipkit_frontend_chat_stream``
with the key, the bot and the ids the visitor's page made up for itself. Step 1 refuses a bad nonce with
HTTP 403; step 2 always answers 200, after a 4 KiB comment that defeats proxy buffering, and says what
went wrong in an ``error`` event. The plugin writes its JSON with ``JSON_UNESCAPED_UNICODE``, so reply
text travels as raw UTF-8 (slashes still as ``\\/``), and it never cuts a character between two events.
"""

from __future__ import annotations

import logging
import secrets
import string
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import upstream
from .config import Bot
from .exchange import Exchange
from .wordpress import CSS, JS, Headers, PageParts, WordPressApp, esc_attr, php_json, sanitize_key, site_path, uniqid

if TYPE_CHECKING:
    from .server import ReplicaSite

__all__ = ["AIPKitApp"]

log = logging.getLogger("scraper.replica")

VERSION = "2.4.71"
PLUGIN_PATH = "/wp-content/plugins/gpt3-ai-content-generator"
PAGE_TEXT = "Pick a model and ask it anything."
# What the bot's model gets first (the plugin's default instructions, as its upstream request shows).
SYSTEM_PROMPT = "You are a helpful AI Assistant. Please be friendly."
CACHE_ACTION = "aipkit_cache_sse_message"
STREAM_ACTION = "aipkit_frontend_chat_stream"
NONCE_ACTION = "aipkit_get_frontend_chat_nonce"
CACHE_KEY_PREFIX = "aipkit_sse_"
PREAMBLE = b":" + b" " * 4096 + b"\n\n"  # an SSE comment, sent first so no proxy holds the stream back
PRUNE_AFTER = 3600.0  # seconds an expired cache entry is kept (it answers "expired" until then)

SESSION_EXPIRED = "Your session has expired or the request is invalid. Please refresh the page and try again."
EMPTY_MESSAGE = "Data to cache (message or image) cannot be empty."
EMBED_NOT_AVAILABLE = "Embed feature is not available with your current plan."
NOT_PERMITTED = "This domain is not permitted to access the chatbot."
SECURITY_CHECK = "Security check failed. Please refresh the page and try again."
KEY_MISSING = "Message cache key is missing."
NOT_IN_CACHE = "Message not found in cache."
CACHE_EXPIRED = "Cached message has expired."
INVALID_BOT = "Invalid chatbot specified."
CONVERSATION_MISSING = "Conversation ID is missing."
SESSION_MISSING = "Session ID is missing for guest."
UPSTREAM_ERROR = f"API Error: {upstream.UPSTREAM_ERROR} (Code: lab_forced_error)"
WARNING = "Lab forced upstream warning: the reply goes on."
POPUP_HINT = "Need help? Ask me!"

# wp_send_json as this site's WordPress (6.1.9) orders the headers.
JSON_HEADERS: Headers = [
    ("X-Robots-Tag", "noindex"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("Content-Type", "application/json; charset=UTF-8"),
    ("Expires", "Wed, 11 Jan 1984 05:00:00 GMT"),
    ("Cache-Control", "no-cache, must-revalidate, max-age=0"),
]

# The stream step replaces WordPress's cache headers with its own; PHP has already said "Connection: close".
STREAM_HEADERS: Headers = [
    ("X-Robots-Tag", "noindex"),
    ("X-Content-Type-Options", "nosniff"),
    ("Expires", "Wed, 11 Jan 1984 05:00:00 GMT"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("Cache-Control", "no-cache, no-store, must-revalidate, max-age=0, no-transform"),
    ("Pragma", "no-cache"),
    ("Content-Type", "text/event-stream; charset=utf-8"),
    ("X-Accel-Buffering", "no"),
    ("Connection", "keep-alive"),
]

THEME_SETTINGS: dict[str, Any] = {
    "primary_color": "#0B5FFF",
    "secondary_color": "#F1F5FF",
    "accent_color": "#111111",
    "font_family": "inherit",
    "bubble_border_radius": 16,
    "container_max_width": 896,
    "popup_width": 380,
    "container_height": 620,
    "container_max_height": 90,
    "container_min_height": 320,
    "popup_height": 620,
    "popup_min_height": 320,
    "popup_max_height": 90,
}

TEXT: dict[str, str] = {
    "sendMessage": "Send Message",
    "sending": "Sending...",
    "stopResponse": "Stop Response",
    "typeMessage": "Type your message...",
    "thinking": "Thinking",
    "streaming": "Streaming...",
    "statusThinking": "Thinking...",
    "statusProcessing": "Processing...",
    "statusSearchingWeb": "Searching web...",
    "statusRetrievingContext": "",
    "statusCallingTool": "Calling tool...",
    "errorPrefix": "Error:",
    "userPrefix": "User",
    "sources": "Sources",
    "source": "Source",
    "clearChat": "Clear Chat",
    "fullscreen": "Fullscreen",
    "exitFullscreen": "Exit Fullscreen",
    "download": "Download Transcript",
    "downloadTxt": "Download TXT",
    "downloadPdf": "Download PDF",
    "downloadEmpty": "Nothing to download.",
    "pdfError": "Could not open the print window. Please allow popups and try again.",
    "streamError": "Stream error. Please try again.",
    "connError": "Connection error. Please try again.",
    "initialGreeting": "Hello there!",
    "initialSubgreeting": "How can I help you today?",
    "sidebarToggle": "Toggle Conversation Sidebar",
    "newChat": "New Chat",
    "conversations": "Conversations",
    "searchConversations": "Search conversations",
    "historyGuests": "History unavailable for guests.",
    "historyEmpty": "No past conversations.",
    "historySidebarEmpty": "No conversations yet — start one to see it here.",
    "historySearchEmpty": "No conversations match your search.",
    "historyLoadingOlder": "Loading older conversations...",
    "fileUploading": "Uploading %s",
    "fileIndexing": "Indexing %s",
    "detachFile": "Detach file",
    "feedbackLikeLabel": "Like response",
    "feedbackDislikeLabel": "Dislike response",
    "feedbackSubmitted": "Feedback submitted",
    "copyActionLabel": "Copy response",
    "copySuccess": "Copied!",
    "copyCodeLabel": "Copy code",
    "consentTitle": "Consent Required",
    "consentMessage": "Before starting the conversation, please agree to our Terms of Service and Privacy Policy.",
    "consentButton": "I Agree",
    "playActionLabel": "Play audio",
    "voiceInput": "Voice input",
    "voiceStarting": "Starting microphone...",
    "voiceRecording": "Listening...",
    "voiceCancelRecording": "Cancel recording",
    "voiceFinishRecording": "Finish recording",
    "voiceTranscribing": "Transcribing audio...",
    "voiceAlreadyActive": "Voice recording is already active in another chatbot.",
    "voiceUnavailableScriptError": "Voice input is currently unavailable.",
    "voiceRequiresHttps": "Voice recording requires a secure HTTPS connection.",
    "voiceBrowserUnsupported": "Voice recording is not supported by this browser.",
    "voiceRecordingFailedPrefix": "Recording failed",
    "voiceTranscriptionFailedPrefix": "Transcription failed",
    "voiceProcessingError": "Error processing recorded audio.",
    "voiceConfigError": "Failed to process audio: configuration error.",
    "imageCommandEmptyPrompt": (
        "Please provide a description after the image command (e.g., /image a cat playing with a ball)."
    ),
    "pauseActionLabel": "Pause audio",
    "webSearchToggle": "Toggle Web Search",
    "webSearchActive": "Web Search Active",
    "webSearchInactive": "Web Search Inactive",
    "googleSearchGroundingToggle": "Toggle Google Search Grounding",
    "googleSearchGroundingActive": "Google Search Grounding Active",
    "googleSearchGroundingInactive": "Google Search Grounding Inactive",
    "dismissHint": "Dismiss",
}

GLOBAL_TEXT: dict[str, str] = {
    "fullscreenError": "Error: Fullscreen functionality is unavailable.",
    "copySuccess": "Copied!",
    "copyFail": "Failed to copy",
    "copyActionLabel": "Copy response",
    "feedbackSubmitted": "Feedback submitted",
    "feedbackError": "Error saving feedback",
    "newChat": "New Chat",
    "sidebarToggle": "Toggle Conversation Sidebar",
    "historyGuests": "History unavailable for guests.",
    "historyEmpty": "No past conversations.",
    "playActionLabel": "Play audio",
    "pauseActionLabel": "Pause audio",
    "uploadFile": "Upload File (TXT, PDF)",
    "fileUploading": "Uploading %s",
    "fileIndexing": "Indexing %s",
    "detachFile": "Detach file",
}

# The bundles the page may load on demand (this replica's page script needs none of them).
ASSET_BUNDLES = {
    "chatSidebar": "public-chat-sidebar",
    "chatStt": "public-chat-stt",
    "chatUploads": "public-chat-uploads",
    "chatTts": "public-chat-tts",
    "chatStarters": "public-chat-starters",
    "chatImageCommand": "public-chat-image-command",
    "chatRealtime": "public-chat-realtime",
    "chatPdf": "public-chat-pdf",
}

# The inline style the plugin puts on each chat element (the custom theme's colours).
THEME_STYLE = (
    "--aipkit-chat-accent-color:#0B5FFF;--aipkit-chat-accent-rgb:11,95,255;--aipkit-chat-selection-rgb:11,95,255;"
    "--aipkit-chat-on-accent-color:#FFFFFF;--aipkit-chat-on-accent-rgb:255,255,255;"
    "--aipkit-chat-accent-hover-color:#2872FF;--aipkit-chat-accent-tint-color:#E2ECFF;"
    "--aipkit-chat-accent-on-tint-color:#0B5FFF;--aipkit-chat-accent-shadow-color:rgba(11,95,255,0.3);"
    "--aipkit-chat-header-avatar-bg-color:rgba(255,255,255,0.18);"
    "--aipkit-chat-header-status-text-color:rgba(255,255,255,0.85);"
)
SEND_ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24" fill="none" '
    'stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" class="aipkit_send_icon">'
    '<path d="M12 5l0 14" /><path d="M18 11l-6 -6" /><path d="M6 11l6 -6" /></svg>'
)
CHAT_ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24" fill="none" '
    'stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">'
    '<path d="M4 5h16v11h-9l-5 4v-4h-2z" /></svg>'
)


def bot_config(bot: Bot, *, ajax_url: str, nonce: str | None, post_id: int) -> dict[str, Any]:
    """The ``data-config`` object of one bot: the 67 keys of the real page, in its order (``nonce`` left out
    when None)."""
    config: dict[str, Any] = {"botId": bot.id, "ajaxUrl": ajax_url, "nonce": nonce, "postId": post_id}
    if nonce is None:
        del config["nonce"]
    config.update(
        {
            "theme": "custom",
            "popupEnabled": bot.popup,
            "popupPosition": "bottom-right",
            "popupDelay": 0,
            "popupIconType": "default",
            "popupIconStyle": "circle",
            "popupIconValue": "chat-bubble",
            "popupIconSize": "medium",
            "customThemePresetKey": "ocean",
            "popupLabelEnabled": True,
            "popupLabelText": POPUP_HINT,
            "popupLabelMode": "on_delay",
            "popupLabelDelaySeconds": 1,
            "popupLabelAutoHideSeconds": 0,
            "popupLabelDismissible": True,
            "popupLabelFrequency": "once_per_visitor",
            "popupLabelShowOnMobile": True,
            "popupLabelShowOnDesktop": True,
            "popupLabelVersion": "",
            "popupLabelSize": "large",
            "footerText": "",
            "headerAvatarType": "inherit",
            "headerAvatarValue": "chat-bubble",
            "headerAvatarUrl": "",
            "headerOnlineText": "Online",
            "enableFullscreen": True,
            "enableDownload": False,
            "enableCopyButton": True,
            "enableFeedback": True,
            "enableSidebar": False,
            "pdfDownloadActive": False,
            "headerName": bot.name,
            "enableStarters": True,
            "starters": ["What can you do?", "Tell me a fun fact"],
            "requireConsentCompliance": False,
            "ttsEnabled": False,
            "ttsAutoPlay": False,
            "ttsProvider": "Google",
            "ttsVoiceId": "Kore",
            "ttsGoogleModelId": "gemini-3.1-flash-tts-preview",
            "ttsOpenAIModelId": "tts-1",
            "ttsElevenLabsModelId": "eleven_multilingual_v2",
            "enableVoiceInputUI": False,
            "enableRealtimeVoiceUI": False,
            "directVoiceMode": False,
            "realtimeModel": "gpt-realtime-2.1",
            "sttProvider": "OpenAI",
            "imageTriggers": "/image, /generate",
            "fileUploadEnabledUI": False,
            "imageUploadEnabledUI": False,
            "inputActionButtonEnabled": False,
            "provider": bot.provider,
            "fileUploadProvider": "openai",
            "vectorStoreProvider": "openai",
            "enableOpenAIConversationState": False,
            "enableGoogleConversationState": False,
            "allowWebSearchTool": False,
            "webToggleDefaultOn": False,
            "showSources": True,
            "allowGoogleSearchGrounding": False,
            "customThemeSettings": THEME_SETTINGS,
            "text": TEXT,
            "customTypingText": "",
        }
    )
    return config


def attribute_json(value: Any) -> str:
    """JSON as the plugin prints it in an attribute (``wp_json_encode`` with the HEX flags and raw Unicode)."""
    return php_json(value, unescaped_unicode=True, hex_specials=True)


def event(name: str | None, value: Any, event_id: str | None = None) -> bytes:
    """One SSE event as the plugin writes it: optional ``event:`` and ``id:`` lines, the JSON data line."""
    lines = [f"event: {name}"] if name else []
    if event_id:
        lines.append(f"id: {event_id}")
    lines.append(f"data: {php_json(value, unescaped_unicode=True)}")
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def error_event(message: str, *, fatal: bool = True) -> bytes:
    """An ``error`` (or, not fatal, ``warning``) event, stamped ``err-<unix time>`` as the plugin stamps it."""
    return event("error" if fatal else "warning", {"error": message}, f"err-{int(time.time())}")


DONE = event("done", {"finished": True})


def absint(value: Any) -> int:
    """PHP's ``absint``: the leading integer of a string (0 if none), made positive."""
    text = (value if isinstance(value, str) else "").lstrip(" \t\n\r\v\f")
    sign = text[:1] if text[:1] in "+-" else ""
    digits = ""
    for char in text[len(sign) :]:
        if not char.isascii() or not char.isdigit():
            break
        digits += char
    return int(digits) if digits else 0


def php_empty(value: str) -> bool:
    """PHP's ``empty`` on a request string: "" and "0" are empty."""
    return value in ("", "0")


def new_cache_key() -> str:
    """``aipkit_sse_`` and 32 letters and digits, as ``wp_generate_password(32, false)`` makes them."""
    alphabet = string.ascii_letters + string.digits
    return CACHE_KEY_PREFIX + "".join(secrets.choice(alphabet) for _ in range(32))


@dataclass
class _Cached:
    """One message waiting in the plugin's cache table for its stream."""

    message: str
    expires: float  # time.monotonic()


class AIPKitApp(WordPressApp):
    """The AIPKit site: its bots on ``/`` and ``/chat/``, chat through two ``admin-ajax.php`` calls."""

    plugin = "aipkit"
    slug = "chat"
    title = "Chat"
    page_text = PAGE_TEXT
    post_id = 261  # the chat page of chatgptfree.ai, where these bots live
    powered_by = "PHP/8.2.36"
    ajax_actions = (CACHE_ACTION, STREAM_ACTION, NONCE_ACTION)
    json_headers = JSON_HEADERS
    static_files = (
        ("/wp-content/plugins/gpt3-ai-content-generator/dist/js/public-main.bundle.js", "aipkit-chat.js", JS),
        ("/wp-content/plugins/gpt3-ai-content-generator/dist/css/public-main.bundle.css", "aipkit-chat.css", CSS),
    )

    @classmethod
    def chat_call(cls, ex: Exchange) -> bool:
        """The stream step: a GET of admin-ajax."""
        return site_path(ex.path) == "/wp-admin/admin-ajax.php" and ex.query.get("action") == STREAM_ACTION

    def __init__(self, site: ReplicaSite) -> None:
        super().__init__(site)
        self._cache: dict[str, _Cached] = {}
        self._cache_lock = threading.Lock()

    # -- page ------------------------------------------------------------------------------------

    def page_parts(self, ex: Exchange) -> PageParts:
        """One chat element per bot, the plugin's inline settings and its bundle, shaped by ``config.page``."""
        core = self.core_url
        dist = f"{core}{PLUGIN_PATH}/dist"
        urls = {"markdownIt": f"{dist}/vendor/js/markdown-it.min.js?ver={VERSION}"}
        urls["markdownit"] = urls["markdownIt"]
        urls.update({name: f"{dist}/js/{bundle}.bundle.js?ver={VERSION}" for name, bundle in ASSET_BUNDLES.items()})
        footer = (
            "<script id='aipkit-public-main-js-extra'>\n"
            f"var aipkit_chat_config_global = {php_json({'text': GLOBAL_TEXT})};\n"
            "</script>\n"
            "<script id='aipkit-public-main-js-before'>\n"
            "window.aipkitPublicAssetUrls = Object.assign({}, window.aipkitPublicAssetUrls || {}, "
            f"{php_json(urls)});\n"
            f'window.aipkit_getChatNonceAction = "{NONCE_ACTION}";\n'
            "</script>"
        )
        return PageParts(
            before=f"<p>{PAGE_TEXT}</p>",
            box="\n".join(self.chatbot(bot) for bot in self.site.config.bots),
            head=(
                f"<link rel='stylesheet' id='aipkit-public-main-css' "
                f"href='{dist}/css/public-main.bundle.css?ver={VERSION}' media='all' />\n"
            ),
            footer=footer,
            scripts=[(f"{dist}/js/public-main.bundle.js?ver={VERSION}", "aipkit-public-main-js")],
        )

    def chatbot(self, bot: Bot) -> str:
        """The ``[aipkit_chatbot id=N]`` element: inline, or a popup wrapper whose inner box carries no config."""
        mode = self.site.config.page
        config = bot_config(
            bot,
            ajax_url=f"{self.core_url}/wp-admin/admin-ajax.php",
            nonce=None if mode == "no_nonce" else self.site.nonce,
            post_id=0 if mode == "no_post_id" else self.post_id,
        )
        encoded = attribute_json(config)
        if mode == "malformed":  # cut short, as a broken cache or optimiser leaves it
            encoded = encoded[: len(encoded) // 2]
        data_config = esc_attr(encoded)
        theme = esc_attr(attribute_json(THEME_SETTINGS))
        inner = self.chat_inner(bot)
        if not bot.popup:
            return (
                '<div class="aipkit_chat_container aipkit-theme-custom  aipkit-sidebar-state-closed   " '
                f'id="aipkit_chat_container_{bot.id}" data-bot-id="{bot.id}" data-config=\'{data_config}\' '
                f"data-custom-theme='{theme}' style=\"{THEME_STYLE}\" >\n{inner}\n</div>"
            )
        return (
            '<div class="aipkit_popup_wrapper aipkit-popup-theme-custom aipkit-popup-standard" '
            f'id="aipkit_popup_wrapper_{bot.id}" data-config=\'{data_config}\' data-bot-id="{bot.id}" '
            f'data-icon-size="medium" style="{THEME_STYLE}">\n'
            '<button type="button" class="aipkit_popup_trigger aipkit_popup_position-bottom-right '
            f'aipkit_popup_trigger--size-medium" id="aipkit_popup_trigger_{bot.id}" aria-label="Open Chat" '
            f'title="Open Chat" aria-haspopup="dialog" aria-controls="aipkit_chat_container_{bot.id}" '
            'aria-expanded="false"  data-icon-style="circle" data-icon-type="default" data-label-open="Open Chat" '
            'data-label-close="Close Chat">\n'
            f'<span class="aipkit_popup_icon aipkit_popup_icon--open">{CHAT_ICON}</span>\n</button>\n'
            '<div class="aipkit_popup_hint aipkit_popup_position-bottom-right aipkit_popup_hint--size-large" '
            f'id="aipkit_popup_hint_{bot.id}" role="status" aria-live="polite" aria-atomic="true" '
            f'aria-hidden="true" data-bot-id="{bot.id}" hidden>\n'
            f'<span class="aipkit_popup_hint_text">{POPUP_HINT}</span>\n'
            '<button type="button" class="aipkit_popup_hint_close" aria-label="Dismiss">&times;</button>\n'
            "</div>\n"
            '<div class="aipkit_chat_container aipkit_popup_content aipkit-theme-custom  '
            'aipkit_popup_position-bottom-right aipkit-sidebar-state-closed   " '
            f'id="aipkit_chat_container_{bot.id}" aria-hidden="true" inert data-custom-theme=\'{theme}\' '
            f'style="{THEME_STYLE}" >\n{inner}\n</div>\n'
            "</div><!-- /aipkit_popup_wrapper -->"
        )

    def chat_inner(self, bot: Bot) -> str:
        """The inside of a chat box: header with the bot's name, the message list, the input."""
        return (
            '<div class="aipkit_chat_main">\n'
            '<div class="aipkit_chat_header"><div class="aipkit_header_info">'
            f'<span class="aipkit_chat_header_name">{esc_attr(bot.name)}</span> '
            '<span class="aipkit_chat_header_status">Online</span></div></div>\n'
            f'<div class="aipkit_chat_messages" id="aipkit_chat_messages_{bot.id}" role="log" aria-live="polite">'
            "</div>\n"
            '<div class="aipkit_chat_input"><div class="aipkit_chat_input_wrapper">\n'
            f'<textarea id="aipkit_chat_input_field_{bot.id}" class="aipkit_chat_input_field" '
            'placeholder="Type your message..." aria-label="Type your message..." rows="1"></textarea>\n'
            f'<button type="button" id="aipkit_send_btn_{bot.id}" '
            'class="aipkit_input_action_btn aipkit_chat_action_btn aipkit_send_btn" aria-label="Send Message" '
            f'title="Send Message">{SEND_ICON}</button>\n'
            "</div></div>\n"
            "</div>"
        )

    # -- admin-ajax ------------------------------------------------------------------------------

    def ajax(self, ex: Exchange) -> None:
        """The three actions the plugin registers; anything else (the old ``wpaicg_*`` ones too) is ``0``."""
        action = {**ex.query, **(ex.form or {})}.get("action")  # PHP's $_REQUEST
        if action == CACHE_ACTION:
            self.cache_message(ex)
        elif action == STREAM_ACTION:
            self.chat_stream(ex)
        elif action == NONCE_ACTION:
            self.refresh_nonce(ex)
        else:
            super().ajax(ex)

    def cross_origin(self, ex: Exchange) -> bool:
        """Whether the request's Origin names another host or scheme than the site (the port does not count)."""
        origin = ex.origin
        if not origin:
            return False
        theirs = urlsplit(origin if "//" in origin else f"http://{origin}")
        ours = urlsplit(self.site.url)
        return (theirs.hostname, theirs.scheme or "http") != (ours.hostname, ours.scheme or "http")

    def json_error(self, ex: Exchange, status: int, message: str, code: str) -> None:
        """``wp_send_json_error`` with the plugin's message and code."""
        self.ajax_json(ex, {"success": False, "data": {"message": message, "code": code}}, status)

    def cache_message(self, ex: Exchange) -> None:
        """Step 1: origin, nonce and message checks, then a fresh single-use cache key for the message."""
        site = self.site
        site.count("chat_requests")
        post = ex.form or {}  # the plugin reads $_POST only
        if absint(post.get("bot_id")) > 0 and self.cross_origin(ex):
            self.json_error(ex, 403, EMBED_NOT_AVAILABLE, "embed_not_available")
            return
        nonce = post.get("_ajax_nonce")
        if nonce is None or site.nonce_verdict(sanitize_key(nonce)) is None:
            self.json_error(ex, 403, SESSION_EXPIRED, "nonce_failure_cache_sse")
            return
        if site.config.failure == "http_500":
            self.critical_error(ex)
            return
        message = (post.get("message") or "").replace("\0", "")
        if php_empty(message):
            self.json_error(ex, 400, EMPTY_MESSAGE, "empty_data_to_cache")
            return
        key = new_cache_key()
        now = time.monotonic()
        with self._cache_lock:
            for stale in [name for name, entry in self._cache.items() if entry.expires + PRUNE_AFTER < now]:
                del self._cache[stale]
            # MySQL compares the keys without case, and the stream step lowercases them (sanitize_key)
            self._cache[key.lower()] = _Cached(message, now + site.config.cache_lifetime)
        site.count("cache_keys_issued")
        self.ajax_json(ex, {"success": True, "data": {"cache_key": key}})

    def take(self, key: str) -> tuple[str | None, str | None]:
        """Read and delete a cached message: (message, None), or (None, the error the plugin reports)."""
        with self._cache_lock:
            entry = self._cache.get(key)
            if entry is None:
                return None, NOT_IN_CACHE
            if time.monotonic() >= entry.expires:
                return None, CACHE_EXPIRED  # the row stays until the plugin's cleanup
            del self._cache[key]
        self.site.count("cache_keys_consumed")
        return entry.message, None

    def stream_error(self, ex: Exchange, message: str) -> None:
        """A stream that is only the preamble, one ``error`` event and ``done``."""
        ex.stream(200, STREAM_HEADERS, [], head=PREAMBLE + error_event(message) + DONE)

    def chat_stream(self, ex: Exchange) -> None:
        """Step 2, checks in the plugin's order: origin, nonce (neither consumes the key), the key (read and
        deleted), then bot, conversation and session (so these failures burn the key), then the reply."""
        site = self.site
        query = ex.query  # the plugin reads $_GET only
        bot_id = absint(query.get("bot_id"))
        if bot_id > 0 and self.cross_origin(ex):
            self.stream_error(ex, NOT_PERMITTED)
            return
        nonce = query.get("_ajax_nonce")
        if nonce is None or site.nonce_verdict(nonce, stream=True) is None:
            self.stream_error(ex, SECURITY_CHECK)
            return
        key = sanitize_key(query.get("cache_key"))
        if not key:
            self.stream_error(ex, KEY_MISSING)
            return
        message, problem = self.take(key)
        if message is None:
            self.stream_error(ex, problem or NOT_IN_CACHE)
            return
        bot = next((bot for bot in site.config.bots if bot.id == bot_id), None)
        conversation = sanitize_key(query.get("conversation_uuid"))
        session = upstream.sanitize_text_field(query.get("session_id"))
        if bot is None:
            self.stream_error(ex, INVALID_BOT)
        elif php_empty(conversation):
            self.stream_error(ex, CONVERSATION_MISSING)
        elif php_empty(session):
            self.stream_error(ex, SESSION_MISSING)
        else:
            self.reply(ex, bot, session, conversation, message)

    def reply(self, ex: Exchange, bot: Bot, session: str, conversation: str, message: str) -> None:
        """The reply stream (OpenAI Responses shape: status events, deltas, the response id, ``done``), or
        the stream a failure mode makes."""
        site = self.site
        config = site.config
        failure = config.failure
        pieces = upstream.reply_pieces(config, message)
        key = (bot.id, session, conversation)
        given = [
            {"role": "system", "content": SYSTEM_PROMPT},
            *site.history_of(key),
            {"role": "user", "content": message},
        ]
        site.note("model_inputs", given)  # the server-kept turns of this conversation, then the message
        history: list[dict[str, str]] = [{"role": "user", "content": message}]
        if failure != "upstream_error":
            history.append({"role": "assistant", "content": "".join(pieces)})
        site.remember(key, *history)
        site.note("stream_bot_ids", bot.id)
        log.debug("aipkit reply for bot %s (%s), session %s, conversation %s", bot.id, bot.name, session, conversation)
        head = PREAMBLE + event("message_start", {"message_id": f"aipkit-msg-{uniqid(more_entropy=True)}"})
        if failure == "upstream_error":  # the plugin reports the upstream's failure and stops: no done
            ex.stream(200, STREAM_HEADERS, [error_event(UPSTREAM_ERROR)], head=head)
            return
        response_id = upstream.response_id()
        status = [
            event("status", {"type": kind, "status": "in_progress", "response_id": response_id})
            for kind in ("response.created", "response.in_progress")
        ]
        deltas = [event(None, {"delta": piece}) for piece in pieces]
        if failure == "warning":
            deltas.insert(len(deltas) // 2, error_event(WARNING, fatal=False))
        events = [*status, *deltas, event("openai_response_id", {"id": response_id}), DONE]
        if failure == "cut_stream":
            events = events[: len(events) // 2]
        elif failure == "no_terminator":
            events = events[:-1]
        ex.stream(200, STREAM_HEADERS, events, head=head)

    def refresh_nonce(self, ex: Exchange) -> None:
        """``aipkit_get_frontend_chat_nonce``: the current guest nonce, unless a foreign page asks for a bot."""
        post = ex.form or {}
        if absint(post.get("bot_id")) > 0 and self.cross_origin(ex):
            self.json_error(ex, 403, NOT_PERMITTED, "cors_denied")
            return
        self.site.count("nonce_refreshes")
        self.ajax_json(ex, {"success": True, "data": {"nonce": self.site.nonce}})
