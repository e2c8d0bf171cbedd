"""The one chat flow (bot choice, values, retry policy, errors), run by the direct HTTP client against
the replica sites over real HTTP on 127.0.0.1. No browser: this is the flow the browser runs too."""

from __future__ import annotations

import pytest

from scraper.client._direct import DirectChat
from scraper.errors import BotNotFoundError, HTTPError, NonceError, PageError, SiteError, StreamError
from scraper.plugins import Finish, TextDelta
from scraper.replica import ReplicaSite, SiteConfig
from tests._support import echo


def chat_requests(site: ReplicaSite) -> list:
    return [r for r in site.log if r.path.endswith(("admin-ajax.php", "/chats/submit"))]


@pytest.fixture(params=["aipower", "aiengine"])
def site(request: pytest.FixtureRequest):
    with ReplicaSite(request.param, SiteConfig(chunk_delay=0)) as site:
        yield site


async def test_exact_text_then_one_finish_and_a_warm_second_chat(site):
    async with DirectChat(site.url + "/") as chat:
        events = [event async for event in chat.events("Привет 🙂")]
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == echo("Привет 🙂")
        assert [type(e) for e in events].count(Finish) == 1 and isinstance(events[-1], Finish)
        assert await chat.collect("again") == echo("again")
    assert site.stats.page_loads == 1, "the page is read once"
    assert site.stats.session_starts == (1 if site.plugin == "aiengine" else 0)


async def test_a_rejected_nonce_is_refreshed_and_the_chat_sent_once_more(site):
    async with DirectChat(site.url + "/") as chat:
        assert await chat.collect("one") == echo("one")
        site.config.nonce_mode = "reject_once"
        assert await chat.collect("two") == echo("two")
    assert [r.status for r in chat_requests(site)] == [200, 403, 200]
    if site.plugin == "aipower":
        assert site.stats.page_loads == 2, "the fresh nonce comes from the page, fetched again"
    else:
        assert site.stats.session_starts == 2, "the fresh nonce comes from start_session"


async def test_a_nonce_rejected_twice_is_a_nonce_error_after_exactly_two_tries(site):
    site.config.nonce_mode = "always_reject"
    async with DirectChat(site.url + "/") as chat:
        with pytest.raises(NonceError, match="rejected a fresh nonce too"):
            await chat.collect("hi")
    assert len(chat_requests(site)) == 2


@pytest.mark.parametrize(
    "failure,error", [("cut_stream", StreamError), ("no_terminator", StreamError), ("http_500", HTTPError)]
)
async def test_broken_replies_raise_never_truncate(site, failure, error):
    site.config.failure = failure
    async with DirectChat(site.url + "/") as chat:
        with pytest.raises(error) as info:
            await chat.collect("hi")
    if error is StreamError:
        assert info.value.received.startswith("Echo"), "what arrived is kept on the error"


async def test_the_site_reporting_an_error_is_a_site_error():
    with ReplicaSite("aiengine", SiteConfig(chunk_delay=0, failure="upstream_error")) as site:
        async with DirectChat(site.url + "/") as chat:
            with pytest.raises(SiteError, match="Lab forced upstream error"):
                await chat.collect("hi")


async def test_ai_engine_new_token_is_used_for_the_next_chat():
    with ReplicaSite("aiengine", SiteConfig(chunk_delay=0)) as site:
        async with DirectChat(site.url + "/") as chat:
            await chat.collect("one")
            site.rotate_nonce()  # a new tick: the old nonce still works, and the answer hands over the new one
            await chat.collect("two")
            await chat.collect("three")
        nonces = [r.headers.get("x-wp-nonce") for r in chat_requests(site)]
        assert nonces[0] == nonces[1] != nonces[2] == site.nonce


async def test_no_chat_box_names_every_plugin_looked_for():
    with ReplicaSite("aipower", SiteConfig(page="no_chatbox")) as site:
        async with DirectChat(site.url + "/") as chat:
            with pytest.raises(PageError) as info:
                await chat.collect("hi")
    message = str(info.value)
    assert message.startswith(f"No chat box on {site.url}/") and "scraper inspect" in message
    for label in ("AI Power (.wpaicg-chat-shortcode", "AI Power (AIPKit) (.aipkit_chat_container", "AI Engine ("):
        assert label in message, "every plugin looked for, and what it looked for"


async def test_a_bot_that_is_not_on_the_page_is_named_with_those_that_are(site):
    async with DirectChat(site.url + "/", bot="no-such-bot") as chat:
        with pytest.raises(BotNotFoundError, match="no-such-bot") as info:
            await chat.collect("hi")
    assert f"({site.plugin})" in str(info.value), "the bots the page has are listed"


async def test_ai_engine_1x_posts_to_mwai_bot_and_renews_its_nonce_from_the_page():
    # AI Engine up to 1.6.75: the bot named by chatId, the nonce in the page, mwai-bot/v1/chat, one JSON answer.
    with ReplicaSite("aiengine", SiteConfig(chunk_delay=0, page="v1_endpoint")) as site:
        async with DirectChat(site.url + "/") as chat:
            assert await chat.collect("one") == echo("one")
            site.config.nonce_mode = "reject_once"
            assert await chat.collect("two") == echo("two")
        sent = [r for r in site.log if r.path == "/wp-json/mwai-bot/v1/chat"]
        assert [r.status for r in sent] == [200, 403, 200]
        body = sent[0].json
        assert body["chatId"] == "default" and body["newMessage"] == "one" and "botId" not in body
        assert {"id", "session", "clientId", "contextId", "messages"} <= set(body)
        assert sent[0].headers["x-wp-nonce"] != sent[2].headers["x-wp-nonce"] == site.nonce
        assert site.stats.session_starts == 0, "1.x has no start_session"
        assert site.stats.page_loads == 2, "the fresh nonce comes from the page, read again"
