"""Kognetiks Chatbot through real Chromium against its replica: detection, the reply as one chunk, a second
turn, the nonce refresh, every captured error typed, the rate limit, chats at once, and everything the
other plugins have (CLI, inspect, serve, cassettes, the direct client)."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl, urlencode

import openai
import pytest

from scraper import HTTPError, KognetiksChat, PageError, RateLimitError, SiteError, WordPressChat
from scraper.cassettes import Cassette, ReplayServer, record_chat
from scraper.replica import ReplicaSite, SiteConfig
from tests._support import chat_and_inspect, echo
from tests.e2e.test_serve import serving

MESSAGE = "Hello lab, привет"
REPLY = echo("Hello lab, привет")
AJAX = "/wp-admin/admin-ajax.php"


async def ask(chat: WordPressChat, *messages: str) -> list[str]:
    """The chunks of one chat whose messages alternate user, assistant, user…"""
    roles = ["user", "assistant"]
    history = [{"role": roles[i % 2], "content": text} for i, text in enumerate(messages)]
    return [chunk async for chunk in chat.create_async_generator("", history)]


def sends(site: ReplicaSite) -> list[dict[str, str]]:
    """The forms of the send-message requests the site received, in order."""
    return [
        dict(parse_qsl(r.body.decode()))
        for r in site.log
        if r.path == AJAX and b"chatbot_chatgpt_send_message" in r.body
    ]


def statuses(site: ReplicaSite, action: str) -> list[int]:
    return [r.status for r in site.log if r.path == AJAX and action.encode() in r.body]


def post_message(site: ReplicaSite, text: str, message_id: str) -> dict:
    """A message posted as the page script posts it (no browser), in a session of a fixed id."""
    form = {
        "action": "chatbot_chatgpt_send_message",
        "message": text,
        "user_id": "0",
        "page_id": "4",
        "session_id": "kognetiks_0123456789abc.12345678",
        "client_message_id": message_id,
        "chatbot_nonce": site.nonce,
    }
    request = urllib.request.Request(site.url + AJAX, urlencode(form).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def model_inputs(site: ReplicaSite) -> list[list[dict[str, str]]]:
    """What the site's model was given, one list of messages per model call, oldest first."""
    return [messages for key, messages in site.chat_history.items() if key[0] == "model"]


@pytest.mark.parametrize("page", ["ok", "widget"])
async def test_detection_embedded_and_floating(page: str):
    with ReplicaSite("kognetiks", SiteConfig(page=page, chunk_delay=0)) as site:
        chat = WordPressChat(site.url + "/")
        [bot] = await chat.bots()
        assert (bot.id, bot.name, bot.plugin) == ("original", "Kognetiks Chatbot", "kognetiks")
        assert bot.attrs["data-style"] == ("floating" if page == "widget" else "embedded")
        assert "".join(await ask(chat, MESSAGE)) == REPLY


async def test_the_reply_is_the_models_text_as_one_chunk(kognetiks):
    chunks = await ask(KognetiksChat(kognetiks.url), MESSAGE)
    assert chunks == [REPLY], "one chunk: no learnings block, no <br>, Cyrillic and emoji exact"
    assert statuses(kognetiks, "chatbot_chatgpt_refresh_nonce") == [200], "the nonce is asked for first"
    [form] = sends(kognetiks)
    assert list(form) == ["action", "message", "user_id", "page_id", "session_id", "client_message_id", "chatbot_nonce"]
    assert form["message"] == MESSAGE and form["chatbot_nonce"] == kognetiks.nonce and form["user_id"] == "0"
    assert form["page_id"] == "4" and form["session_id"].startswith("kognetiks_")
    [send] = [r for r in kognetiks.log if r.path == AJAX and b"send_message" in r.body]
    assert send.headers["x-requested-with"] == "XMLHttpRequest"
    assert send.headers["content-type"] == "application/x-www-form-urlencoded; charset=UTF-8"
    [[system, user]] = model_inputs(kognetiks)
    assert user == {"role": "user", "content": MESSAGE} and system["role"] == "system"


async def test_a_second_turn_reaches_the_model_twice_over(kognetiks):
    """The client sends the earlier turns in its prompt; the site adds its own (site-wide) history."""
    chat = KognetiksChat(kognetiks.url)
    assert await ask(chat, MESSAGE) == [REPLY]
    second = await ask(chat, MESSAGE, REPLY, "What did I say?")
    assert len(second) == 1 and second[0].startswith(
        "Echo: Our conversation so far: User: Hello lab, привет Assistant: Echo:"
    )
    _, second_call = model_inputs(kognetiks)
    assert second_call[1:3] == [{"role": "user", "content": MESSAGE}, {"role": "assistant", "content": REPLY}]
    assert "User: Hello lab, привет" in second_call[-1]["content"], "the prompt carries the earlier turns"
    assert MESSAGE in second_call[0]["content"], "the site's store, flattened into the system prompt"


