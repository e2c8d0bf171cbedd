"""The one exception tree of ``scraper``.

Everything the package raises on purpose derives from :class:`ScraperError`, so a caller can catch
one class; the subclasses say what went wrong, and each message says what to try next.

::

    ScraperError
    ├── BrowserNotFoundError        no Chromium could be found
    ├── BrowserLaunchError          a Chromium was found but would not start
    ├── ChallengeError              an anti-bot page did not clear (or blocks outright)
    ├── PageError (RuntimeError)    the page is not a chat page we understand
    │   └── MissingTokenError       the post id or the nonce is missing
    ├── TransportError              the request failed in the browser (network, CORS, navigation)
    ├── HTTPError                   the site answered with an HTTP error status
    │   └── NonceError              the site kept rejecting the nonce, even a fresh one
    ├── SiteError                   the chat plugin reported an error (limit, ban, upstream failure)
    ├── StreamError                 the reply stream broke or ended before its terminator
    ├── ScraperTimeoutError (TimeoutError)
    └── ModelNotSupportedError (ValueError)
"""

from __future__ import annotations

import html
import re

__all__ = [
    "BrowserLaunchError",
    "BrowserNotFoundError",
    "ChallengeError",
    "HTTPError",
    "MissingTokenError",
    "ModelNotSupportedError",
    "NonceError",
    "PageError",
    "ScraperError",
    "ScraperTimeoutError",
    "SiteError",
    "StreamError",
    "TransportError",
]

_EXCERPT = 300


_HTML = re.compile(r"^\s*(<!doctype html|<html|<head|<body)", re.I)
_INVISIBLE = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.I | re.S)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.I | re.S)
_TAG = re.compile(r"<[^>]+>")


def excerpt(text: str | bytes | None, limit: int = _EXCERPT) -> str:
    """A short single-line view of a body, for error messages; an HTML page shows its title and text."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if _HTML.match(text):
        title = _TITLE.search(text)
        visible = html.unescape(_TAG.sub(" ", _INVISIBLE.sub(" ", text)))
        text = (f"[{html.unescape(title.group(1)).strip()}] " if title else "") + visible
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ScraperError(Exception):
    """Base class of every error ``scraper`` raises on purpose.

    ``artifacts`` lists files kept for debugging (screenshot, page HTML, trace) when the failure
    happened with a page open; their paths are also at the end of the message.
    """

    artifacts: tuple[str, ...] = ()

    def add_artifacts(self, paths: list[str]) -> None:
        """Attach debug files to this error and name them in its message."""
        if not paths:
            return
        self.artifacts = (*self.artifacts, *paths)
        if self.args and isinstance(self.args[0], str):
            self.args = (f"{self.args[0]} [kept for debugging: {', '.join(paths)}]", *self.args[1:])


class BrowserNotFoundError(ScraperError):
    """No usable Chromium on this machine."""


class BrowserLaunchError(ScraperError):
    """A Chromium was found but failed to start or to connect."""


class ChallengeError(ScraperError):
    """An anti-bot page stood in the way and did not clear; the message says what to do.

    ``screenshot`` and ``html`` are paths of what the browser showed at that moment.
    """

    def __init__(self, message: str, *, vendor: str, kind: str, url: str) -> None:
        super().__init__(message)
        self.vendor = vendor
        self.kind = kind
        self.url = url
        self.screenshot: str | None = None
        self.html: str | None = None


class PageError(ScraperError, RuntimeError):
    """The page loaded, but it is not the chat page the plugin expects."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class MissingTokenError(PageError):
    """The page lacks the post id or the nonce the chat request needs."""


class TransportError(ScraperError):
    """The in-page request failed before an HTTP status arrived."""


class HTTPError(ScraperError):
    """The site answered the chat request with an error status."""

    def __init__(self, message: str, *, status: int, url: str, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.body = body


class NonceError(HTTPError):
    """The site rejected the nonce again after one refresh."""


class SiteError(ScraperError):
    """The chat plugin answered with an error of its own (limit reached, flagged, upstream failure)."""

    def __init__(self, message: str, *, kind: str = "error", status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


class StreamError(ScraperError):
    """The reply stream broke, or ended without the plugin's terminator: the reply is incomplete."""

    def __init__(self, message: str, *, received: str = "") -> None:
        super().__init__(message)
        self.received = received


class ScraperTimeoutError(ScraperError, TimeoutError):
    """A step took longer than the timeout allows."""


class ModelNotSupportedError(ScraperError, ValueError):
    """The provider does not offer the requested model."""
