"""Conversations in real Chromium against the replica sites: six turns per plugin through the Python API,
``Client``, ``scraper serve`` with OpenAI's SDK (chat completions and responses) and LangChain; each turn's
reply exact, and the model given the earlier turns natively (2k+1 messages on AI Engine: its instructions,
its start sentence, the turns; 2k on AI Power and AIPKit: the bot's prompt and the turns; 2k+1 on MxChat:
its two system messages and the turns).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_openai import ChatOpenAI

from scraper import AIEngineChat, AIPowerChat, Client, InputTooLongError, MxChatChat, WordPressChat
from scraper.cassettes import Cassette, ReplayServer, record_chat
from scraper.cassettes.pytest_plugin import run_in_own_loop
from scraper.replica import ReplicaSite
from tests._support import echo
from tests.e2e.test_serve import Served, chat_via, serving

PLUGINS = ("aiengine", "aipower", "aipkit", "mxchat")
TURNS = 6


def given(plugin: str, k: int) -> int:
    """How many messages the real plugin gives its model on turn ``k`` of a conversation (AI Power keeps
    the last 10 earlier messages, AI Engine the last 15 with its start sentence; MxChat gives two system
    messages and every turn of the session)."""
    if plugin == "aiengine":
        return min(2 * k + 1, 1 + 15 + 1)
    if plugin == "mxchat":
        return 2 * k + 1
    return min(2 * k, 1 + 10 + 1) if plugin == "aipower" else 2 * k


def roles(site: ReplicaSite, index: int = -1) -> list[str]:
    return [m["role"] for m in site.stats.model_inputs[index]]


@pytest.fixture(params=PLUGINS)
def site(request: pytest.FixtureRequest) -> Iterator[ReplicaSite]:
    with ReplicaSite(request.param) as replica:
        replica.config.chunk_delay = 0.002
        yield replica


def check_turn(site: ReplicaSite, k: int, message: str, text: str, *, first: int = 0) -> None:
    """Turn ``k`` (counted from the conversation's start): the exact reply, the model given 2k(+1) messages
    ending with this message, the earlier ones being the conversation's own."""
    plugin = site.plugin
    assert text == echo(message)
    inputs = site.stats.model_inputs
    assert len(inputs) == first + k
    assert len(inputs[-1]) == given(plugin, k), (plugin, k, roles(site))
    assert inputs[-1][0]["role"] == "system" and inputs[-1][-1] == {"role": "user", "content": message}
    turns = inputs[-1][2:-1] if plugin in ("aiengine", "mxchat") else inputs[-1][1:-1]
    assert [t["role"] for t in turns] == ["user", "assistant"] * (len(turns) // 2)


def request_log(site: ReplicaSite) -> list[dict[str, Any]]:
    """The chat requests the site received (the message-carrying ones)."""
    records = [record.to_dict() for record in site.log]
    if site.plugin == "aipkit":
        return [r for r in records if r["query"].get("action") == "aipkit_frontend_chat_stream"]
    if site.plugin == "aiengine":
        return [r for r in records if r["path"].endswith("/chats/submit")]
    if site.plugin == "mxchat":
        return [r for r in records if (r.get("form") or {}).get("action") == "mxchat_stream_chat"]
    return [r for r in records if (r.get("form") or {}).get("action") == "wpaicg_chat_shortcode_message"]


def check_native(site: ReplicaSite, conversation: list[dict[str, str]]) -> None:
    """What the page script would have sent on the last turn, for the history ``conversation`` (the earlier
    turns, then this one)."""
    last = request_log(site)[-1]
    earlier = conversation[:-1]
    if site.plugin == "aiengine":
        body = last["json"]
        assert body["newMessage"] == conversation[-1]["content"]
        sent = body["messages"]
        assert sent[0]["key"].startswith("start-") and sent[0]["content"] == "Hi! How can I help you?"
        assert [(m["role"], m["content"]) for m in sent[1:]] == [(m["role"], m["content"]) for m in earlier]
        for m in sent[1:]:
            assert set(m) >= {"id", "role", "content", "who", "timestamp"}
            assert m["who"] == ("User: " if m["role"] == "user" else "AI: ")
        assert len({r["json"]["chatId"] for r in request_log(site)}) == 1  # one chatId all along
    elif site.plugin == "aipower":
        history = json.loads(last["form"]["wpaicg_chat_history"])
        texts = [("Human: " if m["role"] == "user" else "AI: ") + m["content"] for m in earlier]
        assert [h["text"] for h in history] == texts
        assert all(h["id"] == "" for h in history[::2]) and all(isinstance(h["id"], int) for h in history[1::2])
        assert last["form"]["message"] == conversation[-1]["content"]
    elif site.plugin == "mxchat":
        assert last["form"]["message"] == conversation[-1]["content"]  # this turn alone: the site has the rest
        assert len({r["form"]["session_id"] for r in request_log(site)}) == 1  # one session all along
    else:
        ids = {(r["query"]["session_id"], r["query"]["conversation_uuid"]) for r in request_log(site)}
        assert len(ids) == 1  # one site conversation all along


# -- the Python API ---------------------------------------------------------------------------------------


async def test_six_turns_stateless_then_stateful_then_resumed(site):
    chat = WordPressChat(site.url)
    messages: list[dict[str, str]] = []
    for k in range(1, TURNS + 1):
        message = f"turn {k} of {site.plugin}"
        messages.append({"role": "user", "content": message})
        text = await chat.create_async_generator("default", messages).collect()
        check_turn(site, k, message, text)
        check_native(site, messages)
        messages.append({"role": "assistant", "content": text})

    site.reset()
    conv = chat.conversation()
    for k in range(1, TURNS + 1):
        message = f"stateful {k}"
        text = await conv.send(message).collect()
        check_turn(site, k, message, text)
        assert conv.messages[-2:] == [{"role": "user", "content": message}, {"role": "assistant", "content": text}]
        check_native(site, [*conv.messages[:-1]])
    assert len(conv.messages) == 2 * TURNS

    again = chat.conversation(id=conv.id)
    assert again.id == conv.id and again.messages == conv.messages
    text = await again.send("once more").collect()
    check_turn(site, TURNS + 1, "once more", text)


async def test_a_system_message_goes_before_the_first_user_turn(site):
    chat = WordPressChat(site.url)
    system = {"role": "system", "content": "Answer briefly."}
    first = await chat.create_async_generator("default", [system, {"role": "user", "content": "hi"}]).collect()
    # one message: the system text, then the user's (as the site keeps it: AI Power makes its line breaks
    # spaces, and a form sent as multipart carries them as CRLF)
    sent = site.stats.model_inputs[0][-1]["content"]
    assert (
        sent.startswith("Answer briefly.")
        and sent.endswith("hi")
        and len(site.stats.model_inputs[0]) == given(site.plugin, 1)
    )
    assert first == echo(sent)
    history = [system, {"role": "user", "content": "hi"}, {"role": "assistant", "content": first}]
    second = await chat.create_async_generator("default", [*history, {"role": "user", "content": "next"}]).collect()
    assert second == echo("next")
    given_messages = site.stats.model_inputs[-1]
    assert given_messages[-3]["role"] == "user" and given_messages[-3]["content"].startswith("Answer briefly.")
    assert not any("System:" in m["content"] for m in given_messages)
    assert len(given_messages) == given(site.plugin, 2)


# -- Client, serve, LangChain -----------------------------------------------------------------------------


def test_six_turns_through_client(site):
    client = Client(sites={"blog": site.url})
    messages: list[dict[str, str]] = []
    for k in range(1, TURNS + 1):
        message = f"client turn {k}"
        messages.append({"role": "user", "content": message})
        stream = k % 2 == 0
        if stream:
            with client.chat.completions.create(model="blog", messages=messages, stream=True) as chunks:
                text = "".join(c.choices[0].delta.content or "" for c in chunks)
        else:
            text = client.chat.completions.create(model="blog", messages=messages).choices[0].message.content
        check_turn(site, k, message, text)
        messages.append({"role": "assistant", "content": text})


@pytest.fixture
def served(site: ReplicaSite, tmp_path: Any) -> Iterator[Served]:
    with serving(sites={"blog": site.url}, conversations=str(tmp_path / "store.sqlite3")) as server:
        yield server


def test_six_turns_through_serve_with_the_openai_sdk(site, served):
    client = served.client()
    messages: list[dict[str, Any]] = []
    for k in range(1, TURNS + 1):
        message = f"sdk turn {k}"
        messages.append({"role": "user", "content": message})
        if k % 2:
            text = client.chat.completions.create(model="blog", messages=messages).choices[0].message.content
        else:
            chunks = client.chat.completions.create(model="blog", messages=messages, stream=True)
            text = "".join(c.choices[0].delta.content or "" for c in chunks)
        check_turn(site, k, message, text)
        messages.append({"role": "assistant", "content": text})
    check_native(site, messages[:-1])


def test_six_turns_through_responses_with_previous_response_id(site, served):
    client = served.client()
    previous = None
    for k in range(1, TURNS + 1):
        message = f"responses turn {k}"
        if k % 2:
            response = client.responses.create(model="blog", input=message, previous_response_id=previous)
            text = response.output_text
            previous = response.id
        else:
            with client.responses.stream(model="blog", input=message, previous_response_id=previous) as events:
                kinds = [event.type for event in events]
                final = events.get_final_response()
            assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
            assert "response.output_text.delta" in kinds
            text = final.output_text
            previous = final.id
        check_turn(site, k, message, text)


def test_langchain_keeps_the_conversation_through_serve(site, served):
    model = ChatOpenAI(base_url=f"{served.url}/v1", api_key="unused", model="blog", max_retries=0)
    history: list[BaseMessage] = []  # LangChain's own way: the caller keeps the messages, each call sends them all
    for k in range(1, TURNS + 1):
        message = f"langchain turn {k}"
        history.append(HumanMessage(message))
        reply = model.invoke(history)
        history.append(reply)
        check_turn(site, k, message, str(reply.content))
    assert len(history) == 2 * TURNS


# -- limits, unseen history, restarts, two at once ---------------------------------------------------------


def test_a_message_over_the_pages_limit_is_refused_before_anything_is_sent(tmp_path):
    with ReplicaSite("aiengine") as site:
        chat = WordPressChat(site.url)
        with pytest.raises(InputTooLongError) as caught:
            run_in_own_loop(chat.create_async_generator("default", [{"role": "user", "content": "x" * 513}]).collect())
        assert caught.value.limit == 512 and "512" in str(caught.value)
        assert site.stats.chat_requests == 0
        with serving(sites={"blog": site.url}, conversations="off") as server:
            with pytest.raises(openai.BadRequestError) as refused:
                server.client().chat.completions.create(model="blog", messages=[{"role": "user", "content": "x" * 513}])
            assert refused.value.status_code == 400 and refused.value.code == "context_length_exceeded"
            assert site.stats.chat_requests == 0
            long_history = [{"role": "user", "content": "y" * 500}, {"role": "assistant", "content": "z" * 900}] * 5
            text = server.client().chat.completions.create(
                model="blog", messages=[*long_history, {"role": "user", "content": "short"}]
            )
            assert text.choices[0].message.content == echo("short")  # history never makes a turn too long
            assert len(site.stats.model_inputs[-1]) == 1 + 1 + 10 + 1


def test_an_unseen_aipkit_history_is_trimmed_into_a_new_conversation(tmp_path):
    with ReplicaSite("aipkit") as site, serving(sites={"blog": site.url}, conversations="off") as server:
        history = []
        for k in range(1, 13):
            history += [
                {"role": "user", "content": f"old question {k} " + "q" * 300},
                {"role": "assistant", "content": f"old answer {k} " + "a" * 300},
            ]
        body = {"model": "blog", "messages": [*history, {"role": "user", "content": "and now?"}]}
        response = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=120)
        assert response.status_code == 200
        text = response.json()["choices"][0]["message"]["content"]
        sent = site.stats.model_inputs[-1]
        carried = sent[-1]["content"]  # its line breaks arrive as CRLF (the page's FormData is multipart)
        assert len(sent) == 2 and carried.endswith("\r\n\r\nand now?")
        assert text == echo(carried)
        assert "old answer 12" in carried and "old question 1 " not in carried and len(carried) <= 4000
        note = response.headers["x-scraper-context"]
        assert note.startswith("new site conversation") and "dropped" in note

        follow = {"role": "user", "content": "and then?"}
        answer = {"role": "assistant", "content": text}
        again = server.client().chat.completions.create(
            model="blog", messages=[*history, body["messages"][-1], answer, follow]
        )
        assert again.choices[0].message.content == echo("and then?")
        assert len(site.stats.model_inputs[-1]) == 4  # the site's own conversation goes on


def test_a_restarted_server_continues_an_aipkit_conversation_from_its_store(tmp_path):
    store = str(tmp_path / "store.sqlite3")
    with ReplicaSite("aipkit") as site:
        messages: list[dict[str, str]] = []
        with serving(sites={"blog": site.url}, conversations=store) as server:
            for k in range(1, 4):
                messages.append({"role": "user", "content": f"before {k}"})
                text = (
                    server.client().chat.completions.create(model="blog", messages=messages).choices[0].message.content
                )
                check_turn(site, k, f"before {k}", text)
                messages.append({"role": "assistant", "content": text})
        with serving(sites={"blog": site.url}, conversations=store) as server:
            for k in range(4, 7):
                messages.append({"role": "user", "content": f"after {k}"})
                text = (
                    server.client().chat.completions.create(model="blog", messages=messages).choices[0].message.content
                )
                check_turn(site, k, f"after {k}", text)
                messages.append({"role": "assistant", "content": text})
        check_native(site, messages[:-1])


async def test_two_conversations_at_once_on_one_site_stay_apart(site):
    chat = WordPressChat(site.url)
    one, two = chat.conversation(), chat.conversation()
    for k in range(1, 4):
        texts = await asyncio.gather(one.send(f"one {k}").collect(), two.send(f"two {k}").collect())
        assert texts == [echo(f"one {k}"), echo(f"two {k}")]
    for conv, name in ((one, "one"), (two, "two")):
        assert [m["content"] for m in conv.messages[::2]] == [f"{name} {k}" for k in range(1, 4)]
    for given_messages in site.stats.model_inputs:
        users = {m["content"].split()[0] for m in given_messages if m["role"] == "user"}
        assert len(users) == 1  # never one conversation's turn in the other's history
    assert sorted(len(m) for m in site.stats.model_inputs) == sorted([given(site.plugin, k) for k in (1, 2, 3)] * 2)


# -- the command line -------------------------------------------------------------------------------------


def test_scraper_chat_continue_goes_on_with_the_last_conversation(site, served, tmp_path, shared_browser):
    # Each command is a process of its own; its browser is the shared browser server's.
    env = {"SCRAPER_CONVERSATIONS": str(tmp_path / "cli.sqlite3"), "SCRAPER_WS_ENDPOINT": shared_browser}
    for k, continued in ((1, False), (2, True), (3, True)):
        flags = ["--continue"] if continued else []
        local = chat_via("off", "--url", site.url, *flags, f"cli {k}", env=env)
        assert (local.returncode, local.stdout) == (0, echo(f"cli {k}") + "\n"), local.stderr
        check_turn(site, k, f"cli {k}", echo(f"cli {k}"))
    fresh = chat_via("off", "--url", site.url, "cli anew", env=env)
    assert fresh.returncode == 0 and len(site.stats.model_inputs[-1]) == given(site.plugin, 1)

    site.reset()
    for k, continued in ((1, False), (2, True), (3, True)):
        flags = ["--continue"] if continued else []
        through = chat_via(served.url, "--url", site.url, *flags, f"served {k}")
        assert (through.returncode, through.stdout) == (0, echo(f"served {k}") + "\n"), through.stderr
        assert "through the scraper server" in through.stderr
        check_turn(site, k, f"served {k}", echo(f"served {k}"))


# -- cassettes --------------------------------------------------------------------------------------------


async def test_a_recorded_conversation_replays_turn_by_turn(site, tmp_path):
    chats = {"aipower": AIPowerChat, "aiengine": AIEngineChat, "aipkit": WordPressChat, "mxchat": MxChatChat}
    messages = ["first turn", "second turn", "third turn"]
    recorded = await record_chat(chats[site.plugin](site.url), messages, tmp_path / "talk")
    assert recorded.turns is not None and ["".join(turn) for turn in recorded.turns] == [echo(m) for m in messages]
    assert [len(m) for m in site.stats.model_inputs] == [given(site.plugin, k) for k in (1, 2, 3)]
    cassette = Cassette.load(tmp_path / "talk")
    with ReplayServer(cassette, speed=0) as replay:
        conv = chats[site.plugin](replay.url).conversation()
        for message, turn in zip(messages, recorded.turns, strict=True):
            assert [chunk async for chunk in conv.send(message)] == turn
        assert replay.mismatches == [] and replay.unused == []


async def test_one_conversations_turns_run_one_at_a_time(site):
    conv = WordPressChat(site.url).conversation()
    texts = await asyncio.gather(*(conv.send(f"turn {k}").collect() for k in (1, 2, 3)))
    assert texts == [echo(f"turn {k}") for k in (1, 2, 3)]
    assert [len(m) for m in site.stats.model_inputs] == [given(site.plugin, k) for k in (1, 2, 3)]
    assert sorted(m["content"] for m in conv.messages[::2]) == ["turn 1", "turn 2", "turn 3"]
