"""A browser pool's placement and bookkeeping, without a browser: members are runtimes that never start
(nothing here calls a browser), so every answer comes from the pool's own logic."""

from __future__ import annotations

import asyncio

import pytest

import scraper
import scraper.browser
from scraper.browser import BrowserPool, PoolMember, parse_browsers, where
from scraper.browser._pool import place
from scraper.cli.serve import browsers
from scraper.errors import BrowserLaunchError, ConfigError
from scraper.serve import ServeConfig

A, B, C = "ws://127.0.0.1:1/a", "ws://127.0.0.1:2/b", "http://127.0.0.1:3"


@pytest.fixture
def pool() -> BrowserPool:
    made = BrowserPool([A, B, C])
    yield made
    made.close()


def member(pool: BrowserPool, url: str) -> PoolMember:
    return next(m for m in pool if m.url == url)


def test_the_pool_is_public():
    assert "BrowserPool" in scraper.browser.__all__ and "BrowserPool" in scraper.__all__
    assert scraper.BrowserPool is BrowserPool


def test_browsers_are_read_from_text_or_a_list_with_capacities():
    assert parse_browsers(f"local, {A}?capacity=4 {C}") == [("local", None), (A, 4), (C, None)]
    assert parse_browsers([("local", 2), f"{B}?x=1&capacity=3"]) == [("local", 2), (B + "?x=1", 3)]
    assert parse_browsers("local?capacity=1") == [("local", 1)]
    for bad in ("127.0.0.1:3000", f"{A},{A}", f"{A}?capacity=0", f"{A}?capacity=many"):
        with pytest.raises(ConfigError):
            parse_browsers(bad)


def test_a_browser_is_shown_without_its_path_query_or_credentials():
    assert where("ws://user:secret@127.0.0.1:3000/key?token=abc") == "ws://127.0.0.1:3000"
    assert where("local") == "local"
    shown = BrowserPool(["ws://u:pw@127.0.0.1:9/key?token=t&capacity=2", C])
    try:
        lines = [m.health() for m in shown]
    finally:
        shown.close()
    assert [line["browser"] for line in lines] == ["ws://127.0.0.1:9", C]
    assert lines[0]["capacity"] == 2 and lines[0]["up"] and lines[0]["chats"] == 0
    assert "pw" not in repr(lines) and "key" not in repr(lines) and "token" not in repr(lines)


def test_a_site_stays_on_its_browser_and_new_sites_go_to_the_least_loaded(pool):
    a, b, c = (member(pool, url) for url in (A, B, C))
    a.chats, b.chats, c.chats = 2, 0, 1
    assert place(list(pool), "new") is b
    assert place(list(pool), "warm", held_by=a) is a, "affinity wins over load"
    a.up = False
    assert place(list(pool), "warm", held_by=a) is b, "a down browser's sites move"
    a.up, a.capacity = True, 2
    assert place(list(pool), "warm", held_by=a) is b, "a full browser's extra chats move"
    b.up = c.up = False
    assert place(list(pool), "warm", held_by=a) is None


async def test_a_full_holder_keeps_its_site(pool):
    a = await pool.acquire("site", 1)
    a.capacity = 1
    spill = await pool.acquire("site", 1)
    assert spill is not a
    pool.release(spill)
    pool.release(a)
    assert await pool.acquire("site", 1) is a, "the site's chats go back to the browser that held it first"
    pool.release(a)


async def test_acquire_keeps_affinity_counts_chats_and_avoids_the_lost(pool):
    first = await pool.acquire("site-1", 1)
    second = await pool.acquire("site-2", 1)
    assert first is not second, "a new site goes to a browser with no chat"
    again = await pool.acquire("site-1", 1)
    assert again is first and first.chats == 2
    moved = await pool.acquire("site-1", 1, avoid=[first])
    assert moved is not first
    for m in (first, second, again, moved):
        pool.release(m)
    assert [m.chats for m in pool] == [0, 0, 0]
    for m in pool:
        m.up = False
    with pytest.raises(BrowserLaunchError):
        await pool.acquire("site-1", 1)


async def test_a_full_pool_waits_for_a_release():
    pool = BrowserPool([(A, 1)])
    try:
        taken = await pool.acquire("site", 1)
        waiting = asyncio.ensure_future(pool.acquire("site", 30))
        pool.release(taken)
        assert await waiting is taken
        with pytest.raises(BrowserLaunchError):
            await pool.acquire("site", 0)
    finally:
        pool.close()


def test_replacing_the_browsers_keeps_the_ones_named_and_drains_the_rest(pool):
    a, b = member(pool, A), member(pool, B)
    b.chats = 1
    pool.replace([f"{A}?capacity=5", "local"])
    assert [m.url for m in pool] == [A, "local"] and member(pool, A) is a and a.capacity == 5
    assert b.removed and b in pool.members, "a browser with a chat in flight closes when it ends"
    pool.release(b)
    assert b not in list(pool) and b.runtime.closed
    with pytest.raises(ConfigError):
        pool.replace("")


def test_serve_takes_one_browser_as_today_and_several_as_a_pool(monkeypatch):
    monkeypatch.delenv("SCRAPER_BROWSERS", raising=False)
    assert browsers([]) == (None, ())
    assert browsers([A]) == (A, ())
    assert browsers(["local"]) == (None, ())
    assert browsers([A, f"{B}?capacity=2"]) == (None, (A, f"{B}?capacity=2"))
    monkeypatch.setenv("SCRAPER_BROWSERS", f"{A} local")
    assert browsers([]) == (None, (A, "local"))
    assert browsers([C]) == (C, ()), "--browser wins over the environment"
    with pytest.raises(ConfigError):
        ServeConfig(browsers=(A, "nowhere")).check()
