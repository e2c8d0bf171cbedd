"""Both seed providers, end to end: real Chromium against the replica sites."""

from __future__ import annotations

import asyncio
import json

import pytest

from scraper import (
    AIEngineChat,
    AIPowerChat,
    Chatgpt4Online,
    ChatgptFree,
    MissingTokenError,
    NonceError,
    PageError,
    ScraperError,
    SiteError,
    StreamError,
)
from tests._support import echo, wait_for

HELLO = [{"role": "user", "content": "Привет, как дела?"}]
REPLY = echo("Привет, как дела?")


async def collect(stream) -> list[str]:
    return [chunk async for chunk in stream]


# -- the seed surface -------------------------------------------------------------------------------


async def test_chatgptfree_streams_exact_text(aipower):
    chunks = await collect(ChatgptFree.create_async_generator(model="gpt-4o-mini", messages=HELLO))
    assert "".join(chunks) == REPLY
    assert len(chunks) > 3, "the reply should arrive in pieces, not at once"
    [chat] = [r for r in aipower.log if r.path.endswith("admin-ajax.php")]
    form = chat.form
    assert form["_wpnonce"] == aipower.nonce
    assert form["post_id"] == "4"
    assert form["action"] == "wpaicg_chat_shortcode_message"
    assert form["message"] == "Привет, как дела?"
    assert form["bot_id"] == "0" and form["chatbot_identity"] == "shortcode"
    assert len(form["wpaicg_chat_client_id"]) == 10 and form["chat_id"].isdigit()
    assert json.loads(form["wpaicg_chat_history"]) == []
    assert form["url"].startswith(aipower.url)
    assert ChatgptFree._post_id == "4" and ChatgptFree._nonce == aipower.nonce


async def test_chatgpt4online_streams_exact_text_with_session_cookie(aiengine):
    chunks = await collect(Chatgpt4Online.create_async_generator(model="gpt-4", messages=HELLO))
    assert "".join(chunks) == REPLY
    assert len(chunks) > 3
    paths = [r.path for r in aiengine.log]
    assert "/wp-json/mwai/v1/start_session" in paths
    [submit] = [r for r in aiengine.log if r.path.endswith("/chats/submit")]
    assert submit.headers["x-wp-nonce"] == aiengine.nonce
    assert "mwai_session_id=" in submit.headers.get("cookie", ""), "the HttpOnly session cookie must travel"
    body = submit.json
    assert body["newMessage"] == "Привет, как дела?" and body["stream"] is True
    assert body["botId"] == "default" and body["contextId"] == 4
    assert body["messages"][0]["role"] == "assistant"


async def test_seed_example_await_then_iterate(aiengine):
    generator = await Chatgpt4Online.create_async_generator(model="gpt-4", messages=HELLO)
    assert "".join([c async for c in generator]) == REPLY


async def test_several_messages_are_a_conversation_sent_as_the_plugin_carries_it(aipower):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Ещё?"},
    ]
    await collect(ChatgptFree.create_async_generator("", messages))
    [chat] = [r for r in aipower.log if r.path.endswith("admin-ajax.php")]
    assert chat.form["message"] == "Ещё?"  # this turn alone; the earlier ones as the page script keeps them
    history = json.loads(chat.form["wpaicg_chat_history"])
    assert [h["text"] for h in history] == ["Human: Be brief.\n\nHi", "AI: Hello!"]
    assert aipower.stats.streams_completed == 1 and len(aipower.stats.model_inputs[-1]) == 4


async def test_generic_instance_and_subclass_target_any_site(aipower, aiengine, monkeypatch):
    monkeypatch.delenv("SCRAPER_CHATGPTFREE_URL")
    assert "".join(await collect(AIPowerChat(aipower.url).create_async_generator("", HELLO))) == REPLY
    assert "".join(await collect(AIEngineChat(aiengine.url + "/").create_async_generator("", HELLO))) == REPLY

    class Mirror(ChatgptFree):
        url = aipower.url

    assert Mirror.page_url() == aipower.url + "/chat/"
    assert "".join(await collect(Mirror.create_async_generator("gpt-4o-mini", HELLO))) == REPLY


