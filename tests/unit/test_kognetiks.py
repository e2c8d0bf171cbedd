"""Kognetiks Chatbot without a browser: its page (both config objects), its answers and its errors as
the real plugin 2.4.6 sent them (``fixtures/kognetiks/replies.json``, nonces and session ids replaced)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from scraper.errors import RateLimitError, SiteError
from scraper.plugins import Finish, Rejected, TextDelta, detect, read_reply
from scraper.plugins.kognetiks import KognetiksPlugin, KognetiksReader, model_text, page_configs
from scraper.wire import Document, Response
from tests._support import echo

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
REPLIES: dict[str, dict[str, Any]] = json.loads((FIXTURES / "kognetiks" / "replies.json").read_text("utf-8"))
ELEMENT = (FIXTURES / "pages" / "kognetiks_chatbot_element.html").read_text("utf-8")
PLUGIN = KognetiksPlugin()


class JSONResponse(Response):
    """A recorded JSON answer, whole."""

    def __init__(self, body: str) -> None:
        self.status, self.url, self.received = 200, "http://127.0.0.1/wp-admin/admin-ajax.php", 0
        self.headers = {"content-type": "application/json; charset=UTF-8"}
        self.idle_timeout = 5.0
        self._body = body.encode("utf-8")

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        yield self._body

    async def aclose(self) -> None:
        return None


async def read(name: str) -> list[Any]:
    """The events the reader makes of a recorded answer, through the package's reading loop."""
    return [event async for event in read_reply(KognetiksReader(), JSONResponse(REPLIES[name]["body"]))]


def test_the_page_has_both_config_objects_and_only_the_first_has_nonces():
    configs = page_configs(ELEMENT)
    with_nonce = [c for c in configs if "chatbot_message_nonce" in c]
    shortcode = [c for c in configs if c.get("assistant_id") == "original"]
    # each line assigns its object twice (``if (typeof …) { var … = {…}; } else { … = {…}; }``)
    assert len(with_nonce) == 2 and with_nonce[0] == with_nonce[1]
    assert len(with_nonce[0]) == 30, "object 1 (wp_enqueue_scripts): 30 keys"
    assert shortcode and len(shortcode[-1]) == 42, "object 2 (the shortcode): 42 keys, no nonce"
    assert all("chatbot_message_nonce" not in c for c in shortcode)
    assert PLUGIN.version(ELEMENT) == "2.4.6"


def test_the_version_is_the_plugins_own_not_a_cache_buster():
    html = ELEMENT.replace("?ver=2.4.6", "?ver=1796595752")
    assert PLUGIN.version(html) == "2.4.6"


@pytest.mark.parametrize("style", ["embedded", "floating"])
def test_detection_inline_and_floating(style: str):
    html = ELEMENT if style == "embedded" else ELEMENT.replace("chatbot-embedded-style", "chatbot-floating-style")
    [found] = detect([Document(html)], [PLUGIN])
    assert found.version == "2.4.6"
    assert {"chatbot-chatgpt-js-js", "kchat_settings", 'id="chatbot-chatgpt"'} <= set(found.markers)
    [bot] = found.bots
    assert (bot.id, bot.name, bot.plugin) == ("original", "Kognetiks Chatbot", "kognetiks")
    assert bot.attrs["data-style"] == style


def test_a_page_without_the_box_shows_the_plugin_but_no_bot():
    """Audience "logged-in": the shortcode renders nothing for guests, the config script stays."""
    html = ELEMENT.replace('id="chatbot-chatgpt"', 'id="chatbot-elsewhere"')
    [found] = detect([Document(html)], [PLUGIN])
    assert found.bots == [] and "chatbot-chatgpt-js-js" in found.markers


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("send_ok", echo("Hello lab, привет")),
        ("send_ok_turn2", echo("Second turn: what did I say?")),
        ("send_html_input", echo("bold line1 line2 & done")),
        ("guests_off_send_ok", echo("guests are off, hello anyway")),
    ],
)
async def test_a_reply_is_the_models_text_in_one_chunk(name: str, text: str):
    events = await read(name)
    assert events == [TextDelta(text), Finish("stop")], "no learnings block, no <br>, emoji and Cyrillic exact"


