"""The command line, finding a browser, and no Chromium outliving its program."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from scraper import BrowserNotFoundError, format_prompt
from scraper.browser import find_browser
from scraper.replica import PLUGINS as REPLICA_PLUGINS
from tests._support import echo, marked_chromium_pids, wait_until

ROOT = Path(__file__).resolve().parents[2]
REPLY = echo("Привет, как дела?")


def run(args: list[str], env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONIOENCODING": "utf-8", **(env or {})},
    )


def test_format_prompt():
    assert format_prompt([{"role": "user", "content": "only"}]) == "only"
    two = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    assert format_prompt(two) == "User: a\nAssistant: b\nAssistant:"
    with pytest.raises(ValueError):
        format_prompt([])


def test_find_browser_prefers_scraper_browser(monkeypatch, tmp_path):
    fake = tmp_path / "my-chrome"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("SCRAPER_BROWSER", str(fake))
    assert find_browser().path == str(fake) and find_browser().source == "SCRAPER_BROWSER"


def test_no_browser_anywhere_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.delenv("SCRAPER_BROWSER", raising=False)
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrowserNotFoundError, match=r"apt-get install -y chromium.*playwright install chromium"):
        find_browser()


def test_missing_browser_is_a_typed_error_from_a_chat(aipower):
    result = run(
        ["-m", "scraper", "chat", "--provider", "chatgptfree", "--url", aipower.url, "hi"],
        env={"SCRAPER_BROWSER": "/nonexistent/chromium"},
    )
    assert result.returncode == 1
    assert "BrowserNotFoundError" in result.stderr and result.stdout.strip() == ""


@pytest.mark.parametrize("provider,site", [("chatgptfree", "aipower"), ("chatgpt4online", "aiengine")])
def test_cli_chat_streams_to_stdout(provider, site, request):
    replica = request.getfixturevalue(site)
    result = run(["-m", "scraper", "chat", "--provider", provider, "--url", replica.url, "Привет, как дела?"])
    assert result.returncode == 0, result.stderr
    assert result.stdout == REPLY + "\n"
    assert "loading" in result.stderr, "a progress note while the page loads"


def test_cli_chat_uses_the_environment_url(aiengine):
    result = run(["-m", "scraper", "chat", "--provider", "chatgpt4online", "Привет, как дела?"])
    assert result.returncode == 0, result.stderr
    assert result.stdout == REPLY + "\n"


def test_cli_generic_plugin_and_stdin(aipower):
    result = subprocess.run(
        [sys.executable, "-m", "scraper", "chat", "--plugin", "aipower", "--url", aipower.url],
        input="Привет, как дела?",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == REPLY + "\n"


def test_cli_error_is_one_line_and_nonzero(aipower):
    aipower.config.page = "no_nonce"
    result = run(["-m", "scraper", "chat", "--provider", "chatgptfree", "--url", aipower.url, "hi"])
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("scraper: error:")]
    assert len(errors) == 1 and "MissingTokenError" in errors[0] and "nonce" in errors[0]


def test_cli_demo_chats_with_every_plugin():
    result = run(["-m", "scraper", "demo"], timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(REPLY) == len(REPLICA_PLUGINS) + 1
    for name in ("ChatgptFree, bot 'Gemini'", "Chatgpt4Online", "WordPressChat (AI Power)", "'GPT-4o mini'"):
        assert name in result.stderr
    assert "first chunk after" in result.stderr


SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from scraper import ChatgptFree

    async def main(mode):
        stream = ChatgptFree.create_async_generator("", [{"role": "user", "content": "hi"}])
        async for chunk in stream:
            print("PID-CHUNK", chunk, flush=True)
            if mode == "raise":
                raise RuntimeError("boom")
            if mode == "cancel":
                asyncio.current_task().cancel()
            if mode == "exit":
                sys.exit(0)

    asyncio.run(main(sys.argv[1]))
    """
)


@pytest.mark.parametrize("mode", ["complete", "raise", "cancel", "exit"])
def test_no_chromium_outlives_the_program(aipower, mode):
    aipower.config.chunk_delay = 0.05
    marker = uuid.uuid4().hex
    result = run(["-c", SCRIPT, mode], env={"SCRAPER_CHATGPTFREE_URL": aipower.url, "SCRAPER_TEST_RUN": marker})
    assert "PID-CHUNK" in result.stdout, result.stderr
    if mode == "complete":
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0 or mode == "exit"
    assert wait_until(lambda: not marked_chromium_pids(marker)), "a Chromium process outlived the program"
    assert "Event loop is closed" not in result.stderr and "Task was destroyed" not in result.stderr
