"""Shared fixtures: the replica sites, and one Chromium for the whole run.

pytest-playwright's own options steer the browser: ``--headed`` and ``--slowmo MS`` show every chat
these tests run, through the SCRAPER_HEADED / SCRAPER_SLOW_MO switches the package reads.

``async def`` tests run on a fresh event loop in a thread of their own: pytest-playwright's sync
``page`` fixture keeps a loop in the main thread, and users call the package from many loops anyway.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from scraper import get_runtime
from scraper._browser import CHROMIUM_ARGS, find_browser
from scraper.replica import ReplicaSite


def run_in_own_loop(coro: Coroutine[Any, Any, Any], timeout: float = 300) -> Any:
    """Run a coroutine to completion on a new event loop in a new thread; re-raise what it raised."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coro)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="test-loop", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"test coroutine still running after {timeout} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    run_in_own_loop(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


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
