"""The package's pytest plugin: opt-in, and at peace with pytest-asyncio and anyio installed beside it."""

from __future__ import annotations

import pytest

PLUGIN = ("-p", "scraper.cassettes.pytest_plugin")

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


def test_installing_the_package_adds_nothing_to_other_pytest_runs(pytester: pytest.Pytester):
    pytester.makepyfile("def test_fixtures(request):\n    assert 'cassette_url' not in request.fixturenames\n")
    result = pytester.runpytest_subprocess("--fixtures")
    result.stdout.no_fnmatch_line("*cassette_url*")
    result.stdout.no_fnmatch_line("*--record-mode*")
    opted_in = pytester.runpytest_subprocess(*PLUGIN, "--fixtures")
    opted_in.stdout.fnmatch_lines(["*cassette_url*"])


@pytest.mark.parametrize("others", [(), ("-p", "no:asyncio"), ("-p", "no:anyio")], ids=["both", "anyio", "asyncio"])
def test_each_runner_keeps_its_own_async_tests(pytester: pytest.Pytester, others: tuple[str, ...]):
    pytester.makepyfile(MIXED)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.runpytest_subprocess(*PLUGIN, *others, "-rA")
    outcomes = result.parseoutcomes()
    missing = {"-p no:asyncio": "test_pytest_asyncios", "-p no:anyio": "test_anyios"}.get(" ".join(others))
    result.stdout.fnmatch_lines(["PASSED *::test_ours"])
    for name in ("test_pytest_asyncios", "test_anyios"):
        if name == missing:
            result.stdout.fnmatch_lines([f"FAILED *::{name}*"])  # its runner is off: nobody else takes it
        else:
            result.stdout.fnmatch_lines([f"PASSED *::{name}*"])
    assert (outcomes.get("passed"), outcomes.get("failed")) == ((2, 1) if missing else (3, None)), result.stdout.str()
