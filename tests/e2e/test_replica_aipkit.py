"""The AIPKit replica (AI Power 2.3+, "AI Puffer") against the recordings of the real plugin 2.4.71.

First over raw sockets, where header order, the 4 KiB preamble and every in-band error are visible; the
expected bytes are copied from the recordings, with only cache keys, message and response ids, error
stamps, nonces and dates normalised. Then in Chromium (pytest-playwright's ``page``), where the replica's
page script must chat through both bots the way the plugin's own script does.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from scraper.replica import DEFAULT_BOTS, Bot, ReplicaSite, SiteConfig
from scraper.replica.__main__ import build_parser
from tests import _support as support
from tests._support import abandon_stream, echo, raw_request, wait_until

ROOT = Path(__file__).resolve().parents[2]
AJAX = "/wp-admin/admin-ajax.php"
INLINE, POPUP = DEFAULT_BOTS[0].id, DEFAULT_BOTS[1].id
SESSION = "7f1c2a9e-1b2c-4d3e-8f40-5a6b7c8d9e0f"
CONVERSATION = "3b9a1c2d-4e5f-4a6b-9c7d-8e9f0a1b2c3d"
FOREIGN = "http://foreign.example"
MESSAGE = "Hello lab, привет"
REPLY = echo("Hello lab, привет")
BOUNDARY = "----WebKitFormBoundaryWpLabCapture01"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}

# -- what the real plugin sent ----------------------------------------------------------------------

NOCACHE = [("Expires", "Wed, 11 Jan 1984 05:00:00 GMT"), ("Cache-Control", "no-cache, must-revalidate, max-age=0")]
PHP = [("Connection", "close"), ("X-Powered-By", "PHP/8.2.36")]  # after Host and Date
JSON_HEADERS = [
    *PHP,
    ("X-Robots-Tag", "noindex"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("Content-Type", "application/json; charset=UTF-8"),
    *NOCACHE,
]
STREAM_HEADERS = [
    *PHP,
    ("X-Robots-Tag", "noindex"),
    ("X-Content-Type-Options", "nosniff"),
    NOCACHE[0],
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("Cache-Control", "no-cache, no-store, must-revalidate, max-age=0, no-transform"),
    ("Pragma", "no-cache"),
    ("Content-Type", "text/event-stream; charset=utf-8"),
    ("X-Accel-Buffering", "no"),
    ("Connection", "keep-alive"),
]
LEGACY_HEADERS = [
    *PHP,
    ("Content-Type", "text/html; charset=UTF-8"),
    ("X-Robots-Tag", "noindex"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "SAMEORIGIN"),
    *NOCACHE,
]

PREAMBLE = b":" + b" " * 4096 + b"\n\n"
MESSAGE_START = b'event: message_start\ndata: {"message_id":"aipkit-msg-ID"}\n\n'
DONE = b'event: done\ndata: {"finished":true}\n\n'
_DELTAS = ["Echo", ":", " Hello", " lab,", " привет", " |", " При", "вет", ",", " мир", "!", " 🙂"]
STREAM_OK = (
    PREAMBLE
    + MESSAGE_START
    + b'event: status\ndata: {"type":"response.created","status":"in_progress","response_id":"resp_ID"}\n\n'
    + b'event: status\ndata: {"type":"response.in_progress","status":"in_progress","response_id":"resp_ID"}\n\n'
    + "".join(f'data: {{"delta":"{delta}"}}\n\n' for delta in _DELTAS).encode()
    + b'event: openai_response_id\ndata: {"id":"resp_ID"}\n\n'
    + DONE
)
UPSTREAM_ERROR = (
    PREAMBLE
    + MESSAGE_START
    + b'event: error\nid: err-TIME\ndata: {"error":"API Error: Lab forced upstream error (Code: lab_forced_error)"}\n\n'
)
SECURITY = "Security check failed. Please refresh the page and try again."
NOT_IN_CACHE = "Message not found in cache."
EXPIRED_KEY = "Cached message has expired."
NONCE_FAILURE = (
    b'{"success":false,"data":{"message":"Your session has expired or the request is invalid. '
    b'Please refresh the page and try again.","code":"nonce_failure_cache_sse"}}'
)
EMPTY_MESSAGE = (
    b'{"success":false,"data":{"message":"Data to cache (message or image) cannot be empty.",'
    b'"code":"empty_data_to_cache"}}'
)
EMBED_NOT_AVAILABLE = (
    b'{"success":false,"data":{"message":"Embed feature is not available with your current plan.",'
    b'"code":"embed_not_available"}}'
)
CORS_DENIED = (
    b'{"success":false,"data":{"message":"This domain is not permitted to access the chatbot.","code":"cors_denied"}}'
)
CONFIG_KEYS = [
    "botId",
    "ajaxUrl",
    "nonce",
    "postId",
    "theme",
    "popupEnabled",
    "popupPosition",
    "popupDelay",
    "popupIconType",
    "popupIconStyle",
    "popupIconValue",
    "popupIconSize",
    "customThemePresetKey",
    "popupLabelEnabled",
    "popupLabelText",
    "popupLabelMode",
    "popupLabelDelaySeconds",
    "popupLabelAutoHideSeconds",
    "popupLabelDismissible",
    "popupLabelFrequency",
    "popupLabelShowOnMobile",
    "popupLabelShowOnDesktop",
    "popupLabelVersion",
    "popupLabelSize",
    "footerText",
    "headerAvatarType",
    "headerAvatarValue",
    "headerAvatarUrl",
    "headerOnlineText",
    "enableFullscreen",
    "enableDownload",
    "enableCopyButton",
    "enableFeedback",
    "enableSidebar",
    "pdfDownloadActive",
    "headerName",
    "enableStarters",
    "starters",
    "requireConsentCompliance",
    "ttsEnabled",
    "ttsAutoPlay",
    "ttsProvider",
    "ttsVoiceId",
    "ttsGoogleModelId",
    "ttsOpenAIModelId",
    "ttsElevenLabsModelId",
    "enableVoiceInputUI",
    "enableRealtimeVoiceUI",
    "directVoiceMode",
    "realtimeModel",
    "sttProvider",
    "imageTriggers",
    "fileUploadEnabledUI",
    "imageUploadEnabledUI",
    "inputActionButtonEnabled",
    "provider",
    "fileUploadProvider",
    "vectorStoreProvider",
    "enableOpenAIConversationState",
    "enableGoogleConversationState",
    "allowWebSearchTool",
    "webToggleDefaultOn",
    "showSources",
    "allowGoogleSearchGrounding",
    "customThemeSettings",
    "text",
    "customTypingText",
]
STREAM_QUERY = ["action", "cache_key", "bot_id", "session_id", "conversation_uuid", "post_id", "_ts", "_ajax_nonce"]


def stream_error(message: str) -> bytes:
    """The whole body of a stream the plugin refused in-band: preamble, error, done."""
    error = json.dumps({"error": message}, ensure_ascii=False, separators=(",", ":")).encode()
    return PREAMBLE + b"event: error\nid: err-TIME\ndata: " + error + b"\n\n" + DONE


def normalise(body: bytes) -> bytes:
    """Cache keys, message and response ids and error stamps vary between runs; nothing else may."""
    body = re.sub(rb"aipkit_sse_[A-Za-z0-9]{32}", b"aipkit_sse_KEY", body)
    body = re.sub(rb"aipkit-msg-[0-9a-f]{14}\.\d{8}", b"aipkit-msg-ID", body)
    body = re.sub(rb"resp_lab[0-9a-f]{24}", b"resp_ID", body)
    return re.sub(rb"\nid: err-(\d+)\n", b"\nid: err-TIME\n", body)


# -- talking to a site over a raw socket ---------------------------------------------------------------


class Reply(support.Reply):
    @property
    def own_headers(self) -> list[tuple[str, str]]:
        """The headers after Host and Date (those two vary)."""
        assert [k for k, _ in self.headers[:2]] == ["Host", "Date"]
        return self.headers[2:]

    def events(self) -> list[dict[str, str]]:
        """The SSE events after the preamble: each with its ``event``, ``id`` and ``data`` lines."""
        assert self.body.startswith(PREAMBLE)
        found = []
        for block in self.body[len(PREAMBLE) :].decode("utf-8").split("\n\n"):
            if block:
                found.append(dict(line.split(": ", 1) for line in block.split("\n")))
        return found


def send(site: ReplicaSite, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Reply:
    return Reply(**vars(support.send(site, method, path, body, headers)))


def multipart(fields: dict[str, str]) -> bytes:
    """A body as Chromium's FormData makes it (the recordings' boundary)."""
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields.items()]
    return ("".join(parts) + f"--{BOUNDARY}--\r\n").encode()


def post(
    site: ReplicaSite, fields: dict[str, str | None], *, urlencoded: bool = False, origin: str | None = None
) -> Reply:
    """An admin-ajax POST of ``fields`` (None values left out), multipart unless ``urlencoded``."""
    present = {k: v for k, v in fields.items() if v is not None}
    if urlencoded:
        body, kind = urlencode(present).encode(), "application/x-www-form-urlencoded"
    else:
        body, kind = multipart(present), f"multipart/form-data; boundary={BOUNDARY}"
    headers = {"Content-Type": kind, "Accept": "*/*"}
    if origin:
        headers["Origin"] = origin
    return send(site, "POST", AJAX, body, headers)


def cache(
    site: ReplicaSite,
    message: str = MESSAGE,
    *,
    nonce: str | None = "current",
    bot_id: int | None = INLINE,
    urlencoded: bool = False,
    origin: str | None = None,
) -> Reply:
    """Step 1, with the fields the page script sends."""
    fields = {
        "action": "aipkit_cache_sse_message",
        "message": message,
        "_ajax_nonce": site.nonce if nonce == "current" else nonce,
        "bot_id": None if bot_id is None else str(bot_id),
        "user_client_message_id": "aipkit-client-msg-4-1796000000000-lab01",
    }
    return post(site, fields, urlencoded=urlencoded, origin=origin)


def cache_key(site: ReplicaSite, message: str = MESSAGE, bot_id: int = INLINE) -> str:
    """A fresh key from step 1."""
    reply = cache(site, message, bot_id=bot_id)
    assert reply.status == 200, reply.body
    return reply.json()["data"]["cache_key"]


def stream(
    site: ReplicaSite,
    key: str | None,
    *,
    bot_id: int | None = INLINE,
    session: str | None = SESSION,
    conversation: str | None = CONVERSATION,
    nonce: str | None = "current",
    origin: str | None = None,
) -> Reply:
    """Step 2, the query in the page script's order (None values left out)."""
    query = {
        "action": "aipkit_frontend_chat_stream",
        "cache_key": key,
        "bot_id": None if bot_id is None else str(bot_id),
        "session_id": session,
        "conversation_uuid": conversation,
        "post_id": "261",
        "_ts": str(int(time.time() * 1000)),
        "_ajax_nonce": site.nonce if nonce == "current" else nonce,
    }
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    if origin:
        headers["Origin"] = origin
    return send(site, "GET", f"{AJAX}?{urlencode({k: v for k, v in query.items() if v is not None})}", b"", headers)


