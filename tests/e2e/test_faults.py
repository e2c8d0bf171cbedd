"""Faults, injected on purpose: every one ends in a clear error within the caller's timeout, and the
next chat works again once the cause is gone. Real Chromium, real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from scraper import (
    BrowserCrashedError,
    ChallengeError,
    HTTPError,
    MissingTokenError,
    NonceError,
    PageError,
    ScraperTimeoutError,
    WordPressChat,
    get_runtime,
)
from scraper.replica import ReplicaSite, SiteConfig
from tests._support import echo, marked_chromium_pids, proc_stat, soak_factor, wait_for, wait_until

ROOT = Path(__file__).resolve().parents[2]
HELLO = [{"role": "user", "content": "Привет"}]
REPLY = echo("Привет")
MARGIN = 10.0  # what a failure may take beyond its timeout: debug files, closing the request


async def chat(site: ReplicaSite, timeout: float = 20, **kwargs) -> str:
    """One chat, bounded from outside too: a hang fails the test instead of stalling it."""
    stream = WordPressChat(site.url + "/chat/").create_async_generator("", HELLO, timeout=timeout, **kwargs)
    return await asyncio.wait_for(stream.collect(), timeout + MARGIN)


# -- a site that does not answer ------------------------------------------------------------------------


@pytest.mark.parametrize("debug_files", ["on", "off"])
async def test_a_page_that_never_answers_times_out_and_the_next_chat_works(aipkit, monkeypatch, debug_files):
    if debug_files == "off":
        monkeypatch.setenv("SCRAPER_DEBUG_DIR", "off")
    aipkit.config.page = "stall"
    with pytest.raises(ScraperTimeoutError, match="did not load within 2 s"):
        await chat(aipkit, timeout=2)
    with pytest.raises(ScraperTimeoutError):
        await chat(aipkit, timeout=2)  # still stalled: the same, not a hang on the half-loaded page
    aipkit.config.page = "ok"
    assert await chat(aipkit) == REPLY


def test_the_command_line_times_out_on_a_page_that_never_answers(aipkit):
    aipkit.config.page = "stall"
    marker = uuid.uuid4().hex
    result = subprocess.run(
        [sys.executable, "-m", "scraper", "chat", "--url", aipkit.url + "/chat/", "--timeout", "3", "hi"],
        capture_output=True,
        text=True,
        timeout=3 + MARGIN + 20,  # Python and Chromium start too
        cwd=ROOT,
        env={**os.environ, "PYTHONIOENCODING": "utf-8", "SCRAPER_TEST_RUN": marker},
    )
    assert result.returncode == 1 and "ScraperTimeoutError" in result.stderr, result.stderr
    assert wait_until(lambda: not marked_chromium_pids(marker)), "no Chromium outlived the command"


# -- a site that fails once -----------------------------------------------------------------------------

BAD = {
    "page 500": ({"page": "http_500"}, HTTPError),
    "empty page": ({"page": "empty"}, PageError),
    "no nonce": ({"page": "no_nonce"}, MissingTokenError),
    "no chat box": ({"page": "no_chatbox"}, PageError),
    "malformed settings": ({"page": "malformed"}, PageError),
    "challenge never clears": ({"antibot": "js_challenge_never"}, ChallengeError),
    "block page": ({"antibot": "block"}, ChallengeError),
    "chat never answered": ({"failure": "stall"}, ScraperTimeoutError),
    "chat 500": ({"failure": "http_500"}, HTTPError),
    "nonce always rejected": ({"nonce_mode": "always_reject"}, NonceError),
    "page never answers": ({"page": "stall"}, ScraperTimeoutError),
}
GOOD = {"page": "ok", "antibot": None, "failure": None, "nonce_mode": "ok"}


# Faults of the page or its front (before any plugin reads it) are one path for every plugin: one plugin
# shows it. The plugin's own reads and calls are shown on each. AI Power 2.2 keeps its settings in plain
# attributes: it has no JSON settings to break.
PAGE_FAULTS = {"page 500", "empty page", "no chat box", "challenge never clears", "block page", "page never answers"}
CASES = [
    (plugin, case)
    for case in BAD
    for plugin in ("aipkit", "aipower", "aiengine")
    if (plugin, case) != ("aipower", "malformed settings") and (plugin == "aipkit" or case not in PAGE_FAULTS)
]


@pytest.mark.parametrize("plugin,case", CASES)
async def test_after_a_bad_answer_the_next_chat_works_once_the_site_is_fine(plugin, case):
    settings, error = BAD[case]
    with ReplicaSite(plugin, SiteConfig(chunk_delay=0, challenge_delay=0, **settings)) as site:
        with pytest.raises(error):
            await chat(site, timeout=3)
        site.config.update(GOOD)
        site.reset()
        assert await chat(site) == REPLY, "the same process, the same site, fine again"
        if "page" in settings or "antibot" in settings:
            assert site.stats.page_loads == 1, "the broken page was loaded again"


# -- the browser breaks -------------------------------------------------------------------------------


async def _crash_renderer(lane) -> None:
    runtime = lane.runtime

    async def crash() -> None:
        session = await lane.context.new_cdp_session(lane.page)
        with pytest.raises(Exception):  # noqa: B017 - the renderer dies before it can answer
            await asyncio.wait_for(session.send("Page.crash"), 5)

    await runtime.call(crash())


async def test_a_renderer_that_crashes_mid_stream_then_between_chats(aipkit):
    aipkit.config.chunk_delay = 0.05
    aipkit.config.reply_events = 200
    site_chat = WordPressChat(aipkit.url + "/chat/")
    stream = site_chat.create_async_generator("", HELLO, timeout=20)
    first = await asyncio.wait_for(stream.__anext__(), 30)
    assert first
    lane = get_runtime().sites.pool(site_chat.page_url()).primary
    await _crash_renderer(lane)
    with pytest.raises(BrowserCrashedError, match="crashed"):
        await asyncio.wait_for(stream.collect(), 30)
    aipkit.config.reply_events = None
    aipkit.config.chunk_delay = 0
    assert await chat(aipkit) == REPLY, "a new page"
    await _crash_renderer(get_runtime().sites.pool(site_chat.page_url()).primary)
    assert await chat(aipkit) == REPLY, "and again after a crash between chats"


async def _browser_pid() -> int:
    runtime = get_runtime()

    async def pid() -> int:
        browser = await runtime.browser()
        session = await browser.new_browser_cdp_session()
        info = await session.send("SystemInfo.getProcessInfo")
        await session.detach()
        return next(int(p["id"]) for p in info["processInfo"] if p["type"] == "browser")

    return await runtime.call(pid())


async def test_a_killed_browser_is_started_again_by_the_next_chat(aipkit):
    assert await chat(aipkit) == REPLY
    pid = await _browser_pid()
    os.kill(pid, signal.SIGKILL)
    assert await wait_for(lambda: (stat := proc_stat(pid)) is None or stat[0] == "Z"), "the killed browser is gone"
    assert await chat(aipkit) == REPLY
    assert await _browser_pid() != pid


async def test_a_browser_killed_mid_stream_is_a_browser_error_then_the_next_chat_works(aipkit):
    aipkit.config.chunk_delay = 0.05
    aipkit.config.reply_events = 200
    stream = WordPressChat(aipkit.url + "/chat/").create_async_generator("", HELLO, timeout=20)
    assert await asyncio.wait_for(stream.__anext__(), 30)
    os.kill(await _browser_pid(), signal.SIGKILL)
    with pytest.raises(BrowserCrashedError):
        await asyncio.wait_for(stream.collect(), 30)
    aipkit.config.reply_events = None
    aipkit.config.chunk_delay = 0
    assert await chat(aipkit) == REPLY


# -- many first chats, stale nonces -------------------------------------------------------------------


@pytest.mark.parametrize("plugin", ["aiengine", "aipkit"])
@pytest.mark.parametrize("at_once", [6, 50])
async def test_first_chats_at_once_all_succeed_every_time(plugin, at_once):
    runtime = get_runtime()
    with ReplicaSite(plugin, SiteConfig(chunk_delay=0)) as site:
        # Five cold bursts of six and one of fifty; `make soak` (SCRAPER_SOAK=N) runs N times as many.
        repeats = (5 if at_once == 6 else 1) * soak_factor()
        for repeat in range(repeats):
            site.reset()
            runtime.call_sync(runtime.sites.forget(site.url), 60)  # cold: no page, no values yet
            texts = await asyncio.gather(*[chat(site, timeout=60) for _ in range(at_once)])
            assert texts == [REPLY] * at_once, f"repeat {repeat}"
            if plugin == "aiengine":
                lanes = len(runtime.sites.pool(site.url + "/chat/").lanes)
                assert site.stats.session_starts == lanes, "one start_session per lane, shared by its chats"


@pytest.mark.parametrize("plugin", ["aipkit", "aipower"])
async def test_eight_chats_on_a_stale_nonce_refresh_once_and_none_breaks(plugin):
    with ReplicaSite(plugin, SiteConfig(chunk_delay=0.01)) as site:
        assert await chat(site) == REPLY
        site.expire_nonces()  # the nonce the warm page holds is now refused
        site.reset()
        texts = await asyncio.gather(*[chat(site) for _ in range(8)])
        assert texts == [REPLY] * 8
        assert site.stats.streams_completed == 8 and site.stats.streams_aborted == 0, "none broke another"
        # The six chats of the warm lane shared one refresh; the second lane loaded a fresh page.
        new_lanes = len(get_runtime().sites.pool(site.url + "/chat/").lanes) - 1
        if plugin == "aipkit":
            assert site.stats.nonce_refreshes == 1 and site.stats.page_loads == new_lanes
        else:
            assert site.stats.page_loads == 1 + new_lanes, "one fetch of the page for the warm lane"


# -- what is kept, and what is shown --------------------------------------------------------------------


async def test_failure_files_are_scrubbed_and_private(aipower, monkeypatch, tmp_path):
    monkeypatch.setenv("SCRAPER_DEBUG_DIR", str(tmp_path / "debug"))
    aipower.config.page = "no_post_id"  # the nonce is on the page, the read fails anyway
    with pytest.raises(MissingTokenError) as info:
        await asyncio.wait_for(WordPressChat(aipower.url).create_async_generator("", HELLO, timeout=3).collect(), 30)
    html = next(Path(p) for p in info.value.artifacts if p.endswith(".html"))
    assert aipower.nonce not in html.read_text("utf-8") and "NONCE_" in html.read_text("utf-8")
    assert stat.S_IMODE(html.stat().st_mode) == 0o600
    assert stat.S_IMODE(html.parent.stat().st_mode) == 0o700


def test_command_line_errors_show_no_control_characters_and_no_passwords(aipower):
    aipower.config.page = "no_chatbox"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "scraper",
            "chat",
            "--url",
            aipower.url + "/\x1b[31mred",
            "--proxy",
            "http://alice:s3cret@127.0.0.1:9",
            "--timeout",
            "5",
            "-v",
            "hi",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert "\x1b" not in result.stderr and "s3cret" not in result.stderr


async def test_extra_lanes_close_when_idle(aipkit, monkeypatch):
    monkeypatch.setenv("SCRAPER_LANE_IDLE", "0.5")
    aipkit.config.chunk_delay = 0.02
    texts = await asyncio.gather(*[chat(aipkit) for _ in range(14)])
    assert texts == [REPLY] * 14
    pool = get_runtime().sites.pool(aipkit.url + "/chat/")
    assert aipkit.stats.page_loads == 3, "a burst of 14 needed three lanes"
    assert await wait_for(lambda: len(pool.lanes) == 1), "the extra lanes closed once idle"
    assert await chat(aipkit) == REPLY and aipkit.stats.page_loads == 3, "the first lane stays warm"


async def test_a_big_page_whose_body_the_browser_drops_is_read_anyway():
    with ReplicaSite("aiengine", SiteConfig(chunk_delay=0, page="huge")) as site:
        assert await chat(site, timeout=60) == REPLY
