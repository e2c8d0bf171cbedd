"""What the README promises and nothing else checked: timeouts, transport failures, cookies sent,
debug files switched off, interrupting the command line, closing the browser, bad settings."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

import scraper
from scraper import (
    AIPowerChat,
    ConfigError,
    MissingTokenError,
    ScraperTimeoutError,
    TransportError,
    get_runtime,
)
from tests._support import chats, cli, echo, interrupt, interruptible, wait_for, wait_until

HELLO = [{"role": "user", "content": "Привет"}]
REPLY = echo("Привет")


async def test_a_reply_that_stalls_is_a_timeout_and_the_fetch_is_aborted(aipower):
    aipower.config.first_delay = 3600  # the headers come, then nothing
    chat = AIPowerChat(aipower.url)
    with pytest.raises(ScraperTimeoutError, match="stalled"):
        await asyncio.wait_for(chat.create_async_generator("", HELLO, timeout=2).collect(), 60)
    assert await wait_for(lambda: aipower.stats.streams_aborted == 1), "the site saw the request go away"
    aipower.config.first_delay = 0
    assert await chat.create_async_generator("", HELLO).collect() == REPLY, "the next chat works"


async def test_no_response_headers_is_a_timeout(aipower):
    aipower.config.failure = "stall"  # chat requests are never answered
    chat = AIPowerChat(aipower.url)
    with pytest.raises(ScraperTimeoutError, match="no response headers"):
        await asyncio.wait_for(chat.create_async_generator("", HELLO, timeout=2).collect(), 60)
    aipower.config.failure = None
    assert await chat.create_async_generator("", HELLO).collect() == REPLY


async def test_a_site_that_went_away_is_a_transport_error(aipower):
    chat = AIPowerChat(aipower.url)
    assert await chat.create_async_generator("", HELLO).collect() == REPLY  # the page is warm
    aipower.stop()
    with pytest.raises(TransportError, match="could not reach"):
        await chat.create_async_generator("", HELLO, timeout=10).collect()


async def test_cookies_given_to_a_chat_are_sent_to_the_site(aipower):
    await AIPowerChat(aipower.url).create_async_generator("", HELLO, cookies={"visitor": "v-123"}).collect()
    [sent] = chats(aipower)
    assert "visitor=v-123" in sent.headers.get("cookie", "")


def test_cookie_flag_of_the_command_line_is_sent(aipower):
    result = cli("chat", "--url", aipower.url, "--cookie", "visitor=v-456", "Привет")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == REPLY
    [sent] = chats(aipower)
    assert "visitor=v-456" in sent.headers.get("cookie", "")


async def test_debug_dir_off_keeps_no_files(aipower, monkeypatch):
    aipower.config.page = "no_nonce"
    monkeypatch.setenv("SCRAPER_DEBUG_DIR", "off")
    with pytest.raises(MissingTokenError) as info:
        await AIPowerChat(aipower.url).create_async_generator("", HELLO, timeout=3).collect()
    assert info.value.artifacts == () and "kept for debugging" not in str(info.value)


def test_interrupting_the_command_line_exits_130_and_stops_the_stream(aipower):
    aipower.config.chunk_delay = 0.2
    aipower.config.reply_events = 200  # long enough to be interrupted mid-reply
    process = interruptible(
        [sys.executable, "-m", "scraper", "chat", "--url", aipower.url, "Привет"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    first = process.stdout.read(2)  # the reply has started
    assert first
    _, stderr = interrupt(process, 60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    assert wait_until(lambda: aipower.stats.streams_aborted == 1) and aipower.stats.streams_completed == 0


async def test_aclose_closes_the_browser_and_the_next_chat_starts_a_new_one(aipower):
    chat = AIPowerChat(aipower.url)
    assert await chat.create_async_generator("", HELLO).collect() == REPLY
    runtime = get_runtime()
    await scraper.aclose()
    assert runtime.closed
    assert get_runtime() is not runtime
    assert await chat.create_async_generator("", HELLO).collect() == REPLY


def test_usage_errors_exit_with_status_2(aipower):
    for args in (["chat", "--plugin", "aipower", "hi"], ["chat", "--url", aipower.url, "--cookie", "novalue", "hi"]):
        result = cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "scraper: error:" in result.stderr
    assert aipower.stats.page_loads == 0


async def test_a_bad_max_pages_setting_is_a_config_error_naming_it(aipower, monkeypatch):
    monkeypatch.setenv("SCRAPER_MAX_PAGES", "many")
    with pytest.raises(ConfigError, match="SCRAPER_MAX_PAGES"):
        await AIPowerChat(aipower.url).create_async_generator("", HELLO).collect()
    monkeypatch.setenv("SCRAPER_MAX_PAGES", "2")
    assert await AIPowerChat(aipower.url).create_async_generator("", HELLO).collect() == REPLY
