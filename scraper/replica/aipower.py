"""AI Power (gpt3-ai-content-generator 2.2): the shortcode page and ``admin-ajax.php`` chat.

The stream is the upstream OpenAI SSE passed through: ``chat.completion.chunk`` JSON with raw UTF-8
and Python-style separators, ending in ``data: [DONE]``. Plugin-made events (limits, bans, errors)
are PHP-encoded. Like the real plugin, the bytes of an event can reach the client cut inside a
character.
"""

from __future__ import annotations

import json
from typing import Any

from . import upstream
from .exchange import Exchange
from .wordpress import (
    AJAX_JSON_HEADERS,
    AJAX_STREAM_HEADERS,
    CSS,
    JS,
    PageParts,
    WordPressApp,
    esc_attr,
    php_json,
)

__all__ = ["AIPowerApp"]

VERSION = "2.2.0"
PLUGIN_PATH = "/wp-content/plugins/gpt3-ai-content-generator"
CHAT_ACTIONS = {"wpaicg_chat_shortcode_message": "shortcode", "wpaicg_chatbox_message": "widget"}
EXPIRED = "The link you followed has expired."
NOTHING_INPUT = "It appears that nothing was inputted."
GREETING = "Hello , how can I help you today?"
PAGE_TEXT = "Ask our assistant anything about this site."
CONTEXT_PROMPT = (
    "Converse as if you were an AI assistant. Answer the question as truthfully as possible using the "
    "provided context. Tone: Friendly.\n, Current context: "
)

# Plugin-made stream events: (message, flag) written as {"msg": ..., flag: true}.
SPECIAL_EVENTS = {
    "token_limit": ("You have reached your token limit.", "tokenLimitReached"),
    "flagged": (
        "Your message has been flagged as potentially harmful or inappropriate. Please review your "
        "message and try again.",
        "messageFlagged",
    ),
    "ip_banned": ("You are not allowed to access this feature. Please contact the administrator.", "ipBanned"),
    "pinecone_error": ("There was an error while retrieving the context from Pinecone.", "pineconeError"),
}
LIMITED_MESSAGE = "You have reached the usage limit for this chat. Please try again later."
API_KEY_ERROR = "Incorrect API key provided."

WPAICG_LANGUAGES = {
    "source": "Sources",
    "no_result": "No result found",
    "wrong": "Something went wrong",
    "prompt_strength": "Please enter a valid prompt strength value.",
    "num_inference_steps": "Please enter a valid number of inference steps value.",
    "guidance_scale": "Please enter a valid guidance scale value.",
    "error_image": "Please select least one image for generate",
    "save_image_success": "Save images to media successfully",
    "select_all": "Select All",
    "unselect": "Unselect",
    "select_save_error": "Please select least one image to save",
    "alternative": "Alternative Text",
    "title": "Title",
    "edit_image": "Edit Image",
    "caption": "Caption",
    "description": "Description",
    "save": "Save",
    "removed_pdf": "Your pdf session is cleared",
}

SEND_ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20" viewBox="0 0 24 24" fill="none" '
    'stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">'
    '<line x1="22" y1="2" x2="11" y2="13"></line><polygon points="22 2 15 22 11 13 2 9 22 2"></polygon></svg>'
)


# How many earlier messages of the history the plugin keeps for its model ("conversation_cut", default 10).
HISTORY_CUT = 10


def sse(data: str) -> bytes:
    """One ``data:`` event."""
    return f"data: {data}\n\n".encode()