async def test_another_visitors_turns_travel_in_the_prompt(kognetiks):
    """What the README warns of: the store is the site's, not the visitor's."""
    await ask(KognetiksChat(kognetiks.url), "My secret is blue")
    await ask(KognetiksChat(kognetiks.url + "/chat/"), MESSAGE)
    assert {"role": "user", "content": "My secret is blue"} in model_inputs(kognetiks)[-1]


async def test_a_rejected_nonce_is_refreshed_once(kognetiks):
    chat = KognetiksChat(kognetiks.url)
    assert await ask(chat, MESSAGE) == [REPLY]
    kognetiks.config.nonce_mode = "reject_once"
    assert await ask(chat, MESSAGE) == [REPLY]
    assert statuses(kognetiks, "chatbot_chatgpt_send_message") == [200, 403, 200]
    assert statuses(kognetiks, "chatbot_chatgpt_refresh_nonce") == [200, 200]
    _, rejected, retried = sends(kognetiks)
    assert retried["chatbot_nonce"] == kognetiks.nonce != rejected["chatbot_nonce"]
    assert retried["client_message_id"] == rejected["client_message_id"], "the retry is the same message"
    kognetiks.config.nonce_mode = "always_reject"
    with pytest.raises(HTTPError):
        await ask(chat, MESSAGE)


@pytest.mark.parametrize(
    ("failure", "message", "kind", "text"),
    [
        ("upstream_error", MESSAGE, "upstream_error", "the api"),  # one of eight sentences, at random
        ("duplicate", MESSAGE, "duplicate", "duplicate request detected"),
        (None, "<b></b>", "error", "invalid api key or message"),
    ],
)
async def test_each_captured_error_is_a_site_error(kognetiks, failure, message, kind, text):
    chat = KognetiksChat(kognetiks.url)
    kognetiks.config.failure = failure
    with pytest.raises(SiteError) as caught:
        await ask(chat, message)
    assert caught.value.kind == kind and text in str(caught.value).lower()
    assert not isinstance(caught.value, RateLimitError)
    kognetiks.config.failure = None
    assert await ask(chat, MESSAGE) == [REPLY], "the next chat works once the cause is gone"


async def test_a_fatal_error_page_is_an_http_error(kognetiks):
    kognetiks.config.failure = "http_500"
    with pytest.raises(HTTPError) as caught:
        await ask(KognetiksChat(kognetiks.url), MESSAGE)
    assert caught.value.status == 500


async def test_the_rate_limit_is_a_rate_limit_error(kognetiks):
    kognetiks.config.rate_limit = 1
    chat = KognetiksChat(kognetiks.url)
    assert await ask(chat, MESSAGE) == [REPLY]
    with pytest.raises(RateLimitError) as caught:
        await ask(chat, MESSAGE)
    assert caught.value.retry_after == 60.0 and caught.value.http_status == 429
    assert "Rate limit exceeded" in str(caught.value)
    assert statuses(kognetiks, "chatbot_chatgpt_send_message") == [200, 429]


async def test_two_chats_at_once_are_answered_at_once_and_both_delivered(kognetiks):
    """Each answer is held until two are being made at once: chats that waited on each other would not
    get there (and would meet the site's conversation lock, whose answers are lost)."""
    kognetiks.config.gather = 2
    chat = KognetiksChat(kognetiks.url)
    await chat.bots()  # the page is warm: both chats start from it
    messages = ["Первый 🙂", "Второй 🙂"]
    replies = await asyncio.gather(*(ask(chat, text) for text in messages))
    assert replies == [[f"Echo: {text} | Привет, мир! 🙂"] for text in messages]
    assert kognetiks.stats.peak_answers == 2 and kognetiks.stats.queued_messages == 0
    sessions = {form["session_id"] for form in sends(kognetiks)}
    assert len(sessions) == 2, "each chat a session of its own"


def test_the_replica_queues_a_second_message_of_a_busy_conversation(kognetiks):
    """The plugin's queue, as captured: the same session twice at once, the second answered "queued"
    and its answer made but never sent."""
    kognetiks.config.gather = 2
    kognetiks.config.rate_limit = 10

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(post_message, [kognetiks] * 2, ["first", "second"], ["client_1_a", "client_2_b"]))
    queued = [data for data in answers if isinstance(data["data"], dict)]
    answered = [data for data in answers if isinstance(data["data"], str)]
    assert len(queued) == 1 and queued[0]["data"]["queued"] is True and len(answered) == 1
    assert kognetiks.stats.queued_messages == 1
    assert len(model_inputs(kognetiks)) == 2, "the queued message was answered, its answer sent to nobody"