async def test_chunks_arrive_while_the_server_is_still_streaming(aipower):
    aipower.config.chunk_delay = 0.15
    stream = ChatgptFree.create_async_generator("", HELLO)
    first = await stream.__anext__()
    assert first
    assert aipower.stats.active_streams == 1, "the first chunk must reach Python before the reply ends"
    rest = await collect(stream)
    assert first + "".join(rest) == REPLY


async def test_second_chat_reuses_the_loaded_page(aipower):
    await collect(ChatgptFree.create_async_generator("", HELLO))
    await collect(ChatgptFree.create_async_generator("", [{"role": "user", "content": "again"}]))
    assert aipower.stats.page_loads == 1


# -- values read from the page ----------------------------------------------------------------------


async def test_aipower_widget_and_odd_post_id(aipower):
    aipower.config.page = "widget"
    assert "".join(await collect(ChatgptFree.create_async_generator("", HELLO))) == REPLY
    [chat] = [r for r in aipower.log if r.path.endswith("admin-ajax.php")]
    assert chat.form["action"] == "wpaicg_chatbox_message" and chat.form["chatbot_identity"] == "widget"


async def test_aipower_post_id_with_a_stray_character(aipower):
    aipower.config.page = "lt_post_id"
    assert "".join(await collect(ChatgptFree.create_async_generator("", HELLO))) == REPLY
    [chat] = [r for r in aipower.log if r.path.endswith("admin-ajax.php")]
    assert chat.form["post_id"] == "4"


@pytest.mark.parametrize("page", ["no_nonce", "no_post_id"])
async def test_aipower_missing_token_is_a_runtime_error(aipower, page):
    aipower.config.page = page
    with pytest.raises(MissingTokenError) as info:
        await collect(ChatgptFree.create_async_generator("", HELLO))
    assert isinstance(info.value, RuntimeError)
    assert ("nonce" if page == "no_nonce" else "post id") in str(info.value)
    assert not [r for r in aipower.log if r.path.endswith("admin-ajax.php")], "no chat request without values"


@pytest.mark.parametrize("provider", [ChatgptFree, Chatgpt4Online])
async def test_page_without_a_chat_box(aipower, aiengine, provider):
    for site in (aipower, aiengine):
        site.config.page = "no_chatbox"
    with pytest.raises(PageError, match=r"No chat box on .*looked for AI"):
        await collect(provider.create_async_generator("", HELLO))


async def test_aiengine_reads_served_html_after_the_script_removed_the_attributes(aiengine):
    session = await Chatgpt4Online.session()
    runtime_attrs = await session.runtime.call(
        session.page.evaluate("() => document.querySelector('.mwai-chatbot-container').hasAttribute('data-system')")
    )
    assert runtime_attrs is False, "the replica's script removes data-system like the real plugin"
    assert "".join(await collect(Chatgpt4Online.create_async_generator("", HELLO))) == REPLY


async def test_aiengine_nonce_in_page_skips_start_session(aiengine):
    aiengine.config.page = "nonce_in_page"
    assert "".join(await collect(Chatgpt4Online.create_async_generator("", HELLO))) == REPLY
    assert "/wp-json/mwai/v1/start_session" not in [r.path for r in aiengine.log]
    assert await Chatgpt4Online.get_nonce({}) == aiengine.nonce


async def test_aiengine_no_nonce_anywhere(aiengine):
    aiengine.config.page = "no_nonce"
    with pytest.raises(MissingTokenError, match="nonce"):
        await collect(Chatgpt4Online.create_async_generator("", HELLO))


async def test_aiengine_malformed_data_system(aiengine):
    aiengine.config.page = "malformed"
    with pytest.raises(PageError, match="not valid JSON"):
        await collect(Chatgpt4Online.create_async_generator("", HELLO))


# -- nonces: refresh once, never duplicate text --------------------------------------------------------


