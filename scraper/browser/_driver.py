"""Which Playwright speaks to Chromium: Playwright itself, or patchright (the ``stealth`` extra).

Playwright enables the DevTools ``Runtime`` domain on every page, and a page's script can tell
(an object logged to the console has its getters read once more). patchright is a Playwright whose
driver does not, and runs its evaluations in an isolated world unless asked otherwise. Everything
else the package uses is the same API, so the choice is made here and nowhere else:
``driver="patchright"`` / ``SCRAPER_DRIVER=patchright``.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import os
from types import ModuleType
from typing import Any, Literal

from .._extras import import_extra
from ..errors import ConfigError

__all__ = ["DRIVERS", "DriverError", "DriverErrorOrTimeout", "DriverTimeout", "async_api", "driver_name", "in_page"]

DriverName = Literal["playwright", "patchright"]
DRIVERS: tuple[DriverName, ...] = ("playwright", "patchright")


def driver_name(chosen: str | None = None) -> DriverName:
    """The driver asked for (an option, else ``SCRAPER_DRIVER``, else Playwright)."""
    name = (chosen or os.environ.get("SCRAPER_DRIVER") or "playwright").strip().lower()
    if name not in DRIVERS:
        raise ConfigError(f"driver must be one of {', '.join(DRIVERS)}, not {name!r} (SCRAPER_DRIVER or driver=).")
    return name


def async_api(name: DriverName) -> ModuleType:
    """The driver's ``async_api`` module; a clear error when patchright is asked for but not installed."""
    if name == "patchright":
        return import_extra("patchright.async_api", "stealth")
    return importlib.import_module(f"{name}.async_api")


@functools.cache
def _installed() -> tuple[ModuleType, ...]:
    found = []
    for name in DRIVERS:
        try:
            found.append(importlib.import_module(f"{name}.async_api"))
        except ImportError:
            continue
    return tuple(found)


def _errors() -> tuple[type[BaseException], ...]:
    return tuple(module.Error for module in _installed())


def _timeouts() -> tuple[type[BaseException], ...]:
    return tuple(module.TimeoutError for module in _installed())


# ``except DriverError`` catches the errors of every installed driver (their classes differ).
DriverError: tuple[type[BaseException], ...] = _errors()
DriverTimeout: tuple[type[BaseException], ...] = _timeouts()
# What a browser call may raise when the page went away or a step took too long (one tuple, for except).
DriverErrorOrTimeout: tuple[type[BaseException], ...] = (*DriverError, asyncio.TimeoutError)


async def in_page(page: Any, expression: str, arg: Any = None) -> Any:
    """Evaluate in the page's own world (patchright evaluates in an isolated one by default), where the
    package's init script lives and the page's own ``fetch`` is."""
    if type(page).__module__.startswith("patchright"):
        return await page.evaluate(expression, arg, isolated_context=False)
    return await page.evaluate(expression, arg)
