"""Looking like a person's browser to the page's own scripts: a local bot-detection page (botd plus the
classic checks, ``scraper/replica/sensor.py``) that writes its nonce only when they pass, 300 ms after
load, and refuses chat requests whose call stack shows automation. The project chats through it with
each driver, headless and headed (a virtual display of its own when there is no screen)."""

from __future__ import annotations

import pytest

from scraper import AIPowerChat, get_runtime
from scraper.replica import ReplicaSite, SiteConfig
from tests._support import echo

HELLO = [{"role": "user", "content": "Привет"}]
REPLY = echo("Привет")

# What cannot pass here whatever the browser does: no GPU on this machine. And the DevTools Runtime
# domain, which Playwright always enables (patchright does not).
EXPECTED_FAILURES = {"playwright": {"gpu", "cdp_runtime"}, "patchright": {"gpu"}}


@pytest.mark.parametrize("headed", [False, pytest.param(True, marks=pytest.mark.headed)], ids=["headless", "headed"])
@pytest.mark.parametrize("driver", ["playwright", "patchright"])
async def test_chat_through_a_page_that_looks_for_bots(driver, headed):
    options = {"driver": driver, "headless": not headed, "virtual_display": headed}
    with ReplicaSite("aipower", SiteConfig(chunk_delay=0, antibot="sensor")) as site:
        chat = AIPowerChat(site.url, browser=options)
        try:
            assert await chat.create_async_generator("", HELLO, timeout=30).collect() == REPLY
        finally:
            await get_runtime(options).aclose()
        [report] = site.sensor_reports
        failed = {name for name, check in report["checks"].items() if not check["pass"]}
        assert failed == EXPECTED_FAILURES[driver], {name: report["checks"][name] for name in failed}
        assert report["nonce_issued"], "every required check passed: the page wrote its nonce"
        [verdict] = site.sensor.verdicts
        assert verdict["allowed"] and not verdict["reasons"], "the chat request's stack looked like the page's own"
        assert site.sensor.counters["chat_refused"] == 0
