"""Any WordPress chat box: AIPKit through real Chromium, detection on every replica page, several bots
and several plugins on one page, and ChatgptFree as the real site runs today (AIPKit on /chat/)."""

from __future__ import annotations

import json

import pytest

from scraper import (
    AIPowerChat,
    BotNotFoundError,
    ChatgptFree,
    ModelNotSupportedError,
    PageError,
    SiteError,
    StreamError,
    WordPressChat,
)
from scraper.plugins import PLUGINS
from scraper.plugins.flow import QUIET_SECONDS
from scraper.replica import ReplicaSite, SiteConfig
from scraper.replica.wordpress import WIDGET_PATH
from tests._support import cli, echo

HELLO = [{"role": "user", "content": "Привет, мир 🙂"}]
REPLY = echo("Привет, мир 🙂")


async def test_chatgptfree_speaks_aipkit_on_chat_today(aipkit):
    stream = ChatgptFree.create_async_generator("gpt-4o-mini", HELLO)
    chunks = [chunk async for chunk in stream]
    assert "".join(chunks) == REPLY and len(chunks) > 3, "streamed, Cyrillic and emoji exact"
    assert stream.finish_reason == "stop"
    assert aipkit.stats.stream_bot_ids == [25874], "the first bot on the page"
    assert ChatgptFree._post_id == "261" and ChatgptFree._nonce == aipkit.nonce
    [page] = [r for r in aipkit.log if r.method == "GET" and r.path == "/chat/"]
    assert page.status == 200
    cache, stream_request = [r for r in aipkit.log if r.path == "/wp-admin/admin-ajax.php"]
    assert cache.method == "POST" and cache.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert list(cache.form) == ["action", "message", "_ajax_nonce", "bot_id", "user_client_message_id"]
    assert list(stream_request.query) == [
        "action",
        "cache_key",
        "bot_id",
        "session_id",
        "conversation_uuid",
        "post_id",
        "_ts",
        "_ajax_nonce",
    ], "the stream step's query in the page script's order"
    assert stream_request.headers["accept"] == "text/event-stream"


async def test_both_bots_by_id_and_by_name_with_one_guest_session(aipkit):
    chat = WordPressChat(aipkit.url + "/chat/")
    bots = await chat.bots()
    assert [(b.id, b.name, b.plugin) for b in bots] == [
        ("25874", "Gemini", "aipkit"),
        ("25875", "GPT-4o mini", "aipkit"),
    ]
    assert await chat.create_async_generator("", HELLO, bot=25875).collect() == REPLY
    assert await chat.create_async_generator("", HELLO, bot="gemini").collect() == REPLY
    assert await WordPressChat(aipkit.url + "/chat/", bot="GPT-4o mini").create_async_generator("", HELLO).collect()
    assert aipkit.stats.stream_bot_ids == [25875, 25874, 25875]
    streams = [r for r in aipkit.log if r.query.get("action") == "aipkit_frontend_chat_stream"]
    assert len({r.query["session_id"] for r in streams}) == 1, "one guest id for the site, as localStorage keeps it"
    assert len({r.query["conversation_uuid"] for r in streams}) == 3, "a new conversation per chat"
    assert aipkit.stats.page_loads == 1, "one warm page serves every bot"
    with pytest.raises(BotNotFoundError, match=r"25874 'Gemini' \(aipkit\)"):
        await chat.create_async_generator("", HELLO, bot="Claude").collect()


async def test_the_model_picks_the_bot_of_that_name_else_the_default_bot(aipkit):
    chat = WordPressChat(aipkit.url + "/chat/")
    assert await chat.create_async_generator("GPT-4o mini", HELLO).collect() == REPLY
    assert await chat.create_async_generator("gpt-4o-mini", HELLO).collect() == REPLY, "a model no bot names"
    assert await chat.create_async_generator("gemini", HELLO, bot=25875).collect() == REPLY, "bot= wins"
    assert aipkit.stats.stream_bot_ids == [25875, 25874, 25875]
    with pytest.raises(ModelNotSupportedError, match="gpt-4o-mini-2024-07-18"):
        ChatgptFree.create_async_generator("claude-3", HELLO)  # a preset keeps its model list


async def test_a_rejected_cache_post_refreshes_the_nonce_and_sends_once_more(aipkit):
    aipkit.config.nonce_mode = "reject_once"
    assert await ChatgptFree.create_async_generator("", HELLO).collect() == REPLY
    assert aipkit.stats.nonce_refreshes == 1 and aipkit.stats.chat_requests == 2
    assert aipkit.stats.page_loads == 1, "refreshed without navigating the page"


async def test_an_in_band_nonce_refusal_is_refreshed_and_the_same_key_sent_again(aipkit):
    aipkit.config.nonce_mode = "stream_reject_once"
    chunks = [chunk async for chunk in ChatgptFree.create_async_generator("", HELLO)]
    assert "".join(chunks) == REPLY, "never any text twice"
    assert aipkit.stats.nonce_refreshes == 1 and aipkit.stats.streams_started == 2
    assert aipkit.stats.cache_keys_issued == 1, "the key survives a bad nonce: the message is not sent again"


