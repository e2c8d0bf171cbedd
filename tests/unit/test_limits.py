"""The bounds beyond one request, without a browser: a site's budget of chats a minute (in this process,
on a clock the test turns; in a real redis-server, shared and atomic) and a conversation's turn lock (in
this process, and in Redis: only its holder releases it, and a holder that stops renewing loses it)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from scraper import ConfigError, ConversationBusyError, StateUnavailableError
from scraper.client._conversation import ConversationBook
from scraper.serve import ServeConfig
from scraper.state import MemoryRateLimiter, MemoryStore, MemoryTurnLocks, RedisRateLimiter, RedisStore, RedisTurnLocks
from tests._support import RedisServer, wait_until


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_is_a_sliding_window_per_site():
    clock = Clock()
    budget = MemoryRateLimiter(3, window=60, clock=clock)
    taken = []
    for _ in range(3):
        taken.append(budget.take("http://a"))
        clock.now += 10
    assert taken == [0, 0, 0]
    assert budget.take("http://a") == 30, "the fourth waits for the first to leave the window"
    assert budget.take("http://b") == 0, "another site has a budget of its own"
    clock.now += 20
    assert budget.take("http://a") == 10, "a refusal took nothing from the budget"
    clock.now += 10
    assert budget.take("http://a") == 0, "the first left the window: one frees"
    assert budget.take("http://a") == 10, "... and only one"


def test_the_budget_remembers_only_the_sites_of_the_last_window():
    clock = Clock()
    budget = MemoryRateLimiter(1, window=10, clock=clock)
    for n in range(100):
        budget.take(f"http://site{n}")
        clock.now += 1
    assert len(budget) == 10, "a site idle for a whole window is forgotten"
    assert budget.take("http://site99") == pytest.approx(10 - 1)


def test_a_site_rate_below_one_is_refused():
    with pytest.raises(ConfigError, match="--site-rate"):
        ServeConfig(site_rate=0).check()
    ServeConfig(site_rate=1).check()


def test_the_shared_budget_is_one_for_every_client_and_never_overspent(redis_server: RedisServer):
    stores = [RedisStore(redis_server.url) for _ in range(4)]
    budgets = [RedisRateLimiter(store, 5, window=60) for store in stores]
    with ThreadPoolExecutor(20) as workers:
        waits = list(workers.map(lambda n: budgets[n % 4].take("http://a"), range(20)))
    assert sorted(waits)[:5] == [0] * 5 and all(0 < wait <= 60 for wait in sorted(waits)[5:])
    assert budgets[0].take("http://b") == 0
    key = "scraper:rate:http://a"
    assert 0 < stores[0]._redis.pttl(key) <= 60_000, "the window's key expires with it"
    assert stores[0]._redis.zcard(key) == 5
    redis_server.stop()
    with pytest.raises(StateUnavailableError):
        budgets[0].take("http://a")
    for store in stores:
        store.close()


def test_the_shared_budget_frees_as_its_window_slides(redis_server: RedisServer):
    store = RedisStore(redis_server.url)
    budget = RedisRateLimiter(store, 1, window=0.2)
    assert budget.take("http://a") == 0
    assert 0 < budget.take("http://a") <= 0.2
    freed = threading.Event()

    def poll() -> None:
        while budget.take("http://a") > 0:
            pass
        freed.set()

    threading.Thread(target=poll, daemon=True).start()
    assert freed.wait(10), "one chat frees once the first left the window"
    store.close()


def test_only_the_holder_renews_or_releases_a_lock_and_it_expires(redis_server: RedisServer):
    store, other = RedisStore(redis_server.url), RedisStore(redis_server.url)
    assert store.lock("c1", "mine", 30)
    assert not other.lock("c1", "theirs", 30), "taken"
    assert not other.unlock("c1", "theirs") and not other.renew("c1", "theirs", 30)
    assert store.renew("c1", "mine", 30) and store.unlock("c1", "mine")
    assert other.lock("c1", "theirs", 0.1), "released: the next one takes it"
    assert store._redis.pttl("scraper:lock:c1") <= 100
    assert wait_gone(store, "c1"), "a lock nobody renews expires"
    assert store.lock("c1", "mine", 30) and not other.unlock("c1", "theirs")
    store.close()
    other.close()


def wait_gone(store: RedisStore, conversation_id: str) -> bool:
    return wait_until(lambda: not store._redis.exists(f"scraper:lock:{conversation_id}"))


@pytest.mark.parametrize("shared", [False, True])
async def test_a_conversations_turns_run_one_at_a_time_and_a_waiter_gives_up(shared, redis_server: RedisServer):
    store = RedisStore(redis_server.url) if shared else MemoryStore()
    book = ConversationBook(store)
    assert isinstance(book.locks, RedisTurnLocks if shared else MemoryTurnLocks)
    if shared:
        # renewed every third of its life while held: a turn longer than its lock's life keeps it. A renewal
        # needs the loop and a worker thread, which a loaded machine can hold back: over a second of slack.
        book.locks.ttl = 2.0
    order: list[str] = []
    inside = asyncio.Event()
    leave = asyncio.Event()

    async def first() -> None:
        async with book.hold("c1", 5):
            order.append("first in")
            inside.set()
            await leave.wait()
            order.append("first out")

    async def second() -> None:
        async with book.hold("c1", 30):
            order.append("second in")

    holder = asyncio.create_task(first())
    await inside.wait()
    waiter = asyncio.create_task(second())
    with pytest.raises(ConversationBusyError) as busy:
        async with book.hold("c1", 0.05):
            pass
    assert busy.value.http_status == 429
    if shared:  # the lock outlives its lifetime while its turn runs
        other = RedisStore(redis_server.url)
        for _ in range(4):
            assert await asyncio.to_thread(lambda: not other.lock("c1", "other", 1))
            await asyncio.to_thread(lambda: wait_renewed(other, "c1"))
        other.close()
    async with book.hold("c2", 1):
        order.append("other conversation")
    leave.set()
    await asyncio.gather(holder, waiter)
    assert order == ["first in", "other conversation", "first out", "second in"]
    store.close()


def wait_renewed(store: RedisStore, conversation_id: str) -> None:
    """Until the lock's expiry is pushed back (its holder renewed it): a time to live above the one read just
    before. Not above the first one read: read at a renewal, that one is already the whole life."""
    key = f"scraper:lock:{conversation_id}"
    last = store._redis.pttl(key)

    def renewed() -> bool:
        nonlocal last
        now = store._redis.pttl(key)
        risen, last = now > last, now
        return risen

    assert wait_until(renewed), f"the holder renews its lock (time to live now {last} ms)"


def test_one_conversations_lock_holds_across_the_event_loops_of_several_browsers():
    # A pool's browsers each run their own loop; a conversation moved to another browser still waits.
    locks = MemoryTurnLocks()
    order: list[str] = []
    held, leave = threading.Event(), threading.Event()

    async def first() -> None:
        async with locks.hold("c1", 5):
            order.append("first in")
            held.set()
            await asyncio.to_thread(leave.wait, 30)
            order.append("first out")

    async def second() -> None:
        async with locks.hold("c1", 30):
            order.append("second in")

    async def gives_up() -> None:
        with pytest.raises(ConversationBusyError):
            async with locks.hold("c1", 0.05):
                order.append("never")

    with ThreadPoolExecutor(3) as loops:
        holder = loops.submit(asyncio.run, first())
        assert held.wait(30)
        loops.submit(asyncio.run, gives_up()).result(30)
        waiter = loops.submit(asyncio.run, second())
        assert wait_until(lambda: bool(locks._locks["c1"].waiters)), "the second turn waits on its own loop"
        leave.set()
        holder.result(30)
        waiter.result(30)
    assert order == ["first in", "first out", "second in"]
    assert "c1" not in locks._locks or not locks._locks["c1"].held