def refresh(site: ReplicaSite, bot_id: int | None = INLINE, origin: str | None = None) -> Reply:
    """The nonce refresh the page script posts after a 403."""
    fields = {"action": "aipkit_get_frontend_chat_nonce", "bot_id": None if bot_id is None else str(bot_id)}
    return post(site, fields, origin=origin)


def cache_fields(site: ReplicaSite) -> dict[str, str]:
    """Step 1's fields for urlencoded requests built by hand."""
    return {"action": "aipkit_cache_sse_message", "message": MESSAGE, "_ajax_nonce": site.nonce, "bot_id": str(INLINE)}


def stream_at(site: ReplicaSite, path: str, key: str) -> Reply:
    """Step 2 at another admin-ajax path (WordPress in a subfolder)."""
    query = {
        "action": "aipkit_frontend_chat_stream",
        "cache_key": key,
        "bot_id": str(INLINE),
        "session_id": SESSION,
        "conversation_uuid": CONVERSATION,
        "_ajax_nonce": site.nonce,
    }
    return send(site, "GET", f"{path}?{urlencode(query)}")


class _Elements(HTMLParser):
    """Every start tag with its attributes, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(html)
    return parser.tags


def by_id(html: str, element_id: str) -> dict[str, str | None]:
    [found] = [attrs for _, attrs in elements(html) if attrs.get("id") == element_id]
    return found


def configs(html: str) -> list[tuple[str, dict[str, Any]]]:
    """(element id, parsed data-config) of every element that carries one."""
    return [(str(a["id"]), json.loads(str(a["data-config"]))) for _, a in elements(html) if "data-config" in a]


def page_html(site: ReplicaSite, path: str = "/") -> str:
    reply = send(site, "GET", path)
    assert reply.status == 200 and reply.header("Content-Type") == "text/html; charset=UTF-8"
    return reply.body.decode("utf-8")


@pytest.fixture
def site() -> Iterator[ReplicaSite]:
    """An AIPKit replica with its default bots and no pause between events."""
    with ReplicaSite("aipkit", SiteConfig(chunk_delay=0)) as replica:
        yield replica


# -- the page ----------------------------------------------------------------------------------------


def test_page_has_an_inline_and_a_popup_bot(site: ReplicaSite) -> None:
    html = page_html(site, "/chat/")
    assert page_html(site, "/") == html  # the front page is the chat page too
    found = configs(html)
    ids = [f"aipkit_chat_container_{INLINE}", f"aipkit_popup_wrapper_{POPUP}"]
    assert [element_id for element_id, _ in found] == ids
    for (_, config), bot in zip(found, DEFAULT_BOTS, strict=True):
        assert list(config) == CONFIG_KEYS
        assert config["botId"] == bot.id and config["headerName"] == bot.name and config["popupEnabled"] is bot.popup
        assert config["ajaxUrl"] == f"{site.url}{AJAX}" and config["postId"] == 261
        assert config["nonce"] == site.nonce  # one nonce for every bot
        assert config["provider"] == "OpenAI" and config["text"]["errorPrefix"] == "Error:"
    inline = by_id(html, f"aipkit_chat_container_{INLINE}")
    assert inline["data-bot-id"] == str(INLINE) and "aipkit_chat_container" in str(inline["class"]).split()
    wrapper = by_id(html, f"aipkit_popup_wrapper_{POPUP}")
    assert wrapper["data-bot-id"] == str(POPUP) and wrapper["data-icon-size"] == "medium"
    content = by_id(html, f"aipkit_chat_container_{POPUP}")  # the popup's chat box carries neither
    assert {"aipkit_chat_container", "aipkit_popup_content"} <= set(str(content["class"]).split())
    assert "data-config" not in content and "data-bot-id" not in content and content["aria-hidden"] == "true"
    trigger = by_id(html, f"aipkit_popup_trigger_{POPUP}")
    assert trigger["aria-controls"] == f"aipkit_chat_container_{POPUP}"
    assert by_id(html, f"aipkit_popup_hint_{POPUP}")["data-bot-id"] == str(POPUP)
    for bot in DEFAULT_BOTS:
        assert by_id(html, f"aipkit_chat_input_field_{bot.id}")["class"] == "aipkit_chat_input_field"
    # the attribute as PHP prints it: single-quoted, &quot;, slashes escaped
    assert f"data-config='{{&quot;botId&quot;:{INLINE},&quot;ajaxUrl&quot;:&quot;http:\\/\\/127.0.0.1:" in html
    assert 'var aipkit_chat_config_global = {"text":{"fullscreenError":' in html
    assert 'window.aipkit_getChatNonceAction = "aipkit_get_frontend_chat_nonce";' in html
    bundle = "/wp-content/plugins/gpt3-ai-content-generator/dist/js/public-main.bundle.js"
    assert f"<script src='{site.url}{bundle}?ver=2.4.71' id='aipkit-public-main-js'></script>" in html
    script = send(site, "GET", bundle)
    assert script.status == 200 and b"aipkit_frontend_chat_stream" in script.body
    assert site.stats.page_loads == 2


def test_data_config_is_encoded_like_php_with_the_hex_flags() -> None:
    bots = [Bot(7, '<Tom & "Jerry\'s"> — 1/2')]
    with ReplicaSite("aipkit", SiteConfig(bots=bots)) as replica:
        html = page_html(replica)
    raw = re.search(r"data-config='([^']*)'", html).group(1)
    assert "&quot;headerName&quot;:&quot;\\u003CTom \\u0026 \\u0022Jerry\\u0027s\\u0022\\u003E — 1\\/2&quot;" in raw
    [(_, config)] = configs(html)
    assert config["headerName"] == bots[0].name and config["popupEnabled"] is False
    assert "&lt;Tom &amp; &quot;Jerry&#039;s&quot;&gt; — 1/2</span>" in html  # the header shows the name


@pytest.mark.parametrize("mode", ["no_chatbox", "no_nonce", "no_post_id", "malformed", "script_built", "subfolder"])
def test_page_modes(mode: str) -> None:
    with ReplicaSite("aipkit", SiteConfig(chunk_delay=0, page=mode)) as replica:
        html = page_html(replica)
        if mode == "no_chatbox":
            assert "aipkit" not in html and "data-config" not in html and "</html>" in html
        elif mode == "no_nonce":
            assert all("nonce" not in config for _, config in configs(html))
        elif mode == "no_post_id":
            assert [config["postId"] for _, config in configs(html)] == [0, 0]
        elif mode == "malformed":
            attrs = [a["data-config"] for _, a in elements(html) if "data-config" in a]
            assert len(attrs) == 2
            for value in attrs:
                with pytest.raises(ValueError):
                    json.loads(str(value))
        elif mode == "script_built":
            # no box, no config, no nonce and no plugin script in the served HTML: a script builds them later
            for absent in ("aipkit_chat_container", "aipkit_popup_wrapper", "data-config", replica.nonce):
                assert absent not in html
            assert "public-main.bundle.js" not in html and 'id="site-chat-builder"' in html
            assert "setTimeout(build, 300)" in html and 'var later = ""' in html  # a timer, not a request
        else:
            [(_, first), (_, second)] = configs(html)
            ajax_url = f"{replica.url}/blog{AJAX}"
            assert first["ajaxUrl"] == second["ajaxUrl"] == ajax_url
            assert f"src='{replica.url}/blog/wp-content/plugins/gpt3-ai-content-generator/dist/js/" in html
            reply = send(replica, "POST", "/blog" + AJAX, urlencode(cache_fields(replica)).encode(), FORM)
            assert reply.status == 200 and reply.json()["success"] is True
            assert send(replica, "POST", AJAX, urlencode(cache_fields(replica)).encode(), FORM).status == 404
            assert stream_at(replica, "/blog" + AJAX, reply.json()["data"]["cache_key"]).events()[-1]["event"] == "done"
            bundle = "/blog/wp-content/plugins/gpt3-ai-content-generator/dist/js/public-main.bundle.js"
            assert send(replica, "GET", bundle).status == 200


# -- step 1: the cache POST ------------------------------------------------------------------------


def test_cache_step_is_the_recording(site: ReplicaSite) -> None:
    for urlencoded in (False, True):
        reply = cache(site, urlencoded=urlencoded)
        assert reply.status == 200 and reply.own_headers == JSON_HEADERS
        assert normalise(reply.body) == b'{"success":true,"data":{"cache_key":"aipkit_sse_KEY"}}'
        assert reply.header("Content-Length") is None  # the body ends with the connection, as PHP's server does
    assert site.stats.chat_requests == 2 and site.stats.cache_keys_issued == 2
    [first, second] = [r for r in site.log if r.path == AJAX]
    assert first.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert first.form == second.form and first.form["message"] == MESSAGE


@pytest.mark.parametrize("nonce", [None, "0123456789", "garbage!!-not-a-nonce", "expired"])
def test_cache_step_refuses_a_bad_nonce_with_403(site: ReplicaSite, nonce: str | None) -> None:
    if nonce == "expired":  # two ticks old
        nonce = site.nonce
        site.rotate_nonce()
        site.rotate_nonce()
    reply = cache(site, nonce=nonce)
    assert (reply.status, reply.body) == (403, NONCE_FAILURE)
    assert reply.own_headers == JSON_HEADERS
    assert site.stats.cache_keys_issued == 0


def test_cache_step_accepts_the_previous_tick(site: ReplicaSite) -> None:
    old = site.nonce
    site.rotate_nonce()
    key = cache(site, nonce=old).json()["data"]["cache_key"]
    assert normalise(stream(site, key, nonce=old).body) == STREAM_OK


@pytest.mark.parametrize("message", ["", "0"])  # PHP's empty() counts "0" as empty too
def test_cache_step_refuses_an_empty_message(site: ReplicaSite, message: str) -> None:
    reply = cache(site, message)
    assert (reply.status, reply.body, reply.own_headers) == (400, EMPTY_MESSAGE, JSON_HEADERS)


def test_cache_step_refuses_a_foreign_page_only_for_a_bot(site: ReplicaSite) -> None:
    reply = cache(site, origin=FOREIGN)
    assert (reply.status, reply.body) == (403, EMBED_NOT_AVAILABLE)
    assert cache(site, origin=FOREIGN, bot_id=None).status == 200  # no bot_id: no origin check
    assert cache(site, origin="http://127.0.0.1:1").status == 200  # same host, other port: not foreign


def test_critical_error_on_the_cache_step() -> None:
    with ReplicaSite("aipkit", SiteConfig(chunk_delay=0, failure="http_500")) as replica:
        reply = cache(replica)
        assert reply.status == 500 and reply.header("Content-Type") == "text/html; charset=utf-8"
        assert b"There has been a critical error on this website." in reply.body


# -- step 2: the stream ------------------------------------------------------------------------------


def test_stream_is_the_recording(site: ReplicaSite) -> None:
    key = cache_key(site)
    reply = stream(site, key)
    assert reply.status == 200 and reply.own_headers == STREAM_HEADERS
    assert normalise(reply.body) == STREAM_OK
    events = reply.events()
    assert re.fullmatch(r'\{"message_id":"aipkit-msg-[0-9a-f]{14}\.\d{8}"\}', events[0]["data"])
    response_ids = {json.loads(e["data"]).get("response_id") or json.loads(e["data"]).get("id") for e in events[1:3]}
    assert response_ids == {json.loads(events[-2]["data"])["id"]}  # one response id throughout
    assert site.stats.cache_keys_consumed == 1 and site.stats.stream_bot_ids == [INLINE]
    assert wait_until(lambda: site.stats.streams_completed == 1)
    assert site.chat_history[(INLINE, SESSION, CONVERSATION)] == [
        {"role": "user", "content": MESSAGE},
        {"role": "assistant", "content": REPLY},
    ]
    # the key was read once: a second stream finds nothing
    assert normalise(stream(site, key).body) == stream_error(NOT_IN_CACHE)


def test_stream_of_the_popup_bot_and_the_history_per_bot_session_and_conversation(site: ReplicaSite) -> None:
    assert normalise(stream(site, cache_key(site, bot_id=POPUP), bot_id=POPUP).body) == STREAM_OK
    assert normalise(stream(site, cache_key(site, "second")).body).endswith(DONE)
    stream(site, cache_key(site, "third"), session="someone-else")
    assert site.stats.stream_bot_ids == [POPUP, INLINE, INLINE]
    assert [m["content"] for m in site.chat_history[(POPUP, SESSION, CONVERSATION)]] == [MESSAGE, REPLY]
    assert site.chat_history[(INLINE, SESSION, CONVERSATION)][0]["content"] == "second"
    assert len(site.chat_history[(INLINE, "someone-else", CONVERSATION)]) == 2
    stream(site, cache_key(site, "fourth"))
    assert len(site.chat_history[(INLINE, SESSION, CONVERSATION)]) == 4  # the same conversation goes on


@pytest.mark.parametrize("nonce", [None, "0123456789", "garbage!!-not-a-nonce", "expired"])
def test_stream_refuses_a_bad_nonce_in_band_and_keeps_the_key(site: ReplicaSite, nonce: str | None) -> None:
    key = cache_key(site)
    if nonce == "expired":
        nonce = site.nonce
        site.rotate_nonce()
        site.rotate_nonce()
    refused = stream(site, key, nonce=nonce)
    assert refused.status == 200 and refused.own_headers == STREAM_HEADERS
    assert normalise(refused.body) == stream_error(SECURITY)
    assert [e["event"] for e in refused.events()] == ["error", "done"]
    assert site.stats.cache_keys_consumed == 0 and site.stats.stream_bot_ids == []
    assert normalise(stream(site, key).body) == STREAM_OK  # the same key still works with a good nonce


def test_stream_refuses_a_foreign_page_and_keeps_the_key(site: ReplicaSite) -> None:
    key = cache_key(site)
    refused = stream(site, key, origin=FOREIGN)
    assert normalise(refused.body) == stream_error("This domain is not permitted to access the chatbot.")
    assert normalise(stream(site, key, origin=site.url).body) == STREAM_OK


def test_unknown_reused_and_expired_keys(site: ReplicaSite) -> None:
    assert normalise(stream(site, "aipkit_sse_doesnotexist0000000000000000").body) == stream_error(NOT_IN_CACHE)
    key = cache_key(site)
    stream(site, key)
    assert normalise(stream(site, key).body) == stream_error(NOT_IN_CACHE)
    site.config.cache_lifetime = 0  # keys issued now are already past their life when read
    stale = cache_key(site)
    assert normalise(stream(site, stale).body) == stream_error(EXPIRED_KEY)
    assert normalise(stream(site, stale).body) == stream_error(EXPIRED_KEY)  # still there, still expired
    assert normalise(stream(site, None).body) == stream_error("Message cache key is missing.")
    # the key is looked up without case, as MySQL compares it
    site.config.cache_lifetime = 60
    assert normalise(stream(site, cache_key(site).upper().replace("AIPKIT_SSE_", "aipkit_sse_")).body) == STREAM_OK


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"conversation": None}, "Conversation ID is missing."),
        ({"session": None}, "Session ID is missing for guest."),
        ({"session": "0"}, "Session ID is missing for guest."),
        ({"bot_id": 999999}, "Invalid chatbot specified."),
        ({"bot_id": None}, "Invalid chatbot specified."),
    ],
)
def test_validation_errors_burn_the_key(site: ReplicaSite, change: dict[str, Any], message: str) -> None:
    key = cache_key(site)
    assert normalise(stream(site, key, **change).body) == stream_error(message)
    assert site.stats.cache_keys_consumed == 1
    assert normalise(stream(site, key).body) == stream_error(NOT_IN_CACHE)  # a retry finds the key gone


def test_upstream_error_is_final_without_done(site: ReplicaSite) -> None:
    site.config.failure = "upstream_error"
    key = cache_key(site, "please fail __lab_error__")  # step 1 does not call the model: it succeeds
    reply = stream(site, key)
    assert reply.status == 200 and normalise(reply.body) == UPSTREAM_ERROR
    assert [e["event"] for e in reply.events()] == ["message_start", "error"]
    assert re.fullmatch(r"err-\d{10}", reply.events()[-1]["id"])
    assert abs(int(reply.events()[-1]["id"][4:]) - time.time()) < 60
    assert site.chat_history[(INLINE, SESSION, CONVERSATION)] == [
        {"role": "user", "content": "please fail __lab_error__"}
    ]


def test_warning_cut_stream_and_no_terminator(site: ReplicaSite) -> None:
    site.config.failure = "warning"
    events = stream(site, cache_key(site)).events()
    warnings = [e for e in events if e.get("event") == "warning"]
    assert len(warnings) == 1 and re.fullmatch(r"err-\d+", warnings[0]["id"])
    assert json.loads(warnings[0]["data"])["error"]
    deltas = [json.loads(e["data"])["delta"] for e in events if "event" not in e]
    assert "".join(deltas) == REPLY and events.index(warnings[0]) > 3 and events[-1]["event"] == "done"

    site.config.failure = "cut_stream"
    events = stream(site, cache_key(site)).events()
    assert {e.get("event") for e in events} <= {"message_start", "status", None}
    assert 0 < len([e for e in events if "event" not in e]) < len(_DELTAS)

    site.config.failure = "no_terminator"
    events = stream(site, cache_key(site)).events()
    assert [e.get("event") for e in events[-2:]] == [None, "openai_response_id"]
    assert "".join(json.loads(e["data"])["delta"] for e in events if "event" not in e) == REPLY


def test_replies_follow_the_config(site: ReplicaSite) -> None:
    site.config.reply = "Hi {message}, a/b"
    events = stream(site, cache_key(site)).events()
    assert "".join(json.loads(e["data"])["delta"] for e in events if "event" not in e) == "Hi Hello lab, привет, a/b"
    assert '{"delta":" a\\/b"}' in [e["data"] for e in events]  # slashes escaped, as PHP writes them


def test_aborted_stream_is_counted() -> None:
    with ReplicaSite("aipkit", SiteConfig(chunk_delay=0.02, reply_events=500)) as replica:
        key = cache_key(replica)
        query = urlencode(
            {
                "action": "aipkit_frontend_chat_stream",
                "cache_key": key,
                "bot_id": INLINE,
                "session_id": "s",
                "conversation_uuid": "c",
                "_ajax_nonce": replica.nonce,
            }
        )
        abandon_stream(replica, raw_request("GET", f"{AJAX}?{query}"))


# -- nonces ------------------------------------------------------------------------------------------


def test_nonce_refresh(site: ReplicaSite) -> None:
    for bot_id in (INLINE, None):
        reply = refresh(site, bot_id)
        assert (reply.status, reply.own_headers) == (200, JSON_HEADERS)
        assert reply.body == b'{"success":true,"data":{"nonce":"%s"}}' % site.nonce.encode()
    denied = refresh(site, INLINE, origin=FOREIGN)
    assert (denied.status, denied.body) == (403, CORS_DENIED)
    assert refresh(site, None, origin=FOREIGN).status == 200  # without a bot there is nothing to protect
    assert site.stats.nonce_refreshes == 3


def test_reject_once_refuses_step_one_and_the_refresh_hands_out_the_new_nonce(site: ReplicaSite) -> None:
    page_nonce = site.nonce
    site.config.nonce_mode = "reject_once"
    assert (cache(site).status, site.config.nonce_mode) == (403, "ok")
    fresh = refresh(site).json()["data"]["nonce"]
    assert fresh == site.nonce != page_nonce
    assert cache(site, nonce=page_nonce).status == 403  # the page's nonce died with the rejection
    key = cache(site, nonce=fresh).json()["data"]["cache_key"]
    assert normalise(stream(site, key, nonce=fresh).body) == STREAM_OK


def test_stream_reject_once_refuses_only_step_two_once(site: ReplicaSite) -> None:
    site.config.nonce_mode = "stream_reject_once"
    key = cache_key(site)  # step 1 is not affected
    assert site.config.nonce_mode == "stream_reject_once"
    page_nonce = site.nonce
    assert normalise(stream(site, key).body) == stream_error(SECURITY)
    assert site.config.nonce_mode == "ok" and site.nonce != page_nonce
    assert normalise(stream(site, key, nonce=page_nonce).body) == stream_error(SECURITY)
    fresh = refresh(site).json()["data"]["nonce"]
    assert normalise(stream(site, key, nonce=fresh).body) == STREAM_OK  # the key survived both refusals


def test_always_reject(site: ReplicaSite) -> None:
    key = cache_key(site)
    site.config.nonce_mode = "always_reject"
    assert cache(site).status == 403
    assert normalise(stream(site, key).body) == stream_error(SECURITY)


def test_legacy_action_is_gone(site: ReplicaSite) -> None:
    form = {
        "_wpnonce": site.nonce,
        "post_id": "6",
        "url": f"{site.url}/",
        "action": "wpaicg_chat_shortcode_message",
        "message": MESSAGE,
        "bot_id": "0",
    }
    reply = post(site, form, urlencoded=True)
    assert (reply.status, reply.body, reply.own_headers) == (400, b"0", LEGACY_HEADERS)
    assert site.stats.chat_requests == 0


# -- several plugins, fronts, control, command line ---------------------------------------------------


def test_several_plugins_on_one_page() -> None:
    with ReplicaSite("aipkit+aiengine", SiteConfig(chunk_delay=0)) as replica:
        assert replica.plugins == ("aipkit", "aiengine") and replica.plugin == "aipkit+aiengine"
        html = page_html(replica, "/chat/")
        assert len(configs(html)) == 2 and "<div class='mwai-chatbot-container' data-params='" in html
        assert "public-main.bundle.js" in html and "ai-engine/app/chatbot.js" in html
        assert normalise(stream(replica, cache_key(replica)).body) == STREAM_OK
        session = send(replica, "POST", "/wp-json/mwai/v1/start_session", b"", {"Content-Type": "application/json"})
        assert session.status == 200 and session.json()["restNonce"] == replica.nonce
        index = send(replica, "GET", "/wp-json/").json()
        assert {"mwai/v1", "mwai-ui/v1"} <= set(index["namespaces"])
        assert post(replica, {"action": "wpaicg_chat_shortcode_message"}, urlencoded=True).body == b"0"
    with ReplicaSite(("aipower", "aipkit"), SiteConfig(chunk_delay=0, page="script_built")) as replica:
        assert replica.plugin == "aipower+aipkit"
        html = page_html(replica)
        assert "wpaicg-chat-shortcode" not in html and "aipkit_chat_container" not in html
        assert html.count('<div class="site-chat" id="site-chat-') == 2
        legacy = {"action": "wpaicg_chat_shortcode_message", "message": "hi", "_wpnonce": replica.nonce}
        answered = post(replica, legacy, urlencoded=True)
        assert answered.status == 200 and answered.body.endswith(b"data: [DONE]\n\n")  # AI Power answers its action
    for bad in ("aipkit+aipkit", "aipkit+other", "", ()):
        with pytest.raises(ValueError):
            ReplicaSite(bad)


def test_chat_challenge_sees_both_aipkit_steps() -> None:
    with ReplicaSite("aipkit", SiteConfig(chunk_delay=0, antibot="chat_challenge")) as replica:
        assert send(replica, "GET", "/").status == 200  # pages pass until a chat comes uncleared
        key_reply = cache(replica)
        assert key_reply.status == 403 and key_reply.header("cf-mitigated") == "challenge"
        assert replica.flagged
        replica.reset()
        assert not replica.flagged
        assert stream(replica, "aipkit_sse_doesnotexist0000000000000000").status == 403  # the stream GET too
        assert replica.flagged
        ua = "Mozilla/5.0 lab"
        cleared = {"User-Agent": ua, "Cookie": f"cf_clearance={replica.clearance_for(ua)}"}
        body = urlencode(cache_fields(replica)).encode()
        reply = send(replica, "POST", AJAX, body, {**FORM, **cleared})
        assert reply.status == 200 and reply.header("Server") == "cloudflare"
        key = reply.json()["data"]["cache_key"]
        query = urlencode(
            {
                "action": "aipkit_frontend_chat_stream",
                "cache_key": key,
                "bot_id": INLINE,
                "session_id": "s",
                "conversation_uuid": "c",
                "_ajax_nonce": replica.nonce,
            }
        )
        assert normalise(send(replica, "GET", f"{AJAX}?{query}", b"", cleared).body) == STREAM_OK


def test_control_endpoint_sets_bots_and_reports_the_counters(site: ReplicaSite) -> None:
    bots = [{"id": 11, "name": "Solo", "popup": True, "provider": "Google"}]
    body = json.dumps({"bots": bots, "nonce_mode": "stream_reject_once", "cache_lifetime": 5}).encode()
    reply = send(site, "POST", "/__replica__/config", body, {"Content-Type": "application/json"})
    assert reply.status == 200 and reply.json()["config"]["bots"] == bots
    assert site.config.bots == [Bot(11, "Solo", popup=True, provider="Google")]
    assert site.config.cache_lifetime == 5.0
    bad = json.dumps({"bots": [{"id": "11", "name": "Solo"}]}).encode()
    assert send(site, "POST", "/__replica__/config", bad, {"Content-Type": "application/json"}).status == 400
    [(element_id, config)] = configs(page_html(site))
    assert element_id == "aipkit_popup_wrapper_11" and config["provider"] == "Google"
    site.config.nonce_mode = "ok"
    stream(site, cache_key(site, bot_id=11), bot_id=11)
    stats = send(site, "GET", "/__replica__/state").json()["stats"]
    assert stats["stream_bot_ids"] == [11] and stats["cache_keys_issued"] == stats["cache_keys_consumed"] == 1
    [conversation] = send(site, "GET", "/__replica__/history").json()
    assert conversation == {
        "key": [11, SESSION, CONVERSATION],
        "messages": [{"role": "user", "content": MESSAGE}, {"role": "assistant", "content": REPLY}],
    }
    site.reset()
    assert site.stats.stream_bot_ids == [] and site.chat_history == {}


def test_command_line_serves_aipkit() -> None:
    assert build_parser().parse_args(["--plugin", "aipkit+aiengine"]).plugin == ("aipkit+aiengine",)
    assert build_parser().parse_args([]).plugin == ("aipower", "aiengine")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--plugin", "aipkit+nothing"])
    process = subprocess.Popen(
        [sys.executable, "-m", "scraper.replica", "--plugin", "all", "--page", "subfolder"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [process.stdout.readline().split() for _ in range(3)]
        assert [plugin for plugin, _ in lines] == ["aipower", "aiengine", "aipkit"]
        port = int(lines[2][1].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(raw_request("GET", "/chat/"))
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
        assert raw.startswith(b"HTTP/1.1 200 OK") and b"\\/blog\\/wp-admin\\/admin-ajax.php" in raw
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# -- in a browser ------------------------------------------------------------------------------------

BROWSER_REPLY = echo("Привет")
UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


@pytest.fixture
def live() -> Iterator[ReplicaSite]:
    """An AIPKit replica paced like a model, for the browser."""
    with ReplicaSite("aipkit", SiteConfig(chunk_delay=0.005)) as replica:
        yield replica


def bot_reply(page: Page, bot_id: int) -> Any:
    return page.locator(f"#aipkit_chat_container_{bot_id} .aipkit_chat_message-bot .aipkit_chat_bubble").last


def steps(site: ReplicaSite) -> list[tuple[str, int]]:
    """(action, status) of every admin-ajax call so far."""
    return [((r.form or r.query).get("action", ""), r.status) for r in site.log if r.path.endswith(AJAX)]


def test_browser_chats_with_the_inline_bot(page: Page, live: ReplicaSite) -> None:
    page.goto(live.url + "/chat/")
    field = page.locator(f"#aipkit_chat_input_field_{INLINE}")
    field.fill("Привет")
    field.press("Enter")
    expect(bot_reply(page, INLINE)).to_have_text(BROWSER_REPLY)
    expect(page.locator(f"#aipkit_chat_container_{INLINE} .aipkit_chat_message-bot")).to_have_id(
        re.compile(r"^aipkit-msg-[0-9a-f]{14}\.\d{8}$")
    )
    assert steps(live) == [("aipkit_cache_sse_message", 200), ("aipkit_frontend_chat_stream", 200)]
    first, second = [r for r in live.log if r.path == AJAX]
    assert first.headers["content-type"].startswith("multipart/form-data; boundary=----WebKitFormBoundary")
    assert list(first.form) == ["action", "message", "_ajax_nonce", "bot_id", "user_client_message_id"]
    assert first.form["_ajax_nonce"] == live.nonce and first.form["bot_id"] == str(INLINE)
    assert re.fullmatch(rf"aipkit-client-msg-{INLINE}-\d{{13}}-[0-9a-z]{{1,5}}", first.form["user_client_message_id"])
    assert list(second.query) == STREAM_QUERY and second.headers["accept"] == "text/event-stream"
    guest = page.evaluate("localStorage.getItem('aipkit_guest_uuid')")
    conversation = page.evaluate("sessionStorage.getItem('aipkit_current_conversation_uuid')")
    assert re.fullmatch(UUID4, guest) and re.fullmatch(UUID4, conversation) and guest != conversation
    assert (second.query["session_id"], second.query["conversation_uuid"]) == (guest, conversation)
    assert second.query["post_id"] == "261" and re.fullmatch(r"aipkit_sse_[A-Za-z0-9]{32}", second.query["cache_key"])
    assert live.stats.stream_bot_ids == [INLINE] and live.stats.cache_keys_consumed == 1
    # the attributes stay in the live DOM, as the plugin leaves them
    expect(page.locator(f"#aipkit_chat_container_{INLINE}")).to_have_attribute("data-bot-id", str(INLINE))


def test_browser_opens_the_popup_bot_and_chats(page: Page, live: ReplicaSite) -> None:
    page.goto(live.url + "/")
    popup = page.locator(f"#aipkit_chat_container_{POPUP}")
    expect(popup).to_be_hidden()
    page.locator(f"#aipkit_popup_trigger_{POPUP}").click()
    expect(popup).to_be_visible()
    page.locator(f"#aipkit_chat_input_field_{POPUP}").fill("Привет")
    page.locator(f"#aipkit_send_btn_{POPUP}").click()
    expect(bot_reply(page, POPUP)).to_have_text(BROWSER_REPLY)
    assert live.stats.stream_bot_ids == [POPUP]
    expect(bot_reply(page, INLINE)).to_have_count(0)  # the inline bot was not asked


def test_browser_refreshes_the_nonce_once_after_a_403(page: Page, live: ReplicaSite) -> None:
    page.goto(live.url + "/chat/")
    page_nonce = live.nonce
    live.config.nonce_mode = "reject_once"
    field = page.locator(f"#aipkit_chat_input_field_{INLINE}")
    field.fill("Привет")
    field.press("Enter")
    expect(bot_reply(page, INLINE)).to_have_text(BROWSER_REPLY)
    assert steps(live) == [
        ("aipkit_cache_sse_message", 403),
        ("aipkit_get_frontend_chat_nonce", 200),
        ("aipkit_cache_sse_message", 200),
        ("aipkit_frontend_chat_stream", 200),
    ]
    calls = [r for r in live.log if r.path == AJAX]
    assert calls[0].form["_ajax_nonce"] == page_nonce != live.nonce
    assert calls[1].form == {"action": "aipkit_get_frontend_chat_nonce", "bot_id": str(INLINE)}
    assert calls[2].form["_ajax_nonce"] == calls[3].query["_ajax_nonce"] == live.nonce  # the stream uses it too
    assert live.stats.nonce_refreshes == 1


def test_browser_shows_in_band_errors(page: Page, live: ReplicaSite) -> None:
    page.goto(live.url + "/chat/")
    field = page.locator(f"#aipkit_chat_input_field_{INLINE}")
    live.config.failure = "upstream_error"
    field.fill("please fail __lab_error__")
    field.press("Enter")
    error = page.locator(f"#aipkit_chat_container_{INLINE} .aipkit_chat_message-error .aipkit_chat_bubble")
    expect(error).to_have_text("Error: API Error: Lab forced upstream error (Code: lab_forced_error)")
    live.config.failure = None
    live.config.nonce_mode = "stream_reject_once"  # the plugin's script has no retry for the stream step
    field.fill("again")
    field.press("Enter")
    expect(error.last).to_have_text(f"Error: {SECURITY}")
    expect(bot_reply(page, INLINE)).to_have_count(0)


def test_browser_waits_for_the_script_built_boxes(page: Page) -> None:
    with ReplicaSite("aipkit", SiteConfig(chunk_delay=0.005, page="script_built")) as replica:
        response = page.goto(replica.url + "/chat/")
        assert "aipkit_chat_container" not in response.text()
        field = page.locator(f"#aipkit_chat_input_field_{INLINE}")
        expect(field).to_be_attached()  # built by script after load
        expect(page.locator(f"#aipkit_popup_wrapper_{POPUP}")).to_have_attribute("data-bot-id", str(POPUP))
        field.fill("Привет")
        field.press("Enter")
        expect(bot_reply(page, INLINE)).to_have_text(BROWSER_REPLY)


def test_browser_chats_in_a_subfolder_site_with_two_plugins(page: Page) -> None:
    with ReplicaSite("aipkit+aiengine", SiteConfig(chunk_delay=0.005, page="subfolder")) as replica:
        page.goto(replica.url + "/chat/")
        field = page.locator(f"#aipkit_chat_input_field_{INLINE}")
        field.fill("Привет")
        field.press("Enter")
        expect(bot_reply(page, INLINE)).to_have_text(BROWSER_REPLY)
        assert [r.path for r in replica.log if r.path.endswith(AJAX)] == ["/blog" + AJAX] * 2
        page.locator(".mwai-input textarea").fill("Привет")
        page.locator(".mwai-input-submit").click()
        expect(page.locator(".mwai-reply.mwai-ai .mwai-text").last).to_have_text(BROWSER_REPLY)


@pytest.mark.parametrize(
    ("plugin", "box", "field", "send_button", "reply"),
    [
        (
            "aipower",
            "wpaicg-chat-shortcode",
            ".wpaicg-chat-shortcode-typing",
            ".wpaicg-chat-shortcode-send",
            ".wpaicg-ai-message .wpaicg-chat-message",
        ),
        (
            "aiengine",
            "mwai-chatbot-container",
            ".mwai-input textarea",
            ".mwai-input-submit",
            ".mwai-reply.mwai-ai .mwai-text",
        ),
    ],
)
def test_browser_script_built_page_of_the_other_plugins(
    page: Page, plugin: str, box: str, field: str, send_button: str, reply: str
) -> None:
    with ReplicaSite(plugin, SiteConfig(chunk_delay=0.005, page="script_built")) as replica:
        response = page.goto(replica.url + "/")
        assert box not in response.text()
        page.locator(field).fill("Привет")
        page.locator(send_button).click()
        expect(page.locator(reply).last).to_have_text(BROWSER_REPLY)
