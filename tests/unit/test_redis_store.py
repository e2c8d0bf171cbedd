"""The shared store against a real redis-server (no browser): what a record keeps, its bounds, two books
on one Redis continuing each other's conversations, profiles, and a Redis that is down (a typed error at
once, the password never shown) and back."""

from __future__ import annotations

import logging
import signal

import pytest

from scraper import ConfigError, StateUnavailableError
from scraper.client._conversation import ConversationBook
from scraper.plugins import get_plugin
from scraper.serve import ServeConfig
from scraper.state import RedisStore, open_store
from tests._support import RedisServer, free_port
from tests.unit.test_conversation_state import AIENGINE, AIPKIT, first_aipkit_turn


def test_a_record_is_kept_whole_and_found_by_its_links(redis_server: RedisServer):
    store = open_store(redis_server.url)
    assert isinstance(store, RedisStore)
    record = {"id": "c1", "site": "http://a/", "state": {"chat_id": "x", "native": [1]}, "messages": [{"t": 1}]}
    store.save("c1", record)
    store.link("h:1", "c1")
    other = RedisStore(redis_server.url)  # another process's client
    assert other.load("c1") == record, "the site's ids and the history travel to the other server"
    assert other.find("h:1") == "c1" and other.find("h:2") is None
    assert other.last("http://a/") == "c1" and other.last("http://b/") is None
    assert other.load("nope") is None
    slim = RedisStore(redis_server.url, keep_text=False)
    slim.save("c2", {**record, "id": "c2"})
    assert slim.load("c2") == {"id": "c2", "site": "http://a/", "state": {"chat_id": "x"}}
    for each in (store, other, slim):
        each.close()


def test_the_store_is_bounded_by_count_and_age(redis_server: RedisServer):
    few = RedisStore(redis_server.url, max_count=3)
    for n in range(5):
        few.save(f"c{n}", {"id": f"c{n}", "site": "s"})
        few.link(f"h:{n}", f"c{n}")
    assert [few.load(f"c{n}") is not None for n in range(5)] == [False, False, True, True, True]
    assert few.find("h:0") is None and few.find("h:4") == "c4"
    ttl = few._redis.ttl("scraper:conv:c4")
    assert 0 < ttl <= few.max_age, "a record expires with its age"
    brief = RedisStore(redis_server.url, max_age=60)  # the life is its age: not a day, not the store's default
    brief.save("soon", {"id": "soon", "site": "t"})
    assert 30_000 < brief._redis.pttl("scraper:conv:soon") <= 60_000
    few.close()
    brief.close()


def test_two_books_on_one_redis_continue_each_others_conversations(redis_server: RedisServer):
    one, two = ConversationBook(RedisStore(redis_server.url)), ConversationBook(RedisStore(redis_server.url))
    plugin = get_plugin("aipkit")
    first, history = first_aipkit_turn(one)
    second = two.plan(plugin, AIPKIT, "http://a/", {}, [*history, {"role": "user", "content": "more"}])
    assert second.record.id == first.record.id and second.record.state["conversation_uuid"] == "u1"
    assert second.prompt == "more" and second.carried is None
    second.record.state["session_id"] = "s2"  # what the site changed on the other server's turn
    two.answered(second, AIPKIT, "again")
    history += [{"role": "user", "content": "more"}, {"role": "assistant", "content": "again"}]
    third = one.plan(plugin, AIPKIT, "http://a/", {}, [*history, {"role": "user", "content": "last"}])
    assert third.record.id == first.record.id
    assert third.record.state["session_id"] == "s2", "the first server reads the record fresh, not its own copy"
    assert len(third.record.messages) == 4

    engine = get_plugin("aiengine")
    started = one.plan(engine, AIENGINE, "http://a/", {}, [{"role": "user", "content": "x"}])
    started.record.state.update(chat_id="chat-1", native=[{"role": "user"}])
    one.answered(started, AIENGINE, "y")
    went_on = two.plan(engine, AIENGINE, "http://a/", {}, [*started.record.messages, {"role": "user", "content": "z"}])
    assert went_on.record.state == {"chat_id": "chat-1", "native": [{"role": "user"}]}
    one.store.close()
    two.store.close()


def test_profiles_are_shared_by_site(redis_server: RedisServer):
    store = RedisStore(redis_server.url)
    assert store.load_profile("127.0.0.1_8080") is None
    data = {"origin": "http://127.0.0.1:8080", "user_agent": "UA", "saved_at": 1.0, "storage_state": {"cookies": []}}
    store.save_profile("127.0.0.1_8080", data)
    assert RedisStore(redis_server.url).load_profile("127.0.0.1_8080") == data
    store.close()


def test_a_redis_that_is_down_is_a_typed_error_and_the_same_store_recovers(redis_server: RedisServer):
    store = RedisStore(redis_server.url)
    store.save("c1", {"id": "c1", "site": "s"})
    redis_server.stop()
    with pytest.raises(StateUnavailableError, match="does not answer") as failed:
        store.load("c1")
    assert failed.value.http_status == 503
    with pytest.raises(StateUnavailableError):
        store.save("c2", {"id": "c2", "site": "s"})
    with pytest.raises(StateUnavailableError):
        store.find("h:1")
    assert store.ping() is False
    redis_server.start()  # back on the same port, empty (no snapshot): the same client connects again
    store.save("c2", {"id": "c2", "site": "s"})
    assert store.load("c2") == {"id": "c2", "site": "s"} and store.ping() is True
    store.close()


def test_a_redis_that_stops_answering_times_out_instead_of_hanging(redis_server: RedisServer):
    store = RedisStore(redis_server.url, socket_timeout=0.5)
    store.save("c1", {"id": "c1", "site": "s"})
    assert redis_server.process is not None
    redis_server.process.send_signal(signal.SIGSTOP)  # the connection stays open; no answer comes
    try:
        with pytest.raises(StateUnavailableError, match="TimeoutError"):
            store.load("c1")
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
    assert store.load("c1") == {"id": "c1", "site": "s"}, "the next call gets its own answer, not the late one"
    store.close()


def test_the_password_of_the_redis_url_is_never_shown(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.WARNING, logger="scraper")
    store = RedisStore(f"redis://:hunter2-pass@127.0.0.1:{free_port()}/0", socket_timeout=0.5)
    assert "hunter2-pass" not in store.shown and f"127.0.0.1:{store.shown.rsplit(':', 1)[1]}" in store.shown
    with pytest.raises(StateUnavailableError) as failed:
        store.load("c1")
    assert "hunter2-pass" not in str(failed.value) and store.shown in str(failed.value)
    assert "did not answer" in caplog.text and "hunter2-pass" not in caplog.text
    assert store.ping() is False
    store.close()


def test_a_state_that_is_no_redis_url_is_refused():
    with pytest.raises(ConfigError, match="not a Redis URL"):
        RedisStore("redis://")
    with pytest.raises(ConfigError, match="must be a Redis URL"):
        ServeConfig(state="http://127.0.0.1:9/").check()
    with pytest.raises(ConfigError, match="drop --conversations"):
        ServeConfig(state="redis://127.0.0.1:9/0", conversations="off").check()
    ServeConfig(state="redis://127.0.0.1:9/0").check()
