"""Shared fixtures: the replica sites, and one Chromium for the whole run.

pytest-playwright's own options steer the browser: ``--headed`` and ``--slowmo MS`` show every chat
these tests run, through the SCRAPER_HEADED / SCRAPER_SLOW_MO switches the package reads.

``async def`` tests run through the package's own pytest plugin, each on a fresh event loop in a
thread of its own (users call the package from many loops anyway).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import time
from collections.abc import Callable, Iterator

import pytest

from scraper import get_runtime
from scraper._browser import CHROMIUM_ARGS, find_browser
from scraper.replica import ReplicaSite


def plugin_installed() -> bool:
    """Whether pytest loads the package's plugin by itself (its pytest11 entry point is installed)."""
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return False
    return any(ep.name == "scraper" for ep in importlib.metadata.entry_points(group="pytest11"))


# From a source checkout (package not installed), load the plugin here: it also runs `async def` tests.
pytest_plugins = [] if plugin_installed() else ["scraper.pytest_plugin"]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """pytest-playwright's browser: the same Chromium the package finds, with the closed-network flags."""
    return {**browser_type_launch_args, "executable_path": find_browser().path, "args": list(CHROMIUM_ARGS)}


@pytest.fixture(scope="session", autouse=True)
def _browser_switches(browser_type_launch_args: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # Debug files and saved profiles go to this run's temp dir, never the user's cache.
    os.environ["SCRAPER_DEBUG_DIR"] = str(tmp_path_factory.mktemp("debug"))
    os.environ["SCRAPER_PROFILE_DIR"] = str(tmp_path_factory.mktemp("profiles"))
    if browser_type_launch_args.get("headless") is False:
        os.environ["SCRAPER_HEADED"] = "1"
    if browser_type_launch_args.get("slow_mo"):
        os.environ["SCRAPER_SLOW_MO"] = str(browser_type_launch_args["slow_mo"])
    yield


@pytest.fixture(autouse=True)
def _fresh_sessions() -> Iterator[None]:
    """Each test starts with no warm site sessions (the browser itself stays up)."""
    yield
    runtime = get_runtime()
    if runtime._loop is not None and not runtime.closed:
        runtime.call_sync(runtime._close_sessions(), timeout=30)


def _site(plugin: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ReplicaSite]:
    with ReplicaSite(plugin) as site:
        site.config.chunk_delay = 0.005
        env = "SCRAPER_CHATGPTFREE_URL" if plugin == "aipower" else "SCRAPER_CHATGPT4ONLINE_URL"
        monkeypatch.setenv(env, site.url)
        yield site


@pytest.fixture
def aipower(monkeypatch: pytest.MonkeyPatch) -> Iterator[ReplicaSite]:
    """A replica AI Power site; ChatgptFree points at it."""
    yield from _site("aipower", monkeypatch)


@pytest.fixture
def aiengine(monkeypatch: pytest.MonkeyPatch) -> Iterator[ReplicaSite]:
    """A replica AI Engine site; Chatgpt4Online points at it."""
    yield from _site("aiengine", monkeypatch)


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll until ``condition`` holds (server-side effects arrive a moment after the client acts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()
