"""A warm site costs one renderer, not two: the address bar's hidden popups are switched off in one
``--disable-features`` that keeps the driver's own list and the caller's (Chromium takes only the last)."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from scraper.browser import BrowserRuntime
from scraper.browser import _switches as switches
from scraper.browser._memory import tree_pids
from scraper.browser._switches import LEAN_FEATURES, _cmdline, disabled_features
from tests._support import browser_server, proc_stat, wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _browsers(root: int | None = None) -> dict[int, list[str]]:
    """The Chromium browser processes below ``root`` (this process by default) and their command lines: those
    a driver started. A child Chromium forks shows its parent's command line until it runs its own program."""
    found = {}
    for pid in tree_pids(root):
        argv = _cmdline(pid)
        browser = "--remote-debugging-pipe" in argv and "--type=" not in " ".join(argv)
        stat = proc_stat(pid)
        if browser and stat is not None and _cmdline(int(stat[1]))[:1] != argv[:1]:
            found[pid] = argv
    return found


def _address_bar_renderers(browser: int) -> int:
    # Chromium's child processes rewrite their command line as one string; these carry this switch.
    return sum("--type=renderer --top-chrome-webui" in " ".join(_cmdline(pid)) for pid in tree_pids(browser))


async def _open_sites(runtime: BrowserRuntime, urls: list[str]) -> list[Any]:
    async def run() -> list[Any]:
        browser = await runtime.browser()
        contexts = []
        for url in urls:
            context = await browser.new_context()
            page = await context.new_page()
            await page.goto(url)
            contexts.append(context)
        return contexts

    return await runtime.call(run())


async def _close(runtime: BrowserRuntime, contexts: list[Any]) -> None:
    async def run() -> None:
        for context in contexts:
            await context.close()

    await runtime.call(run())


@pytest.mark.parametrize("lean", [True, False])
async def test_each_warm_site_has_one_renderer_and_the_drivers_features_stay_off(
    lean, aipower, aiengine, monkeypatch, tmp_path
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("SCRAPER_LEAN_BROWSER", "1" if lean else "0")
    monkeypatch.setattr(switches, "_known", {})  # nothing known yet: the driver's list is read and kept
    mark = f"--scraper-test={uuid.uuid4().hex}"  # an unknown switch Chromium ignores: tells this browser apart
    runtime = BrowserRuntime({"args": ["--disable-features=Translate", mark]})
    try:
        contexts = await _open_sites(runtime, [aipower.url, aiengine.url, aipower.url + "/chat/"])
        [(browser, argv)] = [(pid, argv) for pid, argv in _browsers().items() if mark in argv]
        lists = disabled_features(argv)
        effective = lists[-1]  # Chromium takes the last one
        assert "Translate" in effective, "the caller's own list is kept"
        if lean:
            assert set(lists[0]) <= set(effective), "the driver's own list is kept"
            assert set(LEAN_FEATURES) <= set(effective)
            assert _address_bar_renderers(browser) == 0, "one renderer per site, none for the address bar"
            cached = Path(tmp_path, "scraper", "chromium-features.json")
            assert cached.is_file() and lists[0] in json.loads(cached.read_text()).values()
        else:
            assert not set(LEAN_FEATURES) & set(effective)
            hidden = "without it each site has a hidden second one"
            assert wait_until(lambda: _address_bar_renderers(browser) >= 3), hidden
        await _close(runtime, contexts)
    finally:
        runtime.close()


def test_the_features_of_a_command_line_are_read_in_order():
    argv = ["chromium", "--disable-features=A,B", "--headless", "--disable-features=C,", "--enable-features=D"]
    assert disabled_features(argv) == [["A", "B"], ["C"]]
    assert disabled_features(["chromium"]) == []


def test_a_browser_server_launches_its_chromium_lean_too():
    with browser_server("--port", "0") as (process, _):
        [argv] = _browsers(process.pid).values()  # its own: another browser may start beside it
        lists = disabled_features(argv)
        assert set(LEAN_FEATURES) <= set(lists[-1]) and set(lists[0]) <= set(lists[-1])
