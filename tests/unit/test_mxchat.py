"""MxChat without a browser: detection on the plugin's own markup, its reader over the recorded bytes,
and every answer the real plugin gave as its typed error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scraper.errors import RateLimitError, SiteError
from scraper.plugins import Finish, Rejected, TextDelta, detect, get_plugin
from scraper.plugins.mxchat import ChatSession, MxChatReader, new_session_id
from scraper.wire import Document
from tests._support import echo
from tests.unit.test_readers import cuts, events_of, text_of

ROOT = Path(__file__).resolve().parents[2] / "fixtures"
REPLY = echo("Hello lab, привет")
# The JSON bodies the real plugin (3.0.5) answered, byte for byte.
JSON_OK = (
    '{"text":"Echo: Hello lab, \\u043f\\u0440\\u0438\\u0432\\u0435\\u0442 | '
    '\\u041f\\u0440\\u0438\\u0432\\u0435\\u0442, \\u043c\\u0438\\u0440! \\ud83d\\ude42",'
    '"html":"","session_id":"mxchat_chat_jsn595789"}'
)
SESSION_MISSING = '{"success":false,"data":"Session ID is missing."}'
NO_MESSAGE = '{"success":false,"data":"No message received."}'
RATE_LIMIT = '{"success":false,"message":"Rate limit exceeded. Please try again later.","status":"rate_limit_exceeded"}'
SESSION_OWNER = (
    '{"success":false,"data":{"message":"Your session has expired. Starting a new conversation.",'
    '"code":"session_expired","action":"reset_session"}}'
)
UPSTREAM_JSON = (
    '{"success":false,"data":{"error_message":"OpenAI API error: Lab forced upstream error",'
    '"error_code":"openai_api_error"}}'
)
INVALID_NONCE = '{"success":false,"data":{"message":"Invalid nonce"}}'


def reader() -> MxChatReader:
    return MxChatReader(ChatSession("mxchat_chat_abcdefghi"))


def test_the_plugins_own_box_is_found_with_its_bot_id() -> None:
    html = (ROOT / "pages" / "mxchat_chatbot_element.html").read_text(encoding="utf-8")
    found = detect([Document(html)])
    assert [d.plugin.name for d in found] == ["mxchat"]
    bots = found[0].bots
    assert [(b.id, b.plugin) for b in bots] == [("default", "mxchat")]
    assert found[0].version == "3.0.5"
    assert set(found[0].markers) >= {"mxchat-chatbot-wrapper", "var mxchatChat"}


def test_the_version_is_the_chat_scripts_not_a_cache_buster() -> None:
    page = (
        "<link rel='stylesheet' "
        "href='/wp-content/plugins/mxchat-basic/includes/../css/chat-style.css?ver=1787344627' />"
        "<script src='/wp-content/plugins/mxchat-basic/includes/../js/chat-script.js?ver=3.0.5'></script>"
    )
    assert get_plugin("mxchat").version(page) == "3.0.5"


def test_a_session_id_is_made_as_the_page_script_makes_it() -> None:
    ids = {new_session_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == len("mxchat_chat_") + 9 and i.startswith("mxchat_chat_") for i in ids)


@pytest.mark.parametrize("seed", range(20))
async def test_the_recorded_stream_reads_exactly_however_cut(seed: int) -> None:
    data = (ROOT / "streams" / "mxchat_stream_ok.sse").read_bytes()
    events = await events_of(reader(), cuts(data, seed))
    assert text_of(events) == REPLY
    assert isinstance(events[-1], Finish) and sum(isinstance(e, Finish) for e in events) == 1


async def test_an_in_stream_error_is_a_site_error_with_the_sites_text() -> None:
    data = (ROOT / "streams" / "mxchat_stream_err_upstream.sse").read_bytes()
    with pytest.raises(SiteError) as caught:
        await events_of(reader(), [data])
    assert "OpenAI API error: Lab forced upstream error" in str(caught.value)
    assert caught.value.kind == "openai_api_error" and not isinstance(caught.value, RateLimitError)


async def test_the_json_answer_is_the_whole_reply() -> None:
    events = await events_of(reader(), [JSON_OK.encode()], "application/json")
    assert [e.text for e in events if isinstance(e, TextDelta)] == [REPLY]
    assert isinstance(events[-1], Finish)


@pytest.mark.parametrize(
    "body,text,kind",
    [
        (SESSION_MISSING, "Session ID is missing.", "error"),
        (NO_MESSAGE, "No message received.", "error"),
        (UPSTREAM_JSON, "OpenAI API error: Lab forced upstream error", "openai_api_error"),
    ],
)
async def test_each_json_error_is_a_site_error(body: str, text: str, kind: str) -> None:
    with pytest.raises(SiteError) as caught:
        await events_of(reader(), [body.encode()], "application/json")
    assert text in str(caught.value) and caught.value.kind == kind
    assert not isinstance(caught.value, RateLimitError)


async def test_the_rate_limit_is_a_rate_limit_error() -> None:
    with pytest.raises(RateLimitError) as caught:
        await events_of(reader(), [RATE_LIMIT.encode()], "application/json")
    assert "Rate limit exceeded. Please try again later." in str(caught.value)
    assert caught.value.http_status == 429 and caught.value.retry_after is None


async def test_a_session_of_another_visitor_gets_a_new_id_and_one_more_try() -> None:
    session = ChatSession("mxchat_chat_abcdefghi")
    events = await events_of(MxChatReader(session), [SESSION_OWNER.encode()], "application/json")
    assert len(events) == 1 and isinstance(events[0], Rejected) and not events[0].refresh
    assert session.id != "mxchat_chat_abcdefghi" and session.id.startswith("mxchat_chat_")


async def test_a_nonce_refusal_asks_for_a_fresh_nonce() -> None:
    events = await events_of(reader(), [INVALID_NONCE.encode()], "application/json")
    assert len(events) == 1 and isinstance(events[0], Rejected) and events[0].refresh


def test_the_stream_is_php_json_with_escapes_only() -> None:
    data = (ROOT / "streams" / "mxchat_stream_ok.sse").read_bytes()
    assert data.isascii() and data.endswith(b"data: [DONE]\n\n")
    first = json.loads(data.split(b"\n\n")[0][len(b"data: ") :])
    assert first == {"content": ""}


async def test_the_direct_client_chats_each_message_in_a_session_of_its_own() -> None:
    """The plain HTTP client over the replica: the same flow; each chat is a conversation of its own."""
    from scraper.client._direct import DirectChat
    from scraper.replica import ReplicaSite, SiteConfig

    with ReplicaSite("mxchat", SiteConfig(chunk_delay=0)) as site:
        async with DirectChat(site.url + "/", plugins=("mxchat",), timeout=30) as chat:
            assert await chat.collect("Привет 🙂") == echo("Привет 🙂")
            assert await chat.collect("ещё") == echo("ещё")
        sessions = [r.form["session_id"] for r in site.log if r.form and "session_id" in r.form]
        assert len(sessions) == 2 and len(set(sessions)) == 2
        given = site.chat_history[("model", sessions[1], 1)]
        assert [m["content"] for m in given if m["role"] != "system"] == ["ещё"]
