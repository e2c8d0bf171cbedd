"""MxChat through real Chromium against the replica site: detection, the streamed and the JSON reply, the
conversation the site keeps per session, nonce refresh, every failure typed, chats at once, ``inspect``,
``serve`` through OpenAI's SDK and a cassette round trip."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, Page, expect

from scraper import MxChatChat, RateLimitError, SiteError, WordPressChat
from scraper.cassettes import Cassette, ReplayServer, record_chat
from scraper.replica import ReplicaSite, SiteConfig
from scraper.replica.mxchat import mxchat_app
from tests._support import chat_and_inspect, echo
from tests.conftest import _site
from tests.e2e.test_serve import serving

MESSAGE = "Привет, как дела? 🙂"
REPLY = echo("Привет, как дела? 🙂")


@pytest.fixture
def mxchat(monkeypatch: pytest.MonkeyPatch) -> Iterator[ReplicaSite]:
    """A replica MxChat 3.0.5 site."""
    yield from _site("mxchat", monkeypatch)


async def ask(chat: object, message: str = MESSAGE) -> str:
    stream = chat.create_async_generator("", [{"role": "user", "content": message}])  # type: ignore[attr-defined]
    return "".join([piece async for piece in stream])


def content_type(record: object) -> str:
    return {k.lower(): v for k, v in record.headers.items()}["content-type"]  # type: ignore[attr-defined]


def chat_posts(site: ReplicaSite) -> list:
    return [r for r in site.log if r.form and r.form.get("action", "").startswith("mxchat_") and "message" in r.form]


@pytest.mark.parametrize("page", ["ok", "widget"])
async def test_the_box_is_found_inline_and_floating(mxchat, page):
    mxchat.config.page = page
    for chat in (WordPressChat(mxchat.url + "/"), MxChatChat(mxchat.url + "/")):
        bots = await chat.bots()
        assert [(b.id, b.name, b.plugin) for b in bots] == [("default", "MxChat", "mxchat")]
    assert await ask(MxChatChat(mxchat.url + "/")) == REPLY


async def test_a_streamed_reply_is_exact_and_sent_as_the_page_script_sends_it(mxchat):
    chunks = [
        c async for c in MxChatChat(mxchat.url).create_async_generator("", [{"role": "user", "content": MESSAGE}])
    ]
    assert "".join(chunks) == REPLY and len(chunks) > 3, "streamed in pieces"
    [sent] = chat_posts(mxchat)
    assert content_type(sent).startswith("multipart/form-data; boundary=")
    assert list(sent.form) == [
        "action",
        "message",
        "session_id",
        "nonce",
        "current_page_url",
        "current_page_title",
        "bot_id",
    ]
    assert sent.form["action"] == "mxchat_stream_chat" and sent.form["message"] == MESSAGE
    assert sent.form["nonce"] == mxchat.nonce and sent.form["bot_id"] == "default"
    assert sent.form["session_id"].startswith("mxchat_chat_") and len(sent.form["session_id"]) == 21
    assert sent.form["current_page_title"] == "MxChat Chat – Chat Corner"


async def test_with_streaming_off_the_json_action_answers_whole(mxchat):
    mxchat.config.stream = False
    assert await ask(MxChatChat(mxchat.url)) == REPLY
    [sent] = chat_posts(mxchat)
    assert sent.form["action"] == "mxchat_handle_chat_request"
    assert content_type(sent) == "application/x-www-form-urlencoded; charset=UTF-8"


async def converse(chat: object, *messages: str) -> list[str]:
    """Each message as the next turn of one conversation, the whole history sent as OpenAI clients do."""
    history: list[dict[str, str]] = []
    replies = []
    for message in messages:
        history.append({"role": "user", "content": message})
        stream = chat.create_async_generator("", history)  # type: ignore[attr-defined]
        replies.append("".join([piece async for piece in stream]))
        history.append({"role": "assistant", "content": replies[-1]})
    return replies


async def test_a_second_turn_continues_the_session_the_site_keeps(mxchat):
    chat = MxChatChat(mxchat.url)
    turns = ("Hello lab, привет", "Second turn: what did I say?")
    assert await converse(chat, *turns) == [echo(t) for t in turns]
    first, second = chat_posts(mxchat)
    session = first.form["session_id"]
    assert second.form["session_id"] == session
    given = mxchat.chat_history[("model", session, 2)]
    assert [(m["role"], m["content"]) for m in given[2:]] == [
        ("user", "Hello lab, привет"),
        ("assistant", echo("Hello lab, привет")),
        ("user", "Second turn: what did I say?"),
    ]
    assert "User asked: 'Second turn: what did I say?'" in given[0]["content"]
    assert second.form["message"] == turns[1], "this turn's message alone: the site has the rest"


async def test_each_conversation_has_a_session_of_its_own(mxchat):
    chat = MxChatChat(mxchat.url)
    assert await asyncio.gather(ask(chat, "one"), ask(chat, "two")) == [echo("one"), echo("two")]
    first, second = chat_posts(mxchat)
    assert first.form["session_id"] != second.form["session_id"]
    given = mxchat.chat_history[("model", second.form["session_id"], 1)]
    assert [m["content"] for m in given if m["role"] != "system"] == ["two"], "no other conversation's turns"


async def test_a_refused_nonce_is_refreshed_once_from_the_page(mxchat):
    chat = MxChatChat(mxchat.url)
    assert await ask(chat) == REPLY
    loads = mxchat.stats.page_loads
    mxchat.config.nonce_mode = "reject_once"  # as versions after 3.0.5 do: the chat checks the nonce
    assert await ask(chat) == REPLY
    posts = chat_posts(mxchat)
    assert len(posts) == 3 and posts[1].form["nonce"] != posts[2].form["nonce"] == mxchat.nonce
    assert mxchat.stats.page_loads == loads + 1, "3.0.5 has no nonce route: the page is read again"
    assert "/wp-json/mxchat/v1/nonce" not in [r.path for r in mxchat.log]


async def test_the_upstream_failure_is_a_site_error_streamed_or_not(mxchat):
    mxchat.config.failure = "upstream_error"
    for stream in (True, False):
        mxchat.config.stream = stream
        with pytest.raises(SiteError) as caught:
            await ask(MxChatChat(mxchat.url))
        assert "OpenAI API error: Lab forced upstream error" in str(caught.value)
        assert caught.value.kind == "openai_api_error"
    mxchat.config.failure = None
    assert await ask(MxChatChat(mxchat.url)) == REPLY, "the next chat works"


async def test_the_rate_limit_is_a_rate_limit_error(mxchat):
    mxchat.config.failure = "rate_limit"
    with pytest.raises(RateLimitError) as caught:
        await ask(MxChatChat(mxchat.url))
    assert "Rate limit exceeded. Please try again later." in str(caught.value)
    assert caught.value.http_status == 429
    assert len(chat_posts(mxchat)) == 1, "not retried"


async def test_a_session_the_site_gives_to_another_visitor_is_replaced(mxchat):
    chat = MxChatChat(mxchat.url)
    conv = chat.conversation()
    assert await conv.send(MESSAGE).collect() == REPLY
    [first] = chat_posts(mxchat)
    mxchat_app(mxchat).owners[first.form["session_id"]] = "198.51.100.7"  # another visitor's now
    assert await conv.send(MESSAGE).collect() == REPLY
    sessions = [r.form["session_id"] for r in chat_posts(mxchat)]
    assert sessions[0] == sessions[1] != sessions[2], "the refused session, then a new one"


async def test_two_chats_at_once_both_get_their_answers(mxchat):
    mxchat.config.chunk_delay = 0.02
    chat = MxChatChat(mxchat.url)
    first, second = await asyncio.gather(ask(chat, "один 🙂"), ask(chat, "два 🙂"))
    assert (first, second) == (echo("один 🙂"), echo("два 🙂"))
    assert mxchat.stats.streams_completed == 2 and mxchat.stats.peak_streams == 2


def test_command_line_chat_and_inspect(mxchat):
    found = chat_and_inspect(mxchat.url + "/", "mxchat", MESSAGE, REPLY)
    assert found["version"] == "3.0.5"
    assert "mxchat-chatbot-wrapper" in found["markers"]
    assert [(b["id"], b["plugin"]) for b in found["bots"]] == [("default", "mxchat")]
    values = found["bots"][0]["values"]
    assert values["nonce"] != mxchat.nonce and values["nonce"].endswith("(10 chars)"), "secrets are shortened"


def test_serve_answers_through_the_openai_sdk(mxchat):
    with serving(sites={"mx": mxchat.url + "/"}) as served:
        client = served.client()
        assert "mx" in {model.id for model in client.models.list()}
        reply = client.chat.completions.create(model="mx", messages=[{"role": "user", "content": MESSAGE}])
        assert reply.choices[0].message.content == REPLY
        chunks = client.chat.completions.create(
            model="mx", messages=[{"role": "user", "content": MESSAGE}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == REPLY
        mxchat.config.failure = "rate_limit"
        with pytest.raises(Exception) as caught:
            client.chat.completions.create(model="mx", messages=[{"role": "user", "content": MESSAGE}])
        assert getattr(caught.value, "status_code", None) == 429


async def test_a_cassette_round_trip(mxchat, tmp_path):
    recorded = await record_chat(MxChatChat(mxchat.url), MESSAGE, tmp_path / "flow")
    assert "".join(recorded.chunks) == REPLY
    cassette = Cassette.load(tmp_path / "flow")
    text = (tmp_path / "flow" / "exchanges.json").read_text("utf-8")
    assert mxchat.nonce not in text, "no live nonce in the cassette"
    [sent] = chat_posts(mxchat)
    assert sent.form["session_id"] not in text, "nor the session id"
    with ReplayServer(cassette, speed=0) as replay:
        chunks = [
            c async for c in MxChatChat(replay.url).create_async_generator("", [{"role": "user", "content": MESSAGE}])
        ]
    assert chunks == recorded.chunks
    assert replay.mismatches == [] and replay.unused == []


async def test_a_page_with_mxchat_and_another_plugin_offers_both():
    with ReplicaSite(("aiengine", "mxchat"), SiteConfig(chunk_delay=0)) as site:
        chat = WordPressChat(site.url + "/")
        bots = await chat.bots()
        assert sorted((b.plugin, b.id) for b in bots) == [("aiengine", "default"), ("mxchat", "default")]
        stream = chat.create_async_generator("", [{"role": "user", "content": MESSAGE}], bot="MxChat")
        assert "".join([piece async for piece in stream]) == REPLY
        assert [r.form["action"] for r in chat_posts(site)] == ["mxchat_stream_chat"]


# -- the replica's own page script, as a person uses it ----------------------------------------------


def last_reply(page: Page) -> Locator:
    return page.locator("#chat-box-default .bot-message").last


def test_a_person_chats_through_the_replica_page(page: Page, mxchat: ReplicaSite) -> None:
    page.goto(mxchat.url + "/")
    field = page.locator("#chat-input-default")
    field.fill(MESSAGE)
    field.press("Enter")
    expect(last_reply(page)).to_have_text(REPLY)
    page.locator("#chat-input-default").fill("ещё раз")
    page.locator("#send-button-default").click()
    expect(last_reply(page)).to_have_text(echo("ещё раз"))
    first, second = chat_posts(mxchat)
    cookie = next(c for c in page.context.cookies() if c["name"] == "mxchat_session_id_default")
    assert first.form["session_id"] == second.form["session_id"] == cookie["value"]
    assert list(first.form)[:3] == ["action", "message", "session_id"] and first.form["nonce"] == mxchat.nonce


def test_a_person_opens_the_floating_box_and_chats(page: Page, mxchat: ReplicaSite) -> None:
    mxchat.config.page = "widget"
    page.goto(mxchat.url + "/")
    box = page.locator("#floating-chatbot-default")
    expect(box).to_be_hidden()
    page.locator("#floating-chatbot-button-default").click()
    expect(box).to_be_visible()
    page.locator("#chat-input-default").fill(MESSAGE)
    page.locator("#send-button-default").click()
    expect(last_reply(page)).to_have_text(REPLY)