def test_model_text_undoes_the_plugins_decorations_and_keeps_line_breaks():
    data = (
        'See <span><a href="https://example.org/a" target="_blank">the docs</a></span>\n'
        'and <span><center><img src="https://example.org/i.png" alt="a cat" style="max-width: 95%; width: auto;" />'
        "</center></span>\nTom &amp; Jerry &lt;3<br><br>\n\n Please note: <ul><li>x</li></ul> "
    )
    assert model_text(data) == (
        "See [the docs](https://example.org/a)\nand ![a cat](https://example.org/i.png)\nTom & Jerry <3"
    )
    assert model_text("no learnings at all") == "no learnings at all"


@pytest.mark.parametrize(
    ("name", "kind"),
    [("send_err_upstream", "upstream_error"), ("send_err_duplicate_client_message_id", "duplicate")],
)
async def test_canned_sentences_sent_as_success_are_site_errors(name: str, kind: str):
    assert json.loads(REPLIES[name]["body"])["success"] is True
    with pytest.raises(SiteError) as caught:
        await read(name)
    assert caught.value.kind == kind and not isinstance(caught.value, RateLimitError)


def test_every_canned_api_apology_is_an_error():
    from scraper.plugins.kognetiks import CANNED_ERRORS

    for sentence in CANNED_ERRORS:
        with pytest.raises(SiteError):
            KognetiksReader().on_json({"success": True, "data": f" {sentence}<br><br> "})


async def test_an_error_with_status_200_is_a_site_error():
    with pytest.raises(SiteError, match="Invalid API key or Message"):
        await read("send_err_empty_message")


async def test_a_queued_message_is_tried_again_in_a_session_of_its_own():
    [event] = await read("send_queued")
    assert isinstance(event, Rejected) and not event.refresh
    assert set(event.forget) == {"session_id", "message_id"}


@pytest.mark.parametrize("name", ["send_err_wrong_nonce", "send_err_expired_nonce", "send_err_missing_nonce"])
def test_nonce_failures_ask_for_a_refresh(name: str):
    reply = REPLIES[name]
    assert reply["status"] == 403 and PLUGIN.nonce_rejected(reply["status"], reply["body"])


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("send_err_missing_session_id", "Session ID required"),
        ("send_err_bad_session_id", "Unauthorized access to conversation"),
    ],
)
def test_session_failures_are_site_errors(name: str, text: str):
    reply = REPLIES[name]
    assert not PLUGIN.nonce_rejected(reply["status"], reply["body"])
    error = PLUGIN.error_for(reply["status"], reply["body"], "http://127.0.0.1/wp-admin/admin-ajax.php")
    assert type(error) is SiteError and text in str(error) and error.status == 403


def test_the_rate_limit_is_a_rate_limit_error_with_the_wait():
    reply = REPLIES["send_err_rate_limit"]
    assert reply["status"] == 429 and not PLUGIN.nonce_rejected(reply["status"], reply["body"])
    error = PLUGIN.error_for(reply["status"], reply["body"], "http://127.0.0.1/wp-admin/admin-ajax.php")
    assert isinstance(error, RateLimitError) and isinstance(error, SiteError)
    assert error.retry_after == 60.0 and error.http_status == 429
    assert "Rate limit exceeded" in str(error)


def test_a_chat_sends_the_page_scripts_fields_in_order_with_a_session_of_its_own():
    values = {"ajax_url": "http://127.0.0.1/wp-admin/admin-ajax.php", "page_id": "4", "nonce": "n0nce"}
    first: dict[str, Any] = {}
    second: dict[str, Any] = {}
    steps = [next(PLUGIN.chat(values, "Привет", state)) for state in (first, second)]
    from urllib.parse import parse_qsl

    forms = [parse_qsl(step.request.body or "") for step in steps]
    assert [name for name, _ in forms[0]] == [
        "action",
        "message",
        "user_id",
        "page_id",
        "session_id",
        "client_message_id",
        "chatbot_nonce",
    ]
    assert dict(forms[0])["message"] == "Привет" and dict(forms[0])["chatbot_nonce"] == "n0nce"
    assert first["session_id"] != second["session_id"], "two chats never share the site's conversation lock"
    again = parse_qsl(next(PLUGIN.chat(values, "Привет", first)).request.body or "")
    assert dict(again)["client_message_id"] == dict(forms[0])["client_message_id"], "a retry keeps its id"
