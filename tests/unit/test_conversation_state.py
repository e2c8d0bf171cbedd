"""Conversations without a browser: the turns a history is, the context an unseen history becomes, the
store's bounds and what it keeps, and which site conversation a history leads to."""

from __future__ import annotations

import json

import pytest

from scraper import ConfigError
from scraper.cassettes._match import Received, differences
from scraper.client._conversation import ConversationBook, TurnPlan, carry_context, history_key, site_turns
from scraper.plugins import Bot, get_plugin
from scraper.state import MemoryStore, SQLiteStore, open_store

AIPKIT = Bot("4", "bot 4", "aipkit")
AIENGINE = Bot("default", "default", "aiengine")


def test_the_last_user_message_is_the_turn_and_a_system_message_goes_before_the_first_user_turn():
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "uno"},
        {"role": "developer", "content": "Be kind."},
        {"role": "user", "content": "two"},
    ]
    turns, message = site_turns(messages)
    assert message == "two"
    assert turns == [
        {"role": "user", "content": "Be brief.\n\nBe kind.\n\none"},
        {"role": "assistant", "content": "uno"},
    ]
    assert site_turns([{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}]) == ([], "S\n\nhi")
    with pytest.raises(ConfigError, match="last message must be the user's"):
        site_turns([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    with pytest.raises(ConfigError):
        site_turns([])


def test_an_unseen_history_is_carried_oldest_turns_dropped_first():
    turns = []
    for k in range(1, 11):
        turns += [
            {"role": "user", "content": f"q{k} " + "x" * 90},
            {"role": "assistant", "content": f"a{k} " + "y" * 90},
        ]
    text, kept = carry_context(turns, "now?", 1000)
    assert text.endswith("\n\nnow?") and len(text) + text.count("\n") <= 1000
    assert 0 < kept < len(turns) and "a10 " in text and "q1 " not in text
    lines = text.splitlines()[1:-2]
    assert [line.split(":")[0] for line in lines][-1] == "Assistant"
    assert carry_context(turns, "now?", 10) == ("now?", 0)
    assert carry_context([], "now?", 1000) == ("now?", 0)


def test_a_history_key_is_a_hash_of_the_turns_on_one_bot():
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    key = history_key(AIPKIT, "http://a/", turns)
    assert key == history_key(AIPKIT, "http://a/", [dict(t) for t in turns]) and key.startswith("h:")
    assert key != history_key(Bot("5", "bot 5", "aipkit"), "http://a/", turns)
    assert key != history_key(AIPKIT, "http://b/", turns)
    assert "hello" not in key


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_the_store_keeps_ids_and_hashes_not_text_unless_asked(kind, tmp_path):
    def store(**options):
        return SQLiteStore(tmp_path / "s.sqlite3", **options) if kind == "sqlite" else MemoryStore(**options)

    record = {"id": "c1", "site": "http://a/", "state": {"conversation_uuid": "u", "native": [1]}, "messages": ["t"]}
    plain = store()
    plain.save("c1", record)
    plain.link("h:1", "c1")
    assert plain.load("c1") == {"id": "c1", "site": "http://a/", "state": {"conversation_uuid": "u"}}
    assert plain.find("h:1") == "c1" and plain.find("h:2") is None and plain.last("http://a/") == "c1"
    if kind == "sqlite":
        assert b'"t"' not in (tmp_path / "s.sqlite3").read_bytes()
        assert SQLiteStore(tmp_path / "s.sqlite3").load("c1") is not None  # survives a new process
    keeping = store(keep_text=True)
    keeping.save("c2", {**record, "id": "c2"})
    assert keeping.load("c2")["messages"] == ["t"]


def test_the_store_is_bounded_by_count_and_age(tmp_path):
    few = SQLiteStore(tmp_path / "few.sqlite3", max_count=3, prune_every=1)
    for n in range(5):
        few.save(f"c{n}", {"id": f"c{n}", "site": "s"})
        few.link(f"h:{n}", f"c{n}")
    assert [few.load(f"c{n}") is not None for n in range(5)] == [False, False, True, True, True]
    assert few.find("h:0") is None and few.find("h:4") == "c4"
    expired = SQLiteStore(tmp_path / "old.sqlite3", max_age=0)
    expired.save("c", {"id": "c", "site": "s"})
    assert expired.load("c") is None
    assert isinstance(open_store("off"), MemoryStore)


def first_aipkit_turn(book: ConversationBook) -> tuple[TurnPlan, list[dict[str, str]]]:
    """An AIPKit conversation's first turn ("hi", answered "hello", the site's ids u1/s1) and its history."""
    first = book.plan(get_plugin("aipkit"), AIPKIT, "http://a/", {}, [{"role": "user", "content": "hi"}])
    first.record.state.update(conversation_uuid="u1", session_id="s1")
    book.answered(first, AIPKIT, "hello")
    return first, [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]


def test_a_history_leads_back_to_the_site_conversation_that_answered_it():
    book = ConversationBook(MemoryStore())
    plugin = get_plugin("aipkit")
    first, history = first_aipkit_turn(book)
    second = book.plan(plugin, AIPKIT, "http://a/", {}, [*history, {"role": "user", "content": "more"}])
    assert second.record is first.record and second.prompt == "more" and second.history == []
    assert second.carried is None and second.context_note is None

    edited = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "HELLO"}]
    unseen = book.plan(plugin, AIPKIT, "http://a/", {}, [*edited, {"role": "user", "content": "more"}])
    assert unseen.record is not first.record and unseen.carried == 2 and unseen.history == []
    assert unseen.prompt.endswith("\n\nmore") and "Assistant: HELLO" in unseen.prompt
    assert unseen.context_note and "2 earlier turns carried" in unseen.context_note

    engine = book.plan(get_plugin("aiengine"), AIENGINE, "http://a/", {}, [*edited, {"role": "user", "content": "x"}])
    assert engine.history == edited and engine.prompt == "x" and engine.carried is None


