"""The package's pytest plugin: opt-in, and at peace with pytest-asyncio and anyio installed beside it."""

from __future__ import annotations

import pytest

from tests._support import UNUSED_PYTEST_PLUGINS

PLUGIN = ("-p", "scraper.cassettes.pytest_plugin")
# Inner runs load only the plugins a case names (every installed one would make each run slow).
RUNNERS = {"asyncio": ("-p", "asyncio"), "anyio": ("-p", "anyio")}


@pytest.fixture(autouse=True)
def _no_autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


# Where each async test ran: the plugin's tests on a thread of their own, the others where their runner put them.
MIXED = """
import threading

import pytest


@pytest.mark.scraper
async def test_ours():
    assert threading.current_thread().name == "scraper-test-loop"


@pytest.mark.asyncio
async def test_pytest_asyncios():
    assert threading.current_thread() is threading.main_thread()


@pytest.mark.anyio
async def test_anyios(anyio_backend):
    assert threading.current_thread() is threading.main_thread()


@pytest.fixture
def anyio_backend():
    return "asyncio"
"""


def test_installing_the_package_adds_nothing_to_other_pytest_runs(pytester: pytest.Pytester, monkeypatch):
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD")  # every installed plugin, as in anyone's run
    monkeypatch.setenv("PYTEST_ADDOPTS", UNUSED_PYTEST_PLUGINS)  # but two slow ones unrelated to ours
    pytester.makepyfile(
        """
        def test_not_loaded(request):
            loaded = [name for name, plugin in request.config.pluginmanager.list_name_plugin()]
            assert not any("scraper" in str(name) for name in loaded), loaded
            assert request.config.getoption("replay_speed", "absent") == "absent"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.parseoutcomes() == {"passed": 1}, result.stdout.str()


@pytest.mark.parametrize("runners", [("asyncio", "anyio"), ("anyio",), ("asyncio",)], ids=["both", "anyio", "asyncio"])
def test_each_runner_keeps_its_own_async_tests(pytester: pytest.Pytester, runners: tuple[str, ...]):
    pytester.makepyfile(MIXED)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    loaded = [arg for name in runners for arg in RUNNERS[name]]
    result = pytester.runpytest_subprocess(*PLUGIN, *loaded, "-rA")
    outcomes = result.parseoutcomes()
    absent = set(RUNNERS) - set(runners)
    missing = {"asyncio": "test_pytest_asyncios", "anyio": "test_anyios"}[absent.pop()] if absent else None
    result.stdout.fnmatch_lines(["PASSED *::test_ours"])
    for name in ("test_pytest_asyncios", "test_anyios"):
        if name == missing:
            result.stdout.fnmatch_lines([f"FAILED *::{name}*"])  # its runner is off: nobody else takes it
        else:
            result.stdout.fnmatch_lines([f"PASSED *::{name}*"])
    assert (outcomes.get("passed"), outcomes.get("failed")) == ((2, 1) if missing else (3, None)), result.stdout.str()
