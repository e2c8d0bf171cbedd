"""What every test shares: the replica sites, waiting on a condition, and where files may go.

``async def`` tests run through the package's own pytest plugin (each on a fresh event loop in a
thread of its own): every coroutine test of this suite carries its ``scraper`` marker.
"""

from __future__ import annotations

import functools
import inspect
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from scraper.browser import VirtualDisplay
from scraper.replica import ReplicaSite
from tests._support import RedisServer, redis_server_or_skip

NO_XVFB = "headed: no Xvfb here for a private display (apt-get install xvfb xauth; `make setup` does it as root)"


# The package's pytest plugin is opt-in: this suite opts in (it also runs the `async def` tests).
pytest_plugins = ["scraper.cassettes.pytest_plugin", "pytester"]


# What the suite costs, counted in this process (the browsers and servers of subprocesses are not):
# shown at the end of the run, so a change that makes tests launch more is seen.
COSTS: Counter[str] = Counter()


def _counted(owner: type, name: str, what: str) -> None:
    original = getattr(owner, name)
    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def counted_async(self: Any, *args: Any, **kwargs: Any) -> Any:
            COSTS[what] += 1
            return await original(self, *args, **kwargs)

        setattr(owner, name, counted_async)
        return

    @functools.wraps(original)
    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(self, "_server", None) is None:  # a start that starts something
            COSTS[what] += 1
        return original(self, *args, **kwargs)

    setattr(owner, name, counted)


def pytest_configure(config: pytest.Config) -> None:
    from scraper._http_server import ServerThread
    from scraper.browser import BrowserRuntime

    _counted(BrowserRuntime, "_launch", "browsers launched or connected")
    _counted(ServerThread, "start", "loopback servers started")


def pytest_sessionfinish(session: pytest.Session) -> None:
    output = getattr(session.config, "workeroutput", None)  # an xdist worker: its costs go to the controller
    if output is not None:
        output["scraper_costs"] = dict(COSTS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    COSTS.update(getattr(node, "workeroutput", {}).get("scraper_costs", {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if COSTS:
        terminalreporter.write_line("scraper costs: " + ", ".join(f"{n} {what}" for what, n in sorted(COSTS.items())))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    xvfb = shutil.which("Xvfb") is not None
    for item in items:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj):
            item.add_marker(pytest.mark.scraper)
        if not xvfb and item.get_closest_marker("headed"):
            item.add_marker(pytest.mark.skip(reason=NO_XVFB))


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server on a free loopback port, killed at the end (skips where none is installed)."""
    with redis_server_or_skip() as server:
        yield server


@pytest.fixture
def xvfb_display() -> Iterator[str]:
    """A private Xvfb for a headed browser (never a window on the developer's own screen)."""
    screen = VirtualDisplay()
    try:
        yield screen.start()
    finally:
        screen.stop()


@pytest.fixture(scope="session", autouse=True)
def _private_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # Debug files and saved profiles go to this run's temp dir, never the user's cache.
    os.environ["SCRAPER_DEBUG_DIR"] = str(tmp_path_factory.mktemp("debug"))
    os.environ["SCRAPER_PROFILE_DIR"] = str(tmp_path_factory.mktemp("profiles"))
    os.environ["SCRAPER_CONVERSATIONS"] = str(tmp_path_factory.mktemp("state") / "conversations.sqlite3")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))  # what the package keeps there
    yield


@pytest.fixture(scope="session", autouse=True)
def _no_server() -> Iterator[None]:
    # `scraper chat` would go through a `scraper serve` running on this machine; tests that want one
    # start their own and point SCRAPER_SERVER at it.
    os.environ["SCRAPER_SERVER"] = "off"
    yield


def _site(plugin: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ReplicaSite]:
    from scraper.client import preset_env

    with ReplicaSite(plugin) as site:
        site.config.chunk_delay = 0.005
        env = preset_env(plugin)
        if env:
            monkeypatch.setenv(env, site.url)
        yield site


@pytest.fixture
def aipower(monkeypatch: pytest.MonkeyPatch) -> Iterator[ReplicaSite]:
    """A replica AI Power 2.2 (legacy shortcode) site; ChatgptFree points at it."""
    yield from _site("aipower", monkeypatch)


@pytest.fixture
def aipkit(monkeypatch: pytest.MonkeyPatch) -> Iterator[ReplicaSite]:
    """A replica AI Power 2.3+ (AIPKit) site with two bots, as chatgptfree.ai runs today; ChatgptFree points at it."""
    yield from _site("aipkit", monkeypatch)


@pytest.fixture
def aiengine(monkeypatch: pytest.MonkeyPatch) -> Iterator[ReplicaSite]:
    """A replica AI Engine site; Chatgpt4Online points at it."""
    yield from _site("aiengine", monkeypatch)


@pytest.fixture
def kognetiks(monkeypatch: pytest.MonkeyPatch) -> Iterator[ReplicaSite]:
    """A replica Kognetiks Chatbot (chatbot-chatgpt 2.4.6) site."""
    yield from _site("kognetiks", monkeypatch)
