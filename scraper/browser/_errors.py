"""Playwright's errors, mapped once to the package's own tree.

A caller never sees a raw Playwright error: a crashed renderer or a closed browser becomes
:class:`~scraper.BrowserCrashedError` (the next chat starts a new page or browser), a Playwright
timeout a :class:`~scraper.ScraperTimeoutError`, anything else a :class:`~scraper.TransportError`.
"""

from __future__ import annotations

from ..errors import BrowserCrashedError, ScraperError, ScraperTimeoutError, TransportError

__all__ = ["first_line", "is_gone", "playwright_error"]

_CRASHED = ("target crashed", "page crashed", "renderer crashed")
_GONE = (
    "target closed",
    "target page, context or browser has been closed",
    "browser has been closed",
    "browser closed",
    "context closed",
    "connection closed",
    "has been closed",
    "browser has disconnected",
    "websocket closed",
)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_gone(exc: BaseException) -> bool:
    """True when ``exc`` says the page, its renderer or the browser is no more."""
    text = str(exc).lower()
    return type(exc).__name__ == "TargetClosedError" or any(s in text for s in _CRASHED + _GONE)


def playwright_error(exc: BaseException, doing: str) -> ScraperError:
    """The package's error for a Playwright error met while ``doing`` something (for the message)."""
    if isinstance(exc, ScraperError):
        return exc
    line = first_line(exc)
    lowered = str(exc).lower()
    if any(s in lowered for s in _CRASHED):
        return BrowserCrashedError(
            f"The page crashed while {doing} ({line}). The next chat opens a new page; try again."
        )
    if is_gone(exc):
        return BrowserCrashedError(
            f"The browser or its page closed while {doing} ({line}). The next chat starts it again; try again."
        )
    if type(exc).__name__ == "TimeoutError":
        return ScraperTimeoutError(f"Timed out while {doing} ({line}). Try again, or raise timeout=.")
    return TransportError(f"The browser failed while {doing}: {line}.")
