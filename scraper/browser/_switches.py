"""Chromium features switched off besides the driver's own: the address bar's hidden popups.

Every browser context (every warm site) gets a renderer process of its own for the address bar's popups
(``chrome://omnibox-popup.top-chrome/`` and its AI-mode page), though no page ever shows them: about
35 MB and a process per warm site, and CPU each time a context starts. Only switching off both
``WebUIOmniboxPopup`` and ``WebUIOmniboxAimPopup`` removes it; nothing of it is visible to a page.

Chromium takes only the last ``--disable-features`` it is given, and the driver passes a list of its
own that changes from release to release. So one switch is added last, holding the driver's list, the
caller's and these. The driver's list is read once from the command line of a browser it launched
(``/proc``, Linux), and kept per driver version in the user's cache directory; where it cannot be
read, nothing is added and the browser runs as the driver starts it.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import secrets
import sys
import threading
from collections.abc import Sequence
from typing import Any

from ..wire import logger
from ._memory import tree_pids
from ._profiles import cache_dir

__all__ = ["LEAN_FEATURES", "disabled_features", "lean_switches", "lean_switches_blocking"]

log = logger("scraper.browser")

LEAN_FEATURES = ("WebUIOmniboxPopup", "WebUIOmniboxAimPopup")
_SWITCH = "--disable-features="
_known: dict[str, list[str]] = {}  # the driver's own list, by driver and version


def disabled_features(argv: Sequence[str]) -> list[list[str]]:
    """Each ``--disable-features`` list of a command line, in order."""
    return [[name for name in arg[len(_SWITCH) :].split(",") if name] for arg in argv if arg.startswith(_SWITCH)]


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [part.decode("utf-8", "replace") for part in fh.read().split(b"\0") if part]
    except OSError:
        return []


def _cache_file() -> str:
    return str(cache_dir("chromium-features.json"))


def _read_cache() -> dict[str, list[str]]:
    try:
        with open(_cache_file(), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, list)} if isinstance(data, dict) else {}


def _write_cache(key: str, features: list[str]) -> None:
    data = {**_read_cache(), key: features}
    path = _cache_file()
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(path + ".tmp", "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(path + ".tmp", path)
    except OSError as exc:  # a read-only home: the list is read again next time
        log.debug("could not keep the driver's Chromium features in %s: %s", path, exc)


async def _learn(chromium: Any, executable: str, args: Sequence[str]) -> list[str] | None:
    """The driver's own ``--disable-features`` list, from a browser it launches for a moment."""
    marker = f"--scraper-probe={secrets.token_hex(8)}"  # an unknown switch: Chromium ignores it
    browser = await chromium.launch(executable_path=executable, headless=True, args=[*args, marker])
    try:
        for pid in tree_pids():
            argv = _cmdline(pid)
            if marker in argv:  # the browser itself (its child processes rewrite their command line)
                lists = disabled_features(argv[: argv.index(marker)])
                return lists[0] if lists else []
        return None
    finally:
        await browser.close()


def _key(driver: str) -> str | None:
    if not sys.platform.startswith("linux") or os.environ.get("SCRAPER_LEAN_BROWSER", "1") == "0":
        return None
    try:
        return f"{driver} {importlib.metadata.version(driver)}"
    except importlib.metadata.PackageNotFoundError:
        return None


def _switch(own: list[str], args: Sequence[str]) -> list[str]:
    names = [*own, *(name for listed in disabled_features(args) for name in listed), *LEAN_FEATURES]
    return [_SWITCH + ",".join(dict.fromkeys(names))]


async def lean_switches(chromium: Any, driver: str, executable: str, args: Sequence[str]) -> list[str]:
    """What to add last to a local launch with ``args``: one ``--disable-features`` holding the driver's
    list, those in ``args`` and :data:`LEAN_FEATURES`; nothing where the driver's list cannot be read
    (not Linux, or ``SCRAPER_LEAN_BROWSER=0``)."""
    key = _key(driver)
    if key is None:
        return []
    own = _known.get(key)
    if own is None:
        own = _read_cache().get(key)
    if own is None:
        own = await _learn(chromium, executable, args)
        if own is None:
            log.debug("could not read the Chromium features %s switches off; adding none", driver)
            return []
        _write_cache(key, own)
    _known[key] = own
    return _switch(own, args)


def lean_switches_blocking(driver: str, executable: str, args: Sequence[str]) -> list[str]:
    """:func:`lean_switches` for code with no event loop of its own (a browser server's launch config);
    the driver is started only when its list is not known yet."""
    key = _key(driver)
    if key is None:
        return []
    own = _known.get(key) or _read_cache().get(key)
    if own is not None:
        _known[key] = own
        return _switch(own, args)
    found: list[list[str]] = []

    async def learn() -> list[str]:
        from ._driver import async_api

        playwright = await async_api(driver).async_playwright().start()  # type: ignore[arg-type]
        try:
            return await lean_switches(playwright.chromium, driver, executable, args)
        finally:
            await playwright.stop()

    # its own thread: the caller may be inside an event loop
    worker = threading.Thread(target=lambda: found.append(asyncio.run(learn())), daemon=True)
    worker.start()
    worker.join()
    return found[0] if found else []
