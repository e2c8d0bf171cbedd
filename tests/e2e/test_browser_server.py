"""``scraper browser-server`` on this machine's Chromium, used by ``scraper chat --browser`` and ``scraper
serve --browser`` against replica sites; a browser server that dies gives a typed error, and the next
chat works once it is back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest

from scraper.browser import remote_options
from scraper.errors import ConfigError
from tests._support import browser_server, echo, free_port
from tests.e2e.test_serve import HELLO, REPLY, ROOT, serve_process, served_url


def test_remote_browser_urls_are_ws_or_cdp():
    assert remote_options("ws://127.0.0.1:3000/abc") == {"ws_endpoint": "ws://127.0.0.1:3000/abc"}
    assert remote_options("http://127.0.0.1:9222") == {"cdp_endpoint": "http://127.0.0.1:9222"}
    with pytest.raises(ConfigError):
        remote_options("127.0.0.1:3000")


def test_scraper_chat_through_a_browser_server(aipower):
    with browser_server("--port", "0") as (process, endpoint):
        command = [sys.executable, "-m", "scraper", "chat", "--plugin", "aipower", "--url", aipower.url, "-v"]
        result = subprocess.run(
            [*command, "--browser", endpoint, "over ws"],
            capture_output=True,
            text=True,
            timeout=180,
            cwd=ROOT,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == echo("over ws") + "\n"
        assert "connecting to a Playwright browser server" in result.stderr
        assert "launching" not in result.stderr, "no browser was launched by the client"
        assert aipower.stats.page_loads == 1
        assert process.poll() is None, "the browser server outlives its client"


def test_scraper_serve_through_a_browser_server_and_a_typed_error_when_it_dies(aipower):
    port = str(free_port())
    flags = ("--port", port, "--path", "/scraper-test")
    body = {"model": "gpt-4o-mini", "messages": HELLO}
    server = serve_process("--browser", f"ws://127.0.0.1:{port}/scraper-test")
    try:
        url = served_url(server)
        with browser_server(*flags) as (process, _):
            answer = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=180)
            assert answer.status_code == 200, answer.text
            assert answer.json()["choices"][0]["message"]["content"] == REPLY
            browser = httpx.get(f"{url}/health", timeout=60).json()["browser"]
            assert browser["connected"] and browser["executable"] is None, "the server launched nothing itself"
            os.killpg(process.pid, signal.SIGKILL)  # the server and its driver, at once
            process.wait(30)
        failed = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=180)
        assert failed.status_code == 503, failed.text
        assert failed.json()["error"]["code"].startswith("Browser"), failed.text
        (down,) = httpx.get(f"{url}/health", timeout=60).json()["browsers"]
        assert down["browser"] == f"ws://127.0.0.1:{port}" and not down["up"], "no path (it may be the key)"
        assert down["last_error"]["error"] == failed.json()["error"]["code"]
        with browser_server(*flags):
            again = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=180)
            assert again.status_code == 200, again.text
            assert again.json()["choices"][0]["message"]["content"] == REPLY
            (up,) = httpx.get(f"{url}/health", timeout=60).json()["browsers"]
            assert up["up"] and up["pages"] >= 1 and up["chats"] == 0
    finally:
        server.terminate()
        assert server.wait(60) == 0
