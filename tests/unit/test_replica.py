"""The replica sites against the recordings of the real plugins: routes, bytes, nonces, failures, streams.

Plain HTTP over raw sockets (no browser), so header order, byte layout and network reads are visible.
The expected bytes below are copied from the recordings of AI Power 2.2 and AI Engine 3.6.2; only
ids, timestamps, nonces and session ids are normalised before comparing.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode

import pytest

from scraper.replica import PLUGINS, Replica, ReplicaSite, SiteConfig
from tests import _support as support
from tests._support import abandon_stream, echo, raw_request, wait_until

ROOT = Path(__file__).resolve().parents[2]

# -- what the real plugins sent ----------------------------------------------------------------------

PHP_HEAD = ["Host", "Date", "Connection", "X-Powered-By"]
REST_BASE = [
    "X-Robots-Tag",
    "Link",
    "X-Content-Type-Options",
    "Access-Control-Expose-Headers",
    "Access-Control-Allow-Headers",
]
HEADER_ORDER = {
    "aipower_stream": [
        *PHP_HEAD,
        "X-Robots-Tag",
        "X-Content-Type-Options",
        "Expires",
        "Referrer-Policy",
        "X-Frame-Options",
        "Content-type",
        "Cache-Control",
        "X-Accel-Buffering",
    ],
    "aipower_json": [
        *PHP_HEAD,
        "X-Robots-Tag",
        "X-Content-Type-Options",
        "Expires",
        "Cache-Control",
        "Referrer-Policy",
        "X-Frame-Options",
        "Content-Type",
    ],
    "aipower_403": [
        *PHP_HEAD,
        "Content-Type",
        "X-Robots-Tag",
        "X-Content-Type-Options",
        "Referrer-Policy",
        "X-Frame-Options",
        "Expires",
        "Cache-Control",
    ],
    "aiengine_stream": [*PHP_HEAD, *REST_BASE, "X-WP-Nonce", "Cache-Control", "Content-type", "X-Accel-Buffering"],
    "aiengine_stream_nocookie": [
        *PHP_HEAD,
        *REST_BASE,
        "X-WP-Nonce",
        "Set-Cookie",
        "Cache-Control",
        "Content-type",
        "X-Accel-Buffering",
    ],
    "aiengine_json": [*PHP_HEAD, "Content-Type", *REST_BASE, "X-WP-Nonce"],
    "aiengine_bad_nonce": [*PHP_HEAD, "Content-Type", *REST_BASE, "Expires", "Cache-Control"],
    "aiengine_no_nonce": [*PHP_HEAD, "Content-Type", *REST_BASE],
    "aiengine_start_session": [
        *PHP_HEAD,
        "Set-Cookie",
        "Expires",
        "Cache-Control",
        "Pragma",
        "Content-Type",
        *REST_BASE,
        "Set-Cookie",
        "Allow",
    ],
}

AIPOWER_EXPIRED = b"The link you followed has expired."
AIPOWER_EMPTY = b'{"status":"error","msg":"It appears that nothing was inputted."}'
_CHUNK = (
    'data: {"id": "chatcmpl-laba28e4dca2038", "object": "chat.completion.chunk", "created": 1795234870, '
    '"model": "gpt-4o-mini", "system_fingerprint": "fp_wplab", "choices": [{"index": 0, "delta": %s, '
    '"logprobs": null, "finish_reason": %s}]}\n\n'
)
_DELTAS = ["Echo", ":", " Hello", " lab,", " привет", " |", " При", "вет", ",", " мир", "!", " 🙂"]
AIPOWER_STREAM_OK = (
    _CHUNK % ('{"role": "assistant", "content": ""}', "null")
    + "".join(_CHUNK % (json.dumps({"content": d}, ensure_ascii=False), "null") for d in _DELTAS)
    + _CHUNK % ("{}", '"stop"')
    + "data: [DONE]\n\n"
).encode()
AIPOWER_UPSTREAM_STREAM = (
    b'event: message\ndata: {"choices":[{"delta":{"content":"Lab"}}]}\n\n'
    b'event: message\ndata: {"choices":[{"delta":{"content":" forced"}}]}\n\n'
    b'event: message\ndata: {"choices":[{"delta":{"content":" upstream"}}]}\n\n'
    b'event: message\ndata: {"choices":[{"delta":{"content":" error"}}]}\n\n'
    b'data: {"choices":[{"finish_reason":"stop"}]}\n\n'
) * 2
AIENGINE_STREAM_OK = (
    b'data: {"type":"live","data":"Echo"}\n\ndata: {"type":"live","data":":"}\n\n'
    b'data: {"type":"live","data":" Hello"}\n\ndata: {"type":"live","data":" lab,"}\n\n'
    b'data: {"type":"live","data":" \\u043f\\u0440\\u0438\\u0432\\u0435\\u0442"}\n\n'
    b'data: {"type":"live","data":" |"}\n\ndata: {"type":"live","data":" \\u041f\\u0440\\u0438"}\n\n'
    b'data: {"type":"live","data":"\\u0432\\u0435\\u0442"}\n\ndata: {"type":"live","data":","}\n\n'
    b'data: {"type":"live","data":" \\u043c\\u0438\\u0440"}\n\ndata: {"type":"live","data":"!"}\n\n'
    b'data: {"type":"live","data":" \\ud83d\\ude42"}\n\n'
    b'data: {"type":"end","data":"{\\"success\\":true,\\"reply\\":\\"Echo: Hello lab, '
    b"\\\\u043f\\\\u0440\\\\u0438\\\\u0432\\\\u0435\\\\u0442 | \\\\u041f\\\\u0440\\\\u0438\\\\u0432\\\\u0435\\\\u0442, "
    b'\\\\u043c\\\\u0438\\\\u0440! \\\\ud83d\\\\ude42\\",\\"images\\":null,\\"actions\\":[],\\"shortcuts\\":[],'
    b'\\"blocks\\":[],\\"usage\\":{\\"prompt_tokens\\":10,\\"completion_tokens\\":10,\\"total_tokens\\":20,'
    b'\\"price\\":null,\\"queries\\":1,\\"accuracy\\":\\"estimated\\"},\\"responseId\\":'
    b'\\"chatcmpl-lab1d768271819b\\"}"}\n\n'
)
AIENGINE_NONSTREAM_REPLY = (
    '"reply":"Echo: Hello lab, \\u043f\\u0440\\u0438\\u0432\\u0435\\u0442 | '
    '\\u041f\\u0440\\u0438\\u0432\\u0435\\u0442, \\u043c\\u0438\\u0440! \\ud83d\\ude42"'
)
AIENGINE_UPSTREAM_STREAM = (
    b'data: {"type":"error","data":"Lab Fake OpenAI: Error: Lab forced upstream error '
    b'(lab_forced_error) (server_error)"}\n\n'
)
AIENGINE_UPSTREAM_JSON = (
    b'{"success":false,"message":"Lab Fake OpenAI: {\\"error\\": {\\"message\\": \\"Lab forced upstream error\\", '
    b'\\"type\\": \\"server_error\\", \\"param\\": null, \\"code\\": \\"lab_forced_error\\"}}"}'
)
AIENGINE_INVALID_NONCE = b'{"code":"rest_cookie_invalid_nonce","message":"Cookie check failed","data":{"status":403}}'
AIENGINE_NO_NONCE = (
    b'{"code":"rest_forbidden","message":"Sorry, you are not allowed to do that.","data":{"status":401}}'
)
AIENGINE_REJECTED = b'{"success":false,"message":"Sorry, your query has been rejected."}'
AIPOWER_ATTRS = [
    "data-ai-bg-color",
    "data-assistant-enabled",
    "data-autoload_chat_conversations",
    "data-bg_text_field",
    "data-bg_text_field_border_color",
    "data-bg_text_field_font_color",
    "data-bot-id",
    "data-chat_rounded",
    "data-color",
    "data-copy_btn",
    "data-elevenlabs-model",
    "data-enable-lead-email",
    "data-enable-lead-name",
    "data-enable-lead-phone",
    "data-feedback_btn",
    "data-feedback_message",
    "data-feedback_success",
    "data-feedback_title",
    "data-fontsize",
    "data-footer",
    "data-has-bar",
    "data-height",
    "data-lead-collection",
    "data-lead-email",
    "data-lead-name",
    "data-lead-phone",
    "data-lead-title",
    "data-memory-limit",
    "data-nonce",
    "data-openai_model",
    "data-openai_output_format",
    "data-openai_stream_nav",
    "data-openai_voice",
    "data-openai_voice_speed",
    "data-post-id",
    "data-sidebar-enabled",
    "data-speech",
    "data-text_height",
    "data-text_rounded",
    "data-type",
    "data-typewriter-effect",
    "data-typewriter-speed",
    "data-url",
    "data-user-bg-color",
    "data-user-voice-control",
    "data-voice",
    "data-voice-error",
    "data-voice-muted-by-default",
    "data-voice_device",
    "data-voice_language",
    "data-voice_name",
    "data-voice_pitch",
    "data-voice_service",
    "data-voice_speed",
    "data-width",
]
AIENGINE_SYSTEM_KEYS = [
    "botId",
    "customId",
    "userData",
    "sessionId",
    "restNonce",
    "contextId",
    "pluginUrl",
    "restUrl",
    "stream",
    "debugMode",
    "eventLogs",
    "speech_recognition",
    "speech_synthesis",
    "typewriter",
    "crossSite",
    "actions",
    "blocks",
    "shortcuts",
]


def normalise(body: bytes) -> bytes:
    """Completion ids and timestamps vary between runs; everything else must not."""
    body = re.sub(rb"chatcmpl-lab[0-9a-f]{12}", b"chatcmpl-ID", body)
    return re.sub(rb'"created": \d+', b'"created": 0', body)


# -- talking to a site over a raw socket --------------------------------------------------------------


class Reply(support.Reply):
    def events(self) -> list[str]:
        """The ``data:`` payloads of an SSE body."""
        return [
            line[len("data: ") :]
            for block in self.text.split("\n\n")
            for line in block.split("\n")
            if line.startswith("data: ")
        ]


def send(site: ReplicaSite, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> Reply:
    """One request on a raw socket, every read kept (``Content-Length`` always sent, as a browser's POST)."""
    return Reply(**vars(support.send(site, method, path, body, {"Content-Length": str(len(body)), **(headers or {})})))


def aipower_form(site: ReplicaSite, message: str = "Hello lab, привет", **fields: str | None) -> bytes:
    values = {
        "_wpnonce": site.nonce,
        "post_id": "4",
        "url": f"{site.url}/aipower-chat",
        "action": "wpaicg_chat_shortcode_message",
        "message": message,
        "bot_id": "0",
        "chatbot_identity": "shortcode",
        "wpaicg_chat_history": '[{"id": "", "text": "Human: earlier question"}]',
        "wpaicg_chat_client_id": "LabClient1",
        "chat_id": "4242",
    }
    values.update(fields)
    return urlencode({k: v for k, v in values.items() if v is not None}).encode()


def aipower_chat(site: ReplicaSite, message: str = "Hello lab, привет", **fields: str | None) -> Reply:
    form = aipower_form(site, message, **fields)
    return send(site, "POST", "/wp-admin/admin-ajax.php", form, {"Content-Type": "application/x-www-form-urlencoded"})


def aipower_request(site: ReplicaSite) -> bytes:
    """An AI Power chat POST as the bytes on the wire."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    return raw_request("POST", "/wp-admin/admin-ajax.php", aipower_form(site), form)


def start_session(site: ReplicaSite, cookie: str | None = None) -> Reply:
    headers = {"Content-Type": "application/json", "Accept": "*/*"}
    if cookie:
        headers["Cookie"] = cookie
    return send(site, "POST", "/wp-json/mwai/v1/start_session", b"", headers)


def aiengine_chat(
    site: ReplicaSite,
    message: str = "Hello lab, привет",
    *,
    stream: bool = True,
    nonce: str | None = "current",
    session: str = "6b011c33e4455",
    cookie: str | None = "same",
) -> Reply:
    body = {
        "botId": "default",
        "customId": None,
        "session": session,
        "chatId": "labchat01",
        "contextId": 4,
        "messages": [
            {"id": "m0", "role": "assistant", "content": "Hi! How can I help you?", "who": "AI: ", "timestamp": 1}
        ],
        "newMessage": message,
        "newFileId": None,
        "newFileIds": None,
        "stream": stream,
    }
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if stream else "*/*"}
    if nonce is not None:
        headers["X-WP-Nonce"] = site.nonce if nonce == "current" else nonce
    if cookie is not None:
        headers["Cookie"] = f"mwai_session_id={session}; PHPSESSID=abc" if cookie == "same" else cookie
    return send(site, "POST", "/wp-json/mwai-ui/v1/chats/submit", json.dumps(body).encode(), headers)


def chat(site: ReplicaSite, nonce: str | None = None) -> Reply:
    """A default chat request to either plugin (with the current nonce unless one is given)."""
    if site.plugin == "aipower":
        return aipower_chat(site, _wpnonce=nonce or site.nonce)
    return aiengine_chat(site, nonce=nonce or "current")


class _Elements(HTMLParser):
    """Every start tag with its attributes, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def element(html: str, class_name: str) -> list[tuple[str, str | None]] | None:
    parser = _Elements()
    parser.feed(html)
    for _, attrs in parser.tags:
        if class_name in (dict(attrs).get("class") or "").split():
            return attrs
    return None


@pytest.fixture
def aipower() -> Iterator[ReplicaSite]:
    """An AI Power replica with no pause between events."""
    with ReplicaSite("aipower", SiteConfig(chunk_delay=0)) as site:
        yield site


@pytest.fixture
def aiengine() -> Iterator[ReplicaSite]:
    """An AI Engine replica with no pause between events."""
    with ReplicaSite("aiengine", SiteConfig(chunk_delay=0)) as site:
        yield site


# -- pages -------------------------------------------------------------------------------------------


def test_aipower_page_matches_recorded_chat_box(aipower: ReplicaSite) -> None:
    page = send(aipower, "GET", "/")
    assert page.status == 200
    assert page.header("Content-Type") == "text/html; charset=UTF-8"
    assert page.header("Connection") == "close" and page.header("Content-Length") is None
    html = page.body.decode()
    assert html.startswith("<!doctype html>") and "<title>" in html
    assert f'<link rel="https://api.w.org/" href="{aipower.url}/wp-json/" />' in html
    attrs = element(html, "wpaicg-chat-shortcode")
    assert attrs is not None
    assert [name for name, _ in attrs[1:]] == AIPOWER_ATTRS  # same attributes, same order as recorded
    values = dict(attrs)
    assert values["data-nonce"] == aipower.nonce
    assert values["data-post-id"] == "4"
    assert values["data-url"] == f"{aipower.url}/aipower-chat"
    assert (values["data-bot-id"], values["data-type"], values["data-openai_stream_nav"]) == ("0", "shortcode", "1")
    params = json.loads(re.search(r"var wpaicgParams = (\{.*?\});\n</script>", html).group(1))
    assert params["ajax_url"] == f"{aipower.url}/wp-admin/admin-ajax.php"
    assert params["search_nonce"] == aipower.nonce
    assert '"ajax_url":"http:\\/\\/127.0.0.1' in html  # PHP's escaped slashes
    script = re.search(r"<script src='([^']+wpaicg-chat\.js[^']*)'", html).group(1)
    js = send(aipower, "GET", script[len(aipower.url) :])
    assert js.status == 200 and b"admin-ajax.php" in js.body and b"TextDecoder" in js.body
    assert send(aipower, "GET", "/aipower-chat/").status == 200
    assert send(aipower, "GET", "/aipower-chat").header("Location") == f"{aipower.url}/aipower-chat/"
    assert aipower.stats.page_loads == 2
    assert [r.path for r in aipower.log] == ["/", "/aipower-chat/", "/aipower-chat"]  # no static files


def test_aipower_stream_setting_shows_in_page(aipower: ReplicaSite) -> None:
    aipower.config.stream = False
    assert (
        dict(element(send(aipower, "GET", "/").body.decode(), "wpaicg-chat-shortcode"))["data-openai_stream_nav"] == "0"
    )


def test_aiengine_page_matches_recorded_container(aiengine: ReplicaSite) -> None:
    page = send(aiengine, "GET", "/")
    assert page.status == 200
    html = page.body.decode()
    assert "<div class='mwai-chatbot-container' data-params='{&quot;aiName&quot;" in html  # as WordPress prints it
    values = dict(element(html, "mwai-chatbot-container"))
    system = json.loads(values["data-system"])
    assert list(system) == AIENGINE_SYSTEM_KEYS
    assert (system["sessionId"], system["restNonce"], system["contextId"]) == (None, None, 4)
    assert system["restUrl"] == f"{aiengine.url}/wp-json" and system["stream"] is True
    assert "restUrl&quot;:&quot;http:\\/\\/127.0.0.1" in html
    params = json.loads(values["data-params"])
    assert params["startSentence"] == "Hi! How can I help you?" and params["aiName"] == "AI: "
    assert json.loads(values["data-theme"])["themeId"] == "chatgpt"
    script = re.search(r"<script src='([^']+chatbot\.js[^']*)'", html).group(1)
    js = send(aiengine, "GET", script[len(aiengine.url) :])
    assert js.status == 200 and b"removeAttribute" in js.body and b"data-mwai-initialized" in js.body
    assert send(aiengine, "GET", "/aiengine-chat/").status == 200


@pytest.mark.parametrize(
    ("plugin", "mode"),
    [
        ("aipower", "no_nonce"),
        ("aipower", "no_post_id"),
        ("aipower", "lt_post_id"),
        ("aipower", "widget"),
        ("aipower", "no_chatbox"),
        ("aiengine", "no_chatbox"),
        ("aiengine", "nonce_in_page"),
        ("aiengine", "v1_endpoint"),
        ("aiengine", "malformed"),
        ("aiengine", "no_nonce"),
    ],
)
def test_page_modes(plugin: str, mode: str) -> None:
    with ReplicaSite(plugin, SiteConfig(chunk_delay=0, page=mode)) as site:
        page = send(site, "GET", "/")
        html = page.body.decode()
        assert page.status == 200 and "</html>" in html
        if plugin == "aipower" and mode != "no_chatbox":
            box = dict(element(html, "wpaicg-chatbox" if mode == "widget" else "wpaicg-chat-shortcode"))
        if mode == "no_chatbox":
            assert "wpaicg" not in html and "mwai" not in html
        elif plugin == "aipower" and mode == "no_nonce":
            assert "data-nonce" not in box and "search_nonce" not in html
        elif mode == "no_post_id":
            assert "data-post-id" not in box and box["data-nonce"] == site.nonce
        elif mode == "lt_post_id":
            assert 'data-post-id="<4"' in html
        elif mode == "widget":
            assert box["data-type"] == "widget" and "wpaicg-chat-shortcode" not in html
            reply = aipower_chat(site, action="wpaicg_chatbox_message", chatbot_identity="widget")
            assert reply.status == 200 and reply.events()[-1] == "[DONE]"
        elif mode == "nonce_in_page":
            system = json.loads(dict(element(html, "mwai-chatbot-container"))["data-system"])
            assert system["restNonce"] == site.nonce and system["sessionId"]
            assert page.header("Set-Cookie") == f"mwai_session_id={system['sessionId']}; path=/; HttpOnly"
            assert aiengine_chat(site, session=system["sessionId"]).status == 200
        elif mode == "v1_endpoint":
            system = json.loads(dict(element(html, "mwai-chatbot-container"))["data-system"])
            assert "botId" not in system and system["chatId"] == "default" and system["restNonce"] == site.nonce
            assert aiengine_chat(site, session=system["sessionId"]).status == 404, "no chats/submit in 1.x"
        elif mode == "malformed":
            with pytest.raises(ValueError):
                json.loads(dict(element(html, "mwai-chatbot-container"))["data-system"])
        elif plugin == "aiengine" and mode == "no_nonce":
            session = start_session(site).json()
            assert session["success"] is True and session["sessionId"] and "restNonce" not in session


@pytest.mark.parametrize("plugin", PLUGINS)
def test_heavy_page_carries_images_a_font_and_media_the_site_serves(plugin: str) -> None:
    with ReplicaSite(plugin, SiteConfig(chunk_delay=0, page="heavy")) as site:
        html = send(site, "GET", "/").body.decode()
        assets = re.findall(rf"{re.escape(site.url)}(/wp-content/uploads/heavy/[\w.-]+)", html)
        kinds: dict[str, bytes] = {}
        for path in assets:
            answer = send(site, "GET", path)
            assert answer.status == 200 and len(answer.body) > 200_000, path
            kinds[(answer.header("Content-Type") or "").split("/")[0]] = answer.body
        assert set(kinds) == {"image", "font", "video", "audio"}
        assert kinds["image"].startswith(b"\x89PNG\r\n\x1a\n") and "<img" in html and "@font-face" in html
        assert send(site, "GET", "/wp-content/uploads/heavy/other.png").status == 404


def test_not_found_pages(aipower: ReplicaSite, aiengine: ReplicaSite) -> None:
    missing = send(aipower, "GET", "/no/such/page/")
    assert missing.status == 404 and b"error404" in missing.body
    route = send(aiengine, "GET", "/wp-json/mwai-ui/v1/chats/submit")
    assert route.status == 404 and route.json()["code"] == "rest_no_route"
    assert send(aiengine, "GET", "/wp-json/mwai/v1/start_session").json()["code"] == "rest_no_route"
    assert "mwai-ui/v1" in send(aiengine, "GET", "/wp-json/").json()["namespaces"]


# -- AI Power chat -----------------------------------------------------------------------------------


def test_aipower_stream_is_byte_for_byte_the_recording(aipower: ReplicaSite) -> None:
    aipower.config.utf8_split = False
    reply = aipower_chat(aipower)
    assert reply.status == 200
    assert reply.names == HEADER_ORDER["aipower_stream"]
    assert reply.header("Content-type") == "text/event-stream;charset=UTF-8"
    assert reply.header("X-Accel-Buffering") == "no" and reply.header("Cache-Control") == "no-cache"
    assert normalise(reply.body) == normalise(AIPOWER_STREAM_OK)
    assert " привет".encode() in reply.body  # raw UTF-8, not \u escapes
    assert reply.body.endswith(b"data: [DONE]\n\n")
    record = aipower.log[-1]
    assert record.form["message"] == "Hello lab, привет" and record.status == 200
    assert aipower.stats.chat_requests == 1 and aipower.stats.streams_completed == 1


def test_aipower_json_reply(aipower: ReplicaSite) -> None:
    aipower.config.stream = False
    reply = aipower_chat(aipower)
    assert reply.names == HEADER_ORDER["aipower_json"]
    assert reply.header("Content-Type") == "application/json; charset=UTF-8"
    body = reply.json()
    assert list(body) == ["status", "msg", "greeting_message", "data", "log"]
    assert body["status"] == "success" and body["msg"] == "Something went wrong" and body["log"] is False
    assert body["data"] == echo("Hello lab, привет")
    assert b"\\u043f\\u0440\\u0438\\u0432\\u0435\\u0442 | \\u041f" in reply.body and b"\\ud83d\\ude42" in reply.body


@pytest.mark.parametrize("nonce", [None, "garbage!!-not-a-nonce", "0123456789"])
def test_aipower_bad_nonce_is_the_wordpress_403(aipower: ReplicaSite, nonce: str | None) -> None:
    reply = aipower_chat(aipower, _wpnonce=nonce)
    assert reply.status == 403
    assert reply.names == HEADER_ORDER["aipower_403"]
    assert reply.header("Content-Type") == "text/html; charset=UTF-8"
    assert reply.body == AIPOWER_EXPIRED


def test_aipower_nonce_rotation_and_expiry(aipower: ReplicaSite) -> None:
    old = aipower.nonce
    new = aipower.rotate_nonce()
    assert new != old and re.fullmatch(r"[0-9a-f]{10}", new)
    assert aipower_chat(aipower, _wpnonce=old).status == 200  # the previous tick still works
    assert aipower_chat(aipower, _wpnonce=new).status == 200
    aipower.expire_nonces()
    assert aipower_chat(aipower, _wpnonce=old).body == AIPOWER_EXPIRED
    assert aipower_chat(aipower, _wpnonce=new).body == AIPOWER_EXPIRED
    page = send(aipower, "GET", "/").body.decode()
    assert dict(element(page, "wpaicg-chat-shortcode"))["data-nonce"] == aipower.nonce not in (old, new)
    assert aipower_chat(aipower).status == 200


def test_aipower_action_and_message_checks(aipower: ReplicaSite) -> None:
    for action in ("", "something_else"):
        reply = aipower_chat(aipower, action=action)
        assert (reply.status, reply.body) == (400, b"0")
    empty = aipower_chat(aipower, message="  ")
    assert (empty.status, empty.body) == (200, AIPOWER_EMPTY)
    assert empty.names == HEADER_ORDER["aipower_json"]


def test_message_cleaning_follows_each_plugin(aipower: ReplicaSite, aiengine: ReplicaSite) -> None:
    message = "  System: Be brief.\nUser: <b>Hi</b>\n"
    aipower.config.stream = False
    # AI Power runs the message through sanitize_text_field: tags out, whitespace runs made one space
    assert aipower_chat(aipower, message).json()["data"] == echo("System: Be brief. User: Hi")
    # AI Engine only trims it
    reply = aiengine_chat(aiengine, message, stream=False).json()["reply"]
    assert reply == echo("System: Be brief.\nUser: <b>Hi</b>")


def test_aipower_utf8_split_cuts_a_character_between_reads(aipower: ReplicaSite) -> None:
    aipower.config.chunk_delay = 0.005
    reply = aipower_chat(aipower)
    body_reads = reply.reads[1:] if reply.reads[0].endswith(b"\r\n\r\n") else reply.reads
    cut = [r for r in body_reads if _ends_mid_character(r)]
    assert cut, "no read ended inside a multi-byte character"
    assert normalise(reply.body) == normalise(AIPOWER_STREAM_OK)  # the bytes themselves are unchanged


def _ends_mid_character(data: bytes) -> bool:
    """Whether ``data`` stops inside a UTF-8 sequence (a lead byte without all its continuation bytes)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:
            continue
        if byte >= 0xC0:
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return back < need
        return False
    return False


# -- AI Engine chat ----------------------------------------------------------------------------------


def test_aiengine_start_session(aiengine: ReplicaSite) -> None:
    reply = start_session(aiengine)
    assert reply.status == 200
    assert reply.names == HEADER_ORDER["aiengine_start_session"]
    body = reply.json()
    assert list(body) == ["success", "sessionId", "restNonce"]
    assert body["restNonce"] == aiengine.nonce and re.fullmatch(r"[0-9a-f]{13}", body["sessionId"])
    cookies = reply.all("Set-Cookie")
    assert re.fullmatch(r"PHPSESSID=[0-9a-v]{26}; path=/", cookies[0])
    assert cookies[1] == f"mwai_session_id={body['sessionId']}; path=/; HttpOnly"
    again = start_session(aiengine, cookie=f"mwai_session_id={body['sessionId']}; PHPSESSID=x")
    assert again.json()["sessionId"] == body["sessionId"] and again.header("Set-Cookie") is None
    assert aiengine.stats.session_starts == 2


def test_aiengine_stream_is_byte_for_byte_the_recording(aiengine: ReplicaSite) -> None:
    reply = aiengine_chat(aiengine)
    assert reply.status == 200
    assert reply.names == HEADER_ORDER["aiengine_stream"]
    assert reply.header("X-WP-Nonce") == aiengine.nonce
    assert normalise(reply.body) == normalise(AIENGINE_STREAM_OK)
    assert reply.body.isascii()  # every non-ASCII character as \uXXXX
    end = json.loads(reply.events()[-1])
    assert end["type"] == "end"
    assert json.loads(end["data"])["reply"] == echo("Hello lab, привет")
    assert aiengine.log[-1].json["newMessage"] == "Hello lab, привет"


def test_aiengine_json_reply(aiengine: ReplicaSite) -> None:
    reply = aiengine_chat(aiengine, stream=False)
    assert reply.status == 200 and reply.names == HEADER_ORDER["aiengine_json"]
    assert AIENGINE_NONSTREAM_REPLY.encode() in reply.body
    body = reply.json()
    assert list(body) == ["success", "reply", "images", "actions", "shortcuts", "blocks", "usage", "responseId"]
    assert aiengine.stats.streams_started == 0


def test_aiengine_nonces(aiengine: ReplicaSite) -> None:
    missing = aiengine_chat(aiengine, nonce=None)
    assert (missing.status, missing.body) == (401, AIENGINE_NO_NONCE)
    assert missing.names == HEADER_ORDER["aiengine_no_nonce"]
    for bad in ("0123456789", "garbage!!-not-a-nonce"):
        wrong = aiengine_chat(aiengine, nonce=bad)
        assert (wrong.status, wrong.body) == (403, AIENGINE_INVALID_NONCE)
        assert wrong.names == HEADER_ORDER["aiengine_bad_nonce"]
    old = aiengine.nonce
    new = aiengine.rotate_nonce()
    rotated = aiengine_chat(aiengine, nonce=old)
    assert rotated.status == 200 and rotated.header("X-WP-Nonce") == new
    assert json.loads(json.loads(rotated.events()[-1])["data"])["new_token"] == new
    assert "new_token" not in json.loads(json.loads(aiengine_chat(aiengine).events()[-1])["data"])
    assert aiengine_chat(aiengine, nonce=old, stream=False).json()["new_token"] == new
    aiengine.expire_nonces()
    assert aiengine_chat(aiengine, nonce=new).body == AIENGINE_INVALID_NONCE
    assert start_session(aiengine).json()["restNonce"] == aiengine.nonce
    assert aiengine_chat(aiengine).status == 200


def test_aiengine_session_cookie_required(aiengine: ReplicaSite) -> None:
    assert aiengine_chat(aiengine, cookie=None).body == AIENGINE_INVALID_NONCE
    assert aiengine_chat(aiengine, cookie="mwai_session_id=someoneelse").body == AIENGINE_INVALID_NONCE
    aiengine.config.require_session_cookie = False
    reply = aiengine_chat(aiengine, cookie=None)
    assert reply.status == 200 and reply.names == HEADER_ORDER["aiengine_stream_nocookie"]
    assert re.fullmatch(r"mwai_session_id=[0-9a-f]{13}; path=/; HttpOnly", reply.header("Set-Cookie"))


def test_aiengine_empty_message_is_rejected(aiengine: ReplicaSite) -> None:
    reply = aiengine_chat(aiengine, message="")
    assert (reply.status, reply.body) == (403, AIENGINE_REJECTED)
    assert reply.names == HEADER_ORDER["aiengine_json"]


@pytest.mark.parametrize("plugin", ["aipower", "aiengine"])
def test_reject_once_fires_once_and_expires_nonces(plugin: str) -> None:
    with ReplicaSite(plugin, SiteConfig(chunk_delay=0, nonce_mode="reject_once")) as site:
        old = site.nonce
        first = chat(site)
        assert first.status == 403
        assert first.body == (AIPOWER_EXPIRED if plugin == "aipower" else AIENGINE_INVALID_NONCE)
        assert site.config.nonce_mode == "ok" and site.nonce != old
        assert chat(site, nonce=old).status == 403  # everything issued before has expired
        assert chat(site).status == 200  # a fresh nonce works again
        site.config.nonce_mode = "always_reject"
        assert chat(site).status == 403 and chat(site).status == 403


# -- failure modes -----------------------------------------------------------------------------------


def test_aipower_upstream_error(aipower: ReplicaSite) -> None:
    aipower.config.failure = "upstream_error"
    reply = aipower_chat(aipower, message="__lab_error__")
    assert reply.status == 200 and reply.names == HEADER_ORDER["aipower_stream"]
    assert reply.body == AIPOWER_UPSTREAM_STREAM
    aipower.config.stream = False
    body = aipower_chat(aipower).json()
    assert body["status"] == "error" and body["msg"] == "Lab forced upstream error"
    assert list(body) == ["status", "msg", "greeting_message", "log"]


@pytest.mark.parametrize(
    ("failure", "last"),
    [
        ("token_limit", {"msg": "You have reached your token limit.", "tokenLimitReached": True}),
        ("flagged", "messageFlagged"),
        ("ip_banned", "ipBanned"),
        ("pinecone_error", "pineconeError"),
        ("limited", "[LIMITED]"),
        ("error_object", {"error": {"message": "Incorrect API key provided."}}),
    ],
)
def test_aipower_plugin_errors(aipower: ReplicaSite, failure: str, last: str | dict) -> None:
    aipower.config.failure = failure
    reply = aipower_chat(aipower)
    assert reply.status == 200
    events = reply.events()
    assert "[DONE]" not in events
    if last == "[LIMITED]":
        assert events[-1] == "[LIMITED]"
    elif isinstance(last, dict):
        assert json.loads(events[-1]) == last
    else:
        payload = json.loads(events[-1])
        assert payload[last] is True and payload["msg"]
    assert aipower.stats.streams_completed == 1


@pytest.mark.parametrize("plugin", ["aipower", "aiengine"])
def test_cut_stream_and_no_terminator(plugin: str) -> None:
    with ReplicaSite(plugin, SiteConfig(chunk_delay=0, utf8_split=False)) as site:
        full = chat(site).events()
        site.config.failure = "cut_stream"
        cut = chat(site).events()
        assert len(cut) == len(full) // 2
        assert normalise("".join(cut).encode()) == normalise("".join(full[: len(cut)]).encode())
        site.config.failure = "no_terminator"
        open_ended = chat(site).events()
        if plugin == "aipower":
            assert "[DONE]" not in open_ended and all('"finish_reason": null' in e for e in open_ended)
            assert len(open_ended) == len(full) - 2
        else:
            assert [json.loads(e)["type"] for e in open_ended] == ["live"] * (len(full) - 1)


@pytest.mark.parametrize("plugin", ["aipower", "aiengine"])
def test_critical_error(plugin: str) -> None:
    with ReplicaSite(plugin, SiteConfig(chunk_delay=0, failure="http_500")) as site:
        reply = chat(site)
        assert reply.status == 500 and reply.header("Content-Type").startswith("text/html")
        assert b"There has been a critical error on this website." in reply.body


def test_aiengine_failures(aiengine: ReplicaSite) -> None:
    aiengine.config.failure = "upstream_error"
    stream = aiengine_chat(aiengine)
    assert (stream.status, stream.body) == (200, AIENGINE_UPSTREAM_STREAM)
    assert stream.names == HEADER_ORDER["aiengine_stream"]
    plain = aiengine_chat(aiengine, stream=False)
    assert (plain.status, plain.body) == (500, AIENGINE_UPSTREAM_JSON)
    assert plain.names == HEADER_ORDER["aiengine_json"]
    aiengine.config.failure = "rejected"
    rejected = aiengine_chat(aiengine)
    assert (rejected.status, rejected.body) == (403, AIENGINE_REJECTED)


def test_aiengine_live_subtypes_and_lossy_tail(aiengine: ReplicaSite) -> None:
    aiengine.config.live_subtypes = True
    events = [json.loads(e) for e in aiengine_chat(aiengine).events()]
    live = [e for e in events if e["type"] == "live"]
    assert {"thinking", "status", "heartbeat", "content"} <= {e["subtype"] for e in live}
    assert all(isinstance(e["timestamp"], int) for e in live)
    text = "".join(e["data"] for e in live if e["subtype"] == "content")
    assert text == json.loads(events[-1]["data"])["reply"] == echo("Hello lab, привет")
    aiengine.config.live_subtypes = False
    aiengine.config.drop_live_tail = 2
    events = [json.loads(e) for e in aiengine_chat(aiengine).events()]
    text = "".join(e["data"] for e in events if e["type"] == "live")
    assert text == "Echo: Hello lab, привет | Привет, мир"
    assert json.loads(events[-1]["data"])["reply"] == text + "! 🙂"


def test_custom_reply_and_many_events(aipower: ReplicaSite, aiengine: ReplicaSite) -> None:
    aipower.config.reply = "Hi {message}, bye"
    content = [json.loads(e)["choices"][0]["delta"].get("content", "") for e in aipower_chat(aipower).events()[:-1]]
    assert "".join(content) == "Hi Hello lab, привет, bye"
    aiengine.config.reply_events = 500
    events = aiengine_chat(aiengine).events()
    assert len(events) == 501 and json.loads(events[0])["data"] == "w0 "
    assert json.loads(json.loads(events[-1])["data"])["reply"].endswith("w499 ")


# -- streams, counters, control ----------------------------------------------------------------------


@pytest.mark.parametrize("plugin", ["aipower", "aiengine"])
def test_aborted_stream_is_counted(plugin: str) -> None:
    with ReplicaSite(plugin, SiteConfig(chunk_delay=0.02, reply_events=500)) as site:
        if plugin == "aipower":
            request = aipower_request(site)
        else:
            body = json.dumps({"session": "s1", "newMessage": "hi", "stream": True}).encode()
            headers = {"Content-Type": "application/json", "X-WP-Nonce": site.nonce, "Cookie": "mwai_session_id=s1"}
            request = raw_request("POST", "/wp-json/mwai-ui/v1/chats/submit", body, headers)
        abandon_stream(site, request)


def test_a_stream_is_counted_over_before_its_client_can_see_its_end(aipower: ReplicaSite) -> None:
    """A client that acts the moment the last event lands (a test that reads the stats, a lane that starts
    the next chat) finds the stream already counted as over: the stats never lag behind a client."""
    aipower.config.chunk_delay = 0.02
    with socket.create_connection(("127.0.0.1", aipower.port), timeout=10) as sock:
        sock.sendall(aipower_request(aipower))
        received = sock.recv(65536)
        assert received.startswith(b"HTTP/1.1 200 OK") and aipower.stats.active_streams == 1
        while not received.endswith(b"data: [DONE]\n\n"):
            chunk = sock.recv(65536)
            assert chunk, "the stream closed before its [DONE]"
            received += chunk
        assert aipower.stats.streams_completed == 1 and aipower.stats.active_streams == 0, aipower.stats
        assert sock.recv(65536) == b"", "and the connection closes after it"
    assert aipower.stats.streams_aborted == 0


def test_aborted_during_first_delay_is_noticed_promptly(aipower: ReplicaSite) -> None:
    aipower.config.first_delay = 10
    sock = socket.create_connection(("127.0.0.1", aipower.port), timeout=5)
    sock.sendall(aipower_request(aipower))
    assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK")  # headers go out before the first event
    sock.close()
    assert wait_until(lambda: aipower.stats.streams_aborted == 1)
    assert aipower.stats.active_streams == 0


def test_twenty_concurrent_streams() -> None:
    with Replica(
        aipower_config=SiteConfig(chunk_delay=0.01, reply_events=30),
        aiengine_config=SiteConfig(chunk_delay=0.01, reply_events=30),
    ) as both:
        results: dict[int, bool] = {}

        def run(i: int) -> None:
            """One chat, alternating between the two sites."""
            if i % 2:
                results[i] = aipower_chat(both.aipower).events()[-1] == "[DONE]"
            else:
                results[i] = json.loads(aiengine_chat(both.aiengine).events()[-1])["type"] == "end"

        threads = [threading.Thread(target=run, args=(i,)) for i in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert sum(results.values()) == 40
        sites = (both.aipower, both.aiengine)
        assert all(site.stats.peak_streams > 1 for site in sites), "they ran side by side"
        for site in sites:
            assert site.stats.streams_completed == 20 and site.stats.active_streams == 0


def test_control_endpoints(aipower: ReplicaSite) -> None:
    def call(method: str, path: str, payload: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(aipower.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    aipower_chat(aipower)
    status, state = call("GET", "/__replica__/state")
    assert status == 200 and state["plugin"] == "aipower" and state["nonce"] == aipower.nonce
    assert state["log_length"] == 1 and state["stats"]["chat_requests"] == 1
    assert state["config"]["chunk_delay"] == 0
    status, state = call("POST", "/__replica__/config", {"failure": "limited", "chunk_delay": 1, "stream": True})
    assert status == 200 and aipower.config.failure == "limited" and aipower.config.chunk_delay == 1.0
    assert call("POST", "/__replica__/config", {"no_such_field": 1})[0] == 400
    assert call("POST", "/__replica__/config", {"stream": "yes"})[0] == 400
    status, state = call("POST", "/__replica__/reset", {})
    assert state["log_length"] == 0 and state["stats"]["chat_requests"] == 0
    assert aipower.config.failure == "limited"  # reset keeps the config
    assert aipower.log == [] and aipower.stats.chat_requests == 0


def test_reset_clears_log_and_stats(aiengine: ReplicaSite) -> None:
    aiengine_chat(aiengine)
    assert len(aiengine.log) == 1 and aiengine.stats.streams_completed == 1
    aiengine.reset()
    assert aiengine.log == [] and aiengine.stats.streams_completed == 0


def test_replica_runs_a_site_per_plugin() -> None:
    with Replica() as both:
        assert len({site.port for site in both.sites}) == len(PLUGINS) and both.aipkit.plugin == "aipkit"
        assert both.aipower.url.startswith("http://127.0.0.1:") and not both.aipower.url.endswith("/")
        with urllib.request.urlopen(both.aiengine.url + "/", timeout=5) as response:
            assert b"mwai-chatbot-container" in response.read()
    with pytest.raises(ValueError):
        ReplicaSite("other")


def test_command_line_runs_and_stops_cleanly() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "scraper.replica", "--plugin", "both", "--chunk-delay", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [process.stdout.readline().split() for _ in range(2)]
        assert [plugin for plugin, _ in lines] == ["aipower", "aiengine"]
        for _, url in lines:
            with urllib.request.urlopen(url + "/", timeout=5) as response:
                assert response.status == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