def test_command_line_chat_and_inspect(kognetiks):
    found = chat_and_inspect(kognetiks.url + "/", "kognetiks", MESSAGE, REPLY)
    assert found["version"] == "2.4.6"
    assert "chatbot-chatgpt-js-js" in found["markers"] and found["generation"].startswith("Kognetiks Chatbot")
    [bot] = found["bots"]
    assert (bot["id"], bot["name"], bot["plugin"]) == ("original", "Kognetiks Chatbot", "kognetiks")
    assert bot["values"]["nonce"] != kognetiks.nonce, "secrets are shortened"
    assert bot["values"]["page_id"] == "4"


def test_serve_through_the_openai_sdk(kognetiks):
    with serving(sites={"kog": kognetiks.url}) as served:
        client = served.client()
        models = {model.id for model in client.models.list()}
        assert {"kog", "kog/original"} <= models
        reply = client.chat.completions.create(model="kog", messages=[{"role": "user", "content": MESSAGE}])
        assert reply.choices[0].message.content == REPLY
        streamed = list(
            client.chat.completions.create(
                model="kog/original", messages=[{"role": "user", "content": MESSAGE}], stream=True
            )
        )
        assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == REPLY
        kognetiks.config.rate_limit = 0
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="kog", messages=[{"role": "user", "content": MESSAGE}])
        assert caught.value.status_code == 429 and "Rate limit exceeded" in str(caught.value)
        assert caught.value.response.headers["retry-after"] == "60"


async def test_a_cassette_round_trip(kognetiks, tmp_path):
    recorded = await record_chat(KognetiksChat(kognetiks.url), MESSAGE, tmp_path / "kog")
    assert recorded.chunks == [REPLY]
    cassette = Cassette.load(tmp_path / "kog")
    saved = (tmp_path / "kog" / "exchanges.json").read_text("utf-8")
    [sent] = sends(kognetiks)
    assert kognetiks.nonce not in saved and sent["session_id"] not in saved, "nonce and session id scrubbed"
    with ReplayServer(cassette, speed=0) as replay:
        chunks = await ask(KognetiksChat(replay.url), MESSAGE)
    assert chunks == [REPLY]
    assert replay.mismatches == [] and replay.unused == []


async def test_the_direct_client_gets_the_same_reply(kognetiks):
    pytest.importorskip("aiohttp", reason="the direct client needs aiohttp")
    from scraper.client._direct import DirectChat

    async with DirectChat(kognetiks.url + "/", plugins=("kognetiks",)) as direct:
        assert await direct.collect(MESSAGE) == REPLY
        assert [chunk async for chunk in direct.stream(MESSAGE)] == [REPLY]


async def test_a_page_with_both_new_plugins_and_ai_engine_offers_all_three():
    with ReplicaSite(("kognetiks", "mxchat", "aiengine"), SiteConfig(chunk_delay=0)) as site:
        url = site.url + "/"
        bots = await WordPressChat(url).bots()
        assert [b.plugin for b in bots] == ["kognetiks", "mxchat", "aiengine"], "in page order"
        assert (bots[0].id, bots[0].name) == ("original", "Kognetiks Chatbot")
        for plugin in ("kognetiks", "mxchat", "aiengine"):
            assert [b.plugin for b in await WordPressChat(url, plugins=(plugin,)).bots()] == [plugin]
            chunks = await ask(WordPressChat(url, plugins=(plugin,)), MESSAGE)
            assert "".join(chunks) == REPLY, plugin
        assert len(sends(site)) == 1, "each chat went to its own plugin on the warm page"


async def test_with_guests_off_the_page_shows_the_plugin_but_no_box():
    """Audience "logged-in": no box for guests (a PageError naming the markers), though the config
    script stays and the endpoint still answers guests, as on the real plugin."""
    with ReplicaSite("kognetiks", SiteConfig(chunk_delay=0, page="guests_off")) as site:
        with pytest.raises(PageError) as caught:
            await ask(KognetiksChat(site.url), MESSAGE)
        assert "Kognetiks Chatbot markers (chatbot-chatgpt-js-js, kchat_settings" in str(caught.value)
        answer = post_message(site, MESSAGE, "client_1_off")
        assert answer["success"] is True and answer["data"].startswith(REPLY + "<br><br>")
