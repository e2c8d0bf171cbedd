"""Warm sessions, many chats at once, and remote browsers (not timed: speed lives in the benchmark)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from scraper import AIEngineChat, AIPowerChat, BrowserRuntime
from scraper.browser import CHROMIUM_ARGS, PER_PAGE, SitePool, find_browser, get_runtime, options_from_env
from tests._support import echo, own_session, wait_for, wait_until


def ask(message: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": message}]


async def test_warm_chats_reuse_page_and_values(aipower, aiengine):
    for chat, site in ((AIPowerChat(aipower.url), aipower), (AIEngineChat(aiengine.url), aiengine)):
        for n in range(3):
            assert await chat.create_async_generator("", ask(f"m{n}")).collect() == echo(f"m{n}")
        assert site.stats.page_loads == 1, "a warm chat must not reload the page"
    assert aiengine.stats.session_starts == 1, "the nonce is cached until the site rejects it"
    assert get_runtime().launches == 1


async def test_max_pages_bounds_lanes_and_queues_in_order(aipower):
    aipower.config.chunk_delay = 0.05
    aipower.config.reply_events = 12
    chat = AIPowerChat(aipower.url)
    total = 2 * PER_PAGE + 4
    texts = await asyncio.gather(
        *[chat.create_async_generator("", ask(f"q{n:02d}"), max_pages=2).collect() for n in range(total)]
    )
    peak = aipower.stats.peak_streams
    assert len(set(texts)) == 1 and texts[0].startswith("w0 ")  # reply_events replaces the echo
    assert PER_PAGE < peak <= 2 * PER_PAGE, f"two lanes of {PER_PAGE} at most, saw {peak}"
    assert aipower.stats.page_loads == 2 and aipower.stats.streams_completed == total
    pool = get_runtime().sites.pool(chat.page_url())
    assert pool.busy == 0 and len(pool.lanes) == 2


async def test_slots_beyond_the_bound_go_out_first_come_first_served():
    pool = SitePool(BrowserRuntime(), "http://127.0.0.1:1/", proxy=None, max_pages=1)
    held = [await pool.acquire() for _ in range(PER_PAGE)]
    assert len(pool.lanes) == 1 and pool.busy == PER_PAGE
    order: list[int] = []

    async def wait_turn(n: int) -> None:
        lane = await pool.acquire()
        order.append(n)
        await asyncio.sleep(0)
        pool.release(lane)

    waiters = []
    for n in range(5):
        waiters.append(asyncio.create_task(wait_turn(n)))
        await asyncio.sleep(0)  # each asks in turn
    waiters[2].cancel()  # one gives up while waiting
    await asyncio.sleep(0)
    pool.release(held.pop())
    await asyncio.gather(*waiters, return_exceptions=True)
    assert order == [0, 1, 3, 4], "served in the order they asked; the one that gave up took no slot"
    for lane in held:
        pool.release(lane)
    assert pool.busy == 0


async def test_cancel_frees_the_slot_for_a_waiting_chat(aipower):
    aipower.config.chunk_delay = 0.05
    aipower.config.reply_events = 60  # ~3 s per chat, for every chat of this test
    chat = AIPowerChat(aipower.url)
    pool = get_runtime().sites.pool(chat.page_url(), max_pages=1)

    async def hold(n: int, started: asyncio.Event | None = None) -> str:
        stream = chat.create_async_generator("", ask(f"hold{n}"), max_pages=1)
        async for _ in stream:
            if started is not None:
                started.set()
        return stream.text

    first = asyncio.Event()
    holders = [asyncio.create_task(hold(0, first))]
    await asyncio.wait_for(first.wait(), 30)  # lane open and warm
    holders += [asyncio.create_task(hold(n)) for n in range(1, PER_PAGE)]
    assert await wait_for(lambda: aipower.stats.active_streams == PER_PAGE)

    waiting = asyncio.create_task(chat.create_async_generator("", ask("next"), max_pages=1).collect())
    abandoned = asyncio.create_task(chat.create_async_generator("", ask("gives up"), max_pages=1).collect())
    assert await wait_for(lambda: pool.waiting == 2), "the lane is full: the 7th and 8th chats wait"
    assert not waiting.done() and pool.busy == PER_PAGE

    abandoned.cancel()  # cancelled while waiting: must not take or leak a slot
    holders[0].cancel()  # cancelled mid-stream: its slot goes to the longest-waiting chat
    assert (await asyncio.wait_for(waiting, 30)).startswith("w0 w1 ")
    assert "gives up" not in [r.form["message"] for r in aipower.log if r.form]
    for task in holders[1:]:
        task.cancel()
    await asyncio.gather(*holders, abandoned, return_exceptions=True)
    assert await wait_for(lambda: pool.busy == 0), pool.in_flight
    assert await wait_for(lambda: aipower.stats.active_streams == 0)
    assert len(pool.lanes) == 1


def test_remote_endpoints_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SCRAPER_WS_ENDPOINT", "ws://127.0.0.1:1/")
    assert options_from_env()["ws_endpoint"] == "ws://127.0.0.1:1/"
    monkeypatch.delenv("SCRAPER_WS_ENDPOINT")
    monkeypatch.setenv("SCRAPER_CDP_ENDPOINT", "http://127.0.0.1:2")
    assert options_from_env()["cdp_endpoint"] == "http://127.0.0.1:2"
    assert options_from_env({"ws_endpoint": "ws://x/"}) == {"ws_endpoint": "ws://x/"}


@pytest.fixture
def chromium_with_debugging_port() -> Iterator[str]:
    """A real Chromium exposing CDP on a free loopback port."""
    # Chromium's helper processes may still touch the profile as it exits: tolerate leftovers.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        command = [
            find_browser().path,
            "--headless=new",
            "--no-sandbox",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            *CHROMIUM_ARGS,
            "about:blank",
        ]
        with own_session(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
            active = Path(profile, "DevToolsActivePort")
            assert wait_until(lambda: active.exists() and bool(active.read_text().strip()), 30), "no DevTools port"
            port = int(active.read_text().splitlines()[0])
            yield f"http://127.0.0.1:{port}"
            assert proc.poll() is None, "closing the client must not kill a browser it only connected to"


async def test_chat_through_a_playwright_browser_server(aipower, playwright_server):
    options = {"ws_endpoint": playwright_server, "executable_path": find_browser().path}
    runtime = get_runtime(options)
    try:
        text = await AIPowerChat(aipower.url).create_async_generator("", ask("via ws"), **options).collect()
        assert text == echo("via ws")
        assert runtime.location is None, "nothing was launched locally"
    finally:
        await runtime.aclose()


async def test_chat_through_chromium_over_cdp(aiengine, chromium_with_debugging_port):
    runtime = get_runtime({"cdp_endpoint": chromium_with_debugging_port})
    try:
        chat = AIEngineChat(aiengine.url)
        stream = chat.create_async_generator("", ask("via cdp"), cdp_endpoint=chromium_with_debugging_port)
        assert await stream.collect() == echo("via cdp")
        assert runtime.location is None
    finally:
        await runtime.aclose()


def test_cli_uses_remote_endpoint_from_environment(aipower, chromium_with_debugging_port):
    result = subprocess.run(
        [sys.executable, "-m", "scraper", "chat", "--plugin", "aipower", "--url", aipower.url, "-v", "hi"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SCRAPER_CDP_ENDPOINT": chromium_with_debugging_port},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == echo("hi") + "\n"
    assert "connecting to Chromium over CDP" in result.stderr


def test_fresh_runtime_is_independent(aipower):
    runtime = BrowserRuntime()
    try:
        assert runtime.launches == 0 and not runtime.closed
    finally:
        runtime.close()
    assert runtime.closed