def openai_chunk(cid: str, created: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
    """A ``chat.completion.chunk`` event as the upstream sends it (raw UTF-8, ``", "`` separators)."""
    chunk = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": upstream.MODEL,
        "system_fingerprint": upstream.FINGERPRINT,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return sse(json.dumps(chunk, ensure_ascii=False))


def upstream_error_events() -> list[bytes]:
    """What the plugin streams when the upstream fails: the error, word by word, twice, and no ``[DONE]``."""
    words = upstream.split_words(upstream.UPSTREAM_ERROR)
    once = [b"event: message\n" + sse(php_json({"choices": [{"delta": {"content": w}}]})) for w in words]
    once.append(sse(php_json({"choices": [{"finish_reason": "stop"}]})))
    return once + once


class AIPowerApp(WordPressApp):
    """The AI Power site: chat page at ``/`` and ``/aipower-chat/``, chat through ``admin-ajax.php``."""

    plugin = "aipower"
    slug = "aipower-chat"
    title = "AI Power Chat"
    page_text = PAGE_TEXT
    ajax_actions = tuple(CHAT_ACTIONS)
    static_files = (
        ("/wp-content/plugins/gpt3-ai-content-generator/public/js/wpaicg-chat.js", "wpaicg-chat.js", JS),
        ("/wp-content/plugins/gpt3-ai-content-generator/public/css/wpaicg-chat.css", "wpaicg-chat.css", CSS),
    )

    # -- page ------------------------------------------------------------------------------------

    def page_parts(self, ex: Exchange) -> PageParts:
        """The chat shortcode (or the floating widget), its settings script and the plugin's script."""
        mode = self.site.config.page
        core = self.core_url
        style = f"{core}{PLUGIN_PATH}/public/css/wpaicg-chat.css?ver={VERSION}"
        return PageParts(
            before=f"<p>{PAGE_TEXT}</p>",
            box=self.chatbox(mode),
            after=f"<script>\nvar wpaicgParams = {self.params(mode)};\n</script>",
            head=f"<link rel='stylesheet' id='wpaicg-chat-css' href='{style}' media='all' />\n",
            scripts=[(f"{core}{PLUGIN_PATH}/public/js/wpaicg-chat.js?ver={VERSION}", "wpaicg-init-js")],
        )

    def params(self, mode: str) -> str:
        """The ``wpaicgParams`` object literal (``wp_localize_script``)."""
        params: dict[str, Any] = {"ajax_url": f"{self.core_url}/wp-admin/admin-ajax.php"}
        if mode != "no_nonce":
            params["search_nonce"] = self.site.nonce
        params.update({"logged_in": "0", "languages": WPAICG_LANGUAGES, "katex_enabled": "0"})
        return php_json(params)

    def chatbox(self, mode: str) -> str:
        """The chat box element with every data attribute the plugin prints, and its inner UI."""
        widget = mode == "widget"
        post_id = {"no_post_id": None, "lt_post_id": f"<{self.post_id}"}.get(mode, str(self.post_id))
        attrs: list[tuple[str, str | None]] = [
            ("data-ai-bg-color", "#d1e8ff"),
            ("data-assistant-enabled", "false"),
            ("data-autoload_chat_conversations", "0"),
            ("data-bg_text_field", "#ffffff"),
            ("data-bg_text_field_border_color", "#ced4da"),
            ("data-bg_text_field_font_color", "#495057"),
            ("data-bot-id", "0"),
            ("data-chat_rounded", "8"),
            ("data-color", "#495057"),
            ("data-copy_btn", ""),
            ("data-elevenlabs-model", ""),
            ("data-enable-lead-email", "1"),
            ("data-enable-lead-name", "1"),
            ("data-enable-lead-phone", "1"),
            ("data-feedback_btn", ""),
            ("data-feedback_message", "Please provide details: (optional)"),
            ("data-feedback_success", "Thank you for your feedback!"),
            ("data-feedback_title", "Feedback"),
            ("data-fontsize", "14"),
            ("data-footer", "false"),
            ("data-has-bar", "false"),
            ("data-height", "50%"),
            ("data-lead-collection", "0"),
            ("data-lead-email", "Email"),
            ("data-lead-name", "Name"),
            ("data-lead-phone", "Phone"),
            ("data-lead-title", "Let us know how to contact you"),
            ("data-memory-limit", "100"),
            ("data-nonce", None if mode == "no_nonce" else self.site.nonce),
            ("data-openai_model", "tts-1"),
            ("data-openai_output_format", "mp3"),
            ("data-openai_stream_nav", "1" if self.site.config.stream else "0"),
            ("data-openai_voice", "alloy"),
            ("data-openai_voice_speed", "1.0"),
            ("data-post-id", post_id),
            ("data-sidebar-enabled", ""),
            ("data-speech", ""),
            ("data-text_height", "60"),
            ("data-text_rounded", "8"),
            ("data-type", "widget" if widget else "shortcode"),
            ("data-typewriter-effect", ""),
            ("data-typewriter-speed", "1"),
            ("data-url", f"{self.site.url}/{self.slug}"),
            ("data-user-bg-color", "#ccf5e1"),
            ("data-user-voice-control", ""),
            ("data-voice", ""),
            ("data-voice-error", ""),
            ("data-voice-muted-by-default", ""),
            ("data-voice_device", ""),
            ("data-voice_language", "en-US"),
            ("data-voice_name", "en-US-Studio-M"),
            ("data-voice_pitch", "0"),
            ("data-voice_service", ""),
            ("data-voice_speed", "1"),
            ("data-width", "100%"),
        ]
        printed = []
        for name, value in attrs:
            if value is None:
                continue
            # one old version printed the post id with a stray "<", unescaped
            printed.append(f'{name}="{value if name == "data-post-id" else esc_attr(value)}"')
        prefix = "wpaicg-chatbox" if widget else "wpaicg-chat-shortcode"
        box_class = "wpaicg-chatbox wpaicg-chatbox-widget" if widget else "wpaicg-chat-shortcode"
        inner = (
            f'<div class="{prefix}-content">\n'
            f'<ul class="{prefix}-messages">'
            '<li class="wpaicg-ai-message"><p><strong class="wpaicg-chat-avatar">AI: </strong>'
            f'<span class="wpaicg-chat-message">{GREETING}</span></p></li></ul>\n'
            "</div>\n"
            f'<div class="{prefix}-type">\n'
            f'<textarea type="text" class="{prefix}-typing auto-expand" name="wpaicg_chat_message" '
            'placeholder="Type a message" aria-label="Type a message"></textarea>\n'
            f'<span class="{prefix}-send" role="button" tabindex="0" aria-label="Send">{SEND_ICON}</span>\n'
            "</div>"
        )
        element = f'<div class="{box_class}" {" ".join(printed)}>\n{inner}\n</div>'
        if widget:
            return (
                '<div class="wpaicg_chat_widget wpaicg_widget_open">\n'
                f'<div class="wpaicg_chat_widget_content">\n{element}\n</div>\n</div>'
            )
        return element

    # -- chat ------------------------------------------------------------------------------------

    def ajax(self, ex: Exchange) -> None:
        """``admin-ajax.php``: the two chat actions; anything else is WordPress's ``0``."""
        fields = {**ex.query, **(ex.form or {})}  # PHP's $_REQUEST
        if fields.get("action") not in CHAT_ACTIONS:
            super().ajax(ex)
            return
        site = self.site
        site.count("chat_requests")
        nonce = fields.get("_wpnonce") or ""
        if not nonce or site.nonce_verdict(nonce) is None:
            self.ajax_die(ex, 403, EXPIRED)
            return
        config = site.config
        if config.failure == "http_500":
            self.critical_error(ex)
            return
        message = upstream.sanitize_text_field(fields.get("message"))
        if not message:
            self.ajax_json(ex, {"status": "error", "msg": NOTHING_INPUT})
            return
        site.note("model_inputs", self.model_input(fields.get("wpaicg_chat_history"), message))
        if config.stream:
            self.stream_reply(ex, message)
        else:
            self.json_reply(ex, message)

    def model_input(self, history: Any, message: str) -> list[dict[str, str]]:
        """What the plugin gives its model with "remember conversation" on (its default): the bot's
        prompt, the last ``HISTORY_CUT`` turns of the page's ``wpaicg_chat_history`` ("Human: " and
        "AI: " texts), then the message."""
        turns: list[dict[str, str]] = []
        try:
            items = json.loads(history) if isinstance(history, str) and history else []
        except ValueError:
            items = []
        for item in items if isinstance(items, list) else []:
            text = str(item.get("text", "")) if isinstance(item, dict) else ""
            for prefix, role in (("Human: ", "user"), ("AI: ", "assistant")):
                if text.startswith(prefix):
                    turns.append({"role": role, "content": text[len(prefix) :]})
        return [
            {"role": "system", "content": self.greeting()},
            *turns[-HISTORY_CUT:],
            {"role": "user", "content": message},
        ]

    def greeting(self) -> str:
        """The prompt the plugin builds from the page (echoed back in its JSON answers)."""
        return f'{CONTEXT_PROMPT}"{self.title}\n{PAGE_TEXT}"'

    def stream_reply(self, ex: Exchange, message: str) -> None:
        """The streamed answer, or the stream a failure mode makes."""
        config = self.site.config
        failure = config.failure
        pieces = upstream.reply_pieces(config, message)
        cid, created = upstream.completion_id(), upstream.created()
        role = openai_chunk(cid, created, {"role": "assistant", "content": ""})
        content = [openai_chunk(cid, created, {"content": piece}) for piece in pieces]
        finish = openai_chunk(cid, created, {}, "stop")
        events = [role, *content, finish, sse("[DONE]")]
        if failure == "upstream_error":
            events = upstream_error_events()
        elif failure == "cut_stream":
            events = events[: len(events) // 2]
        elif failure == "no_terminator":
            events = [role, *content]
        elif failure in SPECIAL_EVENTS:
            text, flag = SPECIAL_EVENTS[failure]
            events = [sse(php_json({"msg": text, flag: True}))]
        elif failure == "limited":
            events = [sse("[LIMITED]")]
        elif failure == "error_object":
            events = [role, *content[:2], sse(php_json({"error": {"message": API_KEY_ERROR}}))]
        ex.stream(200, AJAX_STREAM_HEADERS, events, split_utf8=config.utf8_split)

    def json_reply(self, ex: Exchange, message: str) -> None:
        """The non-streamed answer (sent once the whole reply is in), or its failure."""
        config = self.site.config
        failure = config.failure
        pieces = upstream.reply_pieces(config, message)
        if failure == "upstream_error":
            body: dict[str, Any] = {
                "status": "error",
                "msg": upstream.UPSTREAM_ERROR,
                "greeting_message": self.greeting(),
                "log": False,
            }
        elif failure in SPECIAL_EVENTS:
            body = {"status": "error", "msg": SPECIAL_EVENTS[failure][0]}
        elif failure == "limited":
            body = {"status": "error", "msg": LIMITED_MESSAGE}
        elif failure == "error_object":
            body = {"status": "error", "msg": API_KEY_ERROR}
        else:
            body = {
                "status": "success",
                "msg": "Something went wrong",
                "greeting_message": self.greeting(),
                "data": "".join(pieces),
                "log": False,
            }
        ex.pause(config.first_delay + config.chunk_delay * len(pieces))
        encoded = php_json(body).encode("utf-8")
        if failure == "cut_stream":
            encoded = encoded[: len(encoded) // 2]
        ex.respond(200, AJAX_JSON_HEADERS, encoded)
