"""Real Chromium: pytest-playwright's browser is the one the package finds, with its flags.

pytest-playwright's own options steer the browser: ``--headed`` and ``--slowmo MS`` show every chat
these tests run, through the SCRAPER_HEADED / SCRAPER_SLOW_MO switches the package reads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from scraper.browser import CHROMIUM_ARGS, find_browser, reset_all
from tests import _support


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """pytest-playwright's browser: the same Chromium the package finds, with the closed-network flags."""
    return {**browser_type_launch_args, "executable_path": find_browser().path, "args": list(CHROMIUM_ARGS)}


@pytest.fixture(scope="session", autouse=True)
def _browser_switches(browser_type_launch_args: dict) -> Iterator[None]:
    if browser_type_launch_args.get("headless") is False:
        os.environ["SCRAPER_HEADED"] = "1"
    if browser_type_launch_args.get("slow_mo"):
        os.environ["SCRAPER_SLOW_MO"] = str(browser_type_launch_args["slow_mo"])
    yield


@pytest.fixture(autouse=True)
def _fresh_sessions() -> Iterator[None]:
    """Each test starts with no warm sites (the browsers themselves stay up)."""
    yield
    reset_all(30)


@pytest.fixture
def playwright_server() -> Iterator[str]:
    """A real `playwright run-server` on loopback (`--unsafe` lets the client name the Chromium); its endpoint."""
    with _support.playwright_server() as (_, endpoint):
        yield endpoint


@pytest.fixture(scope="session")
def shared_browser() -> Iterator[str]:
    """One ``scraper browser-server`` per test process, for the command lines and inner test runs whose
    subject is not starting a browser: each connects to it (a context of its own) instead of launching."""
    with _support.browser_server("--port", "0") as (_, endpoint):
        yield endpoint