def test_a_form_field_holding_json_matches_but_for_its_volatile_members():
    volatile = get_plugin("aipower").volatile
    recorded = json.dumps([{"id": "", "text": "Human: hi"}, {"id": 1234, "text": "AI: hello"}])
    same = json.dumps([{"id": "", "text": "Human: hi"}, {"id": 9876, "text": "AI: hello"}])
    other = json.dumps([{"id": "", "text": "Human: hi"}, {"id": 9876, "text": "AI: bye"}])
    exchange = {"method": "POST", "path": "/a", "request": {"form": [["wpaicg_chat_history", recorded]]}}

    def got(value: str) -> Received:
        return Received("POST", "/a", {}, "form", [("wpaicg_chat_history", value)])

    assert differences(exchange, got(same), volatile) == []
    assert differences(exchange, got(other), volatile) != []


def test_a_conversation_whose_text_the_store_did_not_keep_is_refused_where_the_page_must_send_it(tmp_path):
    store = SQLiteStore(tmp_path / "s.sqlite3")
    book = ConversationBook(store)
    plugin = get_plugin("aiengine")
    first = book.plan(plugin, AIENGINE, "http://a/", {}, [{"role": "user", "content": "hi"}])
    book.answered(first, AIENGINE, "hello")
    later = ConversationBook(SQLiteStore(tmp_path / "s.sqlite3"))  # a restart: ids only
    record = later.get(first.record.id)
    assert record is not None and record.text_lost
    with pytest.raises(ConfigError, match="not kept here"):
        later.plan(plugin, AIENGINE, "http://a/", {}, [{"role": "user", "content": "more"}], record)
    whole = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "more"},
    ]
    assert later.plan(plugin, AIENGINE, "http://a/", {}, whole).record.id == first.record.id  # the whole history
    kit = later.plan(get_plugin("aipkit"), AIPKIT, "http://a/", {}, [{"role": "user", "content": "x"}])
    assert kit.carried is None