async def test_aipower_expired_nonce_reloads_page_and_retries_once(aipower):
    await collect(ChatgptFree.create_async_generator("", HELLO))
    aipower.config.nonce_mode = "reject_once"
    text = "".join(await collect(ChatgptFree.create_async_generator("", HELLO)))
    assert text == REPLY, "retried exactly once, nothing yielded twice"
    chats = [r for r in aipower.log if r.path.endswith("admin-ajax.php")]
    assert [r.status for r in chats] == [200, 403, 200]
    assert chats[1].form["_wpnonce"] != chats[2].form["_wpnonce"] == aipower.nonce
    assert aipower.stats.page_loads == 2


async def test_aiengine_rejected_nonce_gets_a_new_session_and_retries_once(aiengine):
    await collect(Chatgpt4Online.create_async_generator("", HELLO))
    aiengine.config.nonce_mode = "reject_once"
    assert "".join(await collect(Chatgpt4Online.create_async_generator("", HELLO))) == REPLY
    submits = [r for r in aiengine.log if r.path.endswith("/chats/submit")]
    assert [r.status for r in submits] == [200, 403, 200]
    assert [r.path for r in aiengine.log].count("/wp-json/mwai/v1/start_session") == 2


@pytest.mark.parametrize("provider", [ChatgptFree, Chatgpt4Online])
async def test_nonce_rejected_twice_is_a_nonce_error(aipower, aiengine, provider):
    for site in (aipower, aiengine):
        site.config.nonce_mode = "always_reject"
    with pytest.raises(NonceError) as info:
        await collect(provider.create_async_generator("", HELLO))
    assert info.value.status == 403


async def test_aiengine_new_token_from_an_old_nonce_is_used_next(aiengine):
    await collect(Chatgpt4Online.create_async_generator("", HELLO))
    old = aiengine.nonce
    aiengine.rotate_nonce()
    assert "".join(await collect(Chatgpt4Online.create_async_generator("", HELLO))) == REPLY
    assert "".join(await collect(Chatgpt4Online.create_async_generator("", HELLO))) == REPLY
    submits = [r.headers["x-wp-nonce"] for r in aiengine.log if r.path.endswith("/chats/submit")]
    assert submits == [old, old, aiengine.nonce]


# -- what the streams mean -------------------------------------------------------------------------------


@pytest.mark.parametrize("provider,site", [(ChatgptFree, "aipower"), (Chatgpt4Online, "aiengine")])
async def test_non_streaming_reply(provider, site, request):
    replica = request.getfixturevalue(site)
    replica.config.stream = False
    assert "".join(await collect(provider.create_async_generator("", HELLO))) == REPLY


@pytest.mark.parametrize(
    "failure,kind",
    [
        ("token_limit", "token_limit"),
        ("flagged", "flagged"),
        ("ip_banned", "ip_banned"),
        ("pinecone_error", "pinecone_error"),
        ("limited", "limited"),
        ("error_object", "upstream_error"),
    ],
)
async def test_aipower_error_events_raise_site_error(aipower, failure, kind):
    aipower.config.failure = failure
    with pytest.raises(SiteError) as info:
        await collect(ChatgptFree.create_async_generator("", HELLO))
    assert info.value.kind == kind


async def test_aipower_upstream_failure_while_streaming_is_the_reply_the_site_shows(aipower):
    aipower.config.failure = "upstream_error"
    text = "".join(await collect(ChatgptFree.create_async_generator("", HELLO)))
    assert text == "Lab forced upstream error", "a finish_reason chunk ends the reply; the repeat is not read"


async def test_aipower_upstream_failure_non_streaming(aipower):
    aipower.config.failure = "upstream_error"
    aipower.config.stream = False
    with pytest.raises(SiteError, match="Lab forced upstream error"):
        await collect(ChatgptFree.create_async_generator("", HELLO))


async def test_aipower_empty_message_is_reported(aipower):
    with pytest.raises(SiteError, match="nothing was inputted"):
        await collect(ChatgptFree.create_async_generator("", [{"role": "user", "content": ""}]))