async def test_upstream_error_and_cut_stream(aipkit):
    aipkit.config.failure = "upstream_error"
    with pytest.raises(SiteError, match="Lab forced upstream error"):
        await ChatgptFree.create_async_generator("", HELLO).collect()
    aipkit.config.failure = "cut_stream"
    with pytest.raises(StreamError, match="ended without its done event") as info:
        await ChatgptFree.create_async_generator("", HELLO).collect()
    assert info.value.received.startswith("Echo"), "what arrived is on the error"
    aipkit.config.failure = None
    assert await ChatgptFree.create_async_generator("", HELLO).collect() == REPLY, "and the next chat works"


@pytest.mark.parametrize("plugin", ["aipkit", "aipower", "aiengine"])
async def test_a_chat_box_built_by_a_script_after_load_is_waited_for(plugin):
    with ReplicaSite(plugin, SiteConfig(chunk_delay=0, page="script_built", build_delay=0.3)) as site:
        assert await WordPressChat(site.url + "/chat/").create_async_generator("", HELLO).collect() == REPLY


async def test_waiting_until_the_page_is_quiet_counts_a_request_in_flight():
    # No DOM change for longer than QUIET_SECONDS while the request the box comes from is in flight.
    config = SiteConfig(chunk_delay=0, page="request_built", build_delay=QUIET_SECONDS + 1)
    with ReplicaSite("aipkit", config) as site:
        chat = WordPressChat(site.url + "/chat/")
        lane = await chat.session()
        selector = ", ".join(plugin.bot_selector for plugin in PLUGINS)
        html = await lane.runtime.call(lane.live_html(selector, 30, until_quiet=QUIET_SECONDS))
        assert html is not None and "aipkit_chat_container" in html
        assert [r.path for r in site.log].count(WIDGET_PATH) == 1
        assert await chat.create_async_generator("", HELLO).collect() == REPLY


async def test_wordpress_in_a_subfolder():
    with ReplicaSite("aipkit", SiteConfig(chunk_delay=0, page="subfolder")) as site:
        assert await WordPressChat(site.url + "/chat/").create_async_generator("", HELLO).collect() == REPLY
        assert {r.path for r in site.log if "admin-ajax" in r.path} == {"/blog/wp-admin/admin-ajax.php"}


async def test_a_page_with_two_plugins_offers_the_bots_of_both():
    with ReplicaSite("aipkit+aiengine", SiteConfig(chunk_delay=0)) as site:
        chat = WordPressChat(site.url + "/chat/")
        bots = await chat.bots()
        assert {b.plugin for b in bots} == {"aipkit", "aiengine"}
        engine = next(b for b in bots if b.plugin == "aiengine")
        assert await chat.create_async_generator("", HELLO, bot=engine.id).collect() == REPLY
        assert await chat.create_async_generator("", HELLO, bot="GPT-4o mini").collect() == REPLY
        assert site.stats.session_starts == 1 and site.stats.stream_bot_ids == [25875]
        assert await AIPowerChat(site.url + "/chat/").create_async_generator("", HELLO).collect() == REPLY


@pytest.mark.parametrize("plugin", ["aipkit", "aipower", "aiengine"])
async def test_a_page_with_no_chat_box_names_every_plugin_looked_for(plugin):
    with ReplicaSite(plugin, SiteConfig(page="no_chatbox")) as site, pytest.raises(PageError) as info:
        await WordPressChat(site.url + "/chat/").create_async_generator("", HELLO, timeout=3).collect()
    message = str(info.value)
    assert "No chat box on" in message
    assert all(label in message for label in ("AI Power (.wpaicg", "AI Power (AIPKit) (.aipkit", "AI Engine (.mwai"))


def test_command_line_bot_and_inspect(aipkit):
    result = cli("chat", "--url", aipkit.url + "/chat/", "--bot", "GPT-4o mini", "Привет, мир 🙂")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == REPLY and aipkit.stats.stream_bot_ids == [25875]

    result = cli("inspect", aipkit.url + "/chat/", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    [found] = report["plugins"]
    assert found["plugin"] == "aipkit" and found["version"] == "2.4.71"
    assert "aipkit_chat_container" in found["markers"] and found["generation"].startswith("AI Power 2.3+")
    assert [(b["id"], b["name"], b["plugin"]) for b in found["bots"]] == [
        ("25874", "Gemini", "aipkit"),
        ("25875", "GPT-4o mini", "aipkit"),
    ]
    values = found["bots"][0]["values"]
    assert values["nonce"] != aipkit.nonce and values["nonce"].endswith("chars)"), "secrets are shortened"
    assert values["bot_id"] == "25874" and values["post_id"] == "261"


async def test_ai_engine_1x_in_the_browser_bots_chat_and_a_renewed_nonce():
    with ReplicaSite("aiengine", SiteConfig(chunk_delay=0, page="v1_endpoint")) as site:
        chat = WordPressChat(site.url + "/")
        [bot] = await chat.bots()
        assert (bot.id, bot.plugin) == ("default", "aiengine")
        assert "".join([piece async for piece in chat.create_async_generator("", HELLO)]) == REPLY
        site.config.nonce_mode = "reject_once"
        assert "".join([piece async for piece in chat.create_async_generator("", HELLO)]) == REPLY
        sent = [r for r in site.log if r.path == "/wp-json/mwai-bot/v1/chat"]
        assert [r.status for r in sent] == [200, 403, 200]
        assert "/wp-json/mwai/v1/start_session" not in [r.path for r in site.log]
        result = cli("inspect", site.url + "/", "--json")
        assert result.returncode == 0, result.stderr
        [found] = json.loads(result.stdout)["plugins"]
        assert found["plugin"] == "aiengine" and found["generation"].startswith("AI Engine 1.x")