@pytest.mark.parametrize("stream", [True, False])
async def test_aiengine_upstream_error(aiengine, stream):
    aiengine.config.failure = "upstream_error"
    aiengine.config.stream = stream
    with pytest.raises(SiteError, match="Lab forced upstream error"):
        await collect(Chatgpt4Online.create_async_generator("", HELLO))


async def test_aiengine_rejected_query(aiengine):
    aiengine.config.failure = "rejected"
    with pytest.raises(SiteError, match="rejected") as info:
        await collect(Chatgpt4Online.create_async_generator("", HELLO))
    assert info.value.status == 403


async def test_aiengine_skips_non_content_live_events(aiengine):
    aiengine.config.live_subtypes = True
    chunks = await collect(Chatgpt4Online.create_async_generator("", HELLO))
    assert "".join(chunks) == REPLY


async def test_aiengine_end_event_fills_in_what_live_events_missed(aiengine):
    aiengine.config.drop_live_tail = 3
    chunks = await collect(Chatgpt4Online.create_async_generator("", HELLO))
    assert "".join(chunks) == REPLY, "the missing tail comes from end.reply, nothing twice"


@pytest.mark.parametrize("provider,site", [(ChatgptFree, "aipower"), (Chatgpt4Online, "aiengine")])
@pytest.mark.parametrize("failure", ["cut_stream", "no_terminator"])
async def test_cut_or_unterminated_stream_raises(provider, site, failure, request):
    replica = request.getfixturevalue(site)
    replica.config.failure = failure
    received: list[str] = []
    with pytest.raises(StreamError) as info:
        async for chunk in provider.create_async_generator("", HELLO):
            received.append(chunk)
    assert info.value.received == "".join(received)
    assert "".join(received) != REPLY or failure == "no_terminator"


@pytest.mark.parametrize("provider,site", [(ChatgptFree, "aipower"), (Chatgpt4Online, "aiengine")])
async def test_http_500_is_an_http_error(provider, site, request):
    replica = request.getfixturevalue(site)
    replica.config.failure = "http_500"
    with pytest.raises(ScraperError) as info:
        await collect(provider.create_async_generator("", HELLO))
    assert getattr(info.value, "status", None) == 500
    assert "critical error" in info.value.body, "what the site said stays on the error"
    assert "critical error" not in str(info.value), "the message never quotes the site's body"


# -- cancellation and concurrency -------------------------------------------------------------------------


@pytest.mark.parametrize("provider,site", [(ChatgptFree, "aipower"), (Chatgpt4Online, "aiengine")])
async def test_closing_the_stream_aborts_the_fetch(provider, site, request):
    replica = request.getfixturevalue(site)
    replica.config.chunk_delay = 0.2
    stream = provider.create_async_generator("", HELLO)
    assert await stream.__anext__()
    await stream.aclose()
    assert await wait_for(lambda: replica.stats.streams_aborted == 1), replica.stats
    assert replica.stats.active_streams == 0
    assert replica.stats.streams_completed == 0


async def test_cancelling_the_task_aborts_the_fetch(aipower):
    aipower.config.chunk_delay = 0.2
    got_one = asyncio.Event()

    async def consume() -> None:
        async for _ in ChatgptFree.create_async_generator("", HELLO):
            got_one.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_one.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_for(lambda: aipower.stats.streams_aborted == 1), aipower.stats
    assert aipower.stats.active_streams == 0


async def test_six_chats_at_once_keep_their_streams_apart(aipower, aiengine):
    aipower.config.chunk_delay = aiengine.config.chunk_delay = 0.02

    async def ask(provider, n: int) -> tuple[int, str]:
        messages = [{"role": "user", "content": f"вопрос {n}"}]
        return n, "".join(await collect(provider.create_async_generator("", messages)))

    jobs = [ask(ChatgptFree if n % 2 else Chatgpt4Online, n) for n in range(6)]
    for n, text in await asyncio.gather(*jobs):
        assert text == echo(f"вопрос {n}")
    assert aipower.stats.streams_completed == 3 and aiengine.stats.streams_completed == 3
