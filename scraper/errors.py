"""The one exception tree of ``scraper``.

Everything the package raises derives from :class:`ScraperError`, so a caller can catch one class;
the subclasses say what went wrong, and each message says what to try next. Each class also knows
the HTTP status ``scraper serve`` answers with when it ends a request (``http_status``).

::

    ScraperError
    ├── ConfigError (ValueError)            an option or environment value is not usable     400
    │   ├── MissingExtraError (ImportError) an optional extra is not installed (says which)
    │   └── InputTooLongError               a message is longer than the site's input limit
    ├── BotNotFoundError (LookupError)      no bot of that id or name on the page             404
    ├── ModelNotSupportedError (ValueError) the provider does not offer the model             404
    ├── BrowserError                        the browser itself                                503
    │   ├── BrowserNotFoundError            no Chromium could be found
    │   ├── BrowserLaunchError              a Chromium was found but would not start
    │   └── BrowserCrashedError             the page or the browser died; the next chat starts afresh
    ├── ChallengeError                      an anti-bot page did not clear (or blocks outright) 503
    ├── PageError (RuntimeError)            the page is not a chat page we understand          502
    │   └── MissingTokenError               the post id or the nonce is missing
    ├── TransportError                      the request failed in the browser (network, CORS)  502
    ├── HTTPError                           the site answered with an HTTP error status        502
    │   └── NonceError                      the site kept rejecting the nonce, even a fresh one
    ├── SiteError                           the chat plugin reported an error (limit, upstream) 502
    │   └── RateLimitError                  the site said "too many messages, wait"           429
    ├── StreamError                         the reply stream broke or ended before its end      502
    ├── ScraperTimeoutError (TimeoutError)  a step took longer than the timeout allows         504
    ├── BusyError                           too many chats at once; try again shortly          429
    │   ├── SiteBudgetError                 the site's budget of chats a minute is spent       429
    │   └── ConversationBusyError           another turn of the conversation runs still        429
    ├── StateUnavailableError               the shared state store (Redis) does not answer     503
    ├── AuthenticationError                 ``scraper serve`` wants an API key it was not given 401
    └── CassetteError                       a cassette is missing, unreadable or not writable  500
"""

from __future__ import annotations

import html
import re
from typing import ClassVar

__all__ = [
    "AuthenticationError",
    "BotNotFoundError",
    "BrowserCrashedError",
    "BrowserError",
    "BrowserLaunchError",
    "BrowserNotFoundError",
    "BusyError",
    "CassetteError",
    "ChallengeError",
    "ConfigError",
    "ConversationBusyError",
    "HTTPError",
    "InputTooLongError",
    "MissingExtraError",
    "MissingTokenError",
    "ModelNotSupportedError",
    "NonceError",
    "PageError",
    "RateLimitError",
    "ScraperError",
    "ScraperTimeoutError",
    "SiteBudgetError",
    "SiteError",
    "StateUnavailableError",
    "StreamError",
    "TransportError",
    "excerpt",
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
    """Base class of every error ``scraper`` raises.

    ``artifacts`` lists files kept for debugging (screenshot, page HTML, trace) when the failure
    happened with a page open; their paths are also at the end of the message.
    """

    http_status: ClassVar[int] = 500
    code: ClassVar[str | None] = None  # the error code OpenAI's API has for it, where it has one
    artifacts: tuple[str, ...] = ()

    def add_artifacts(self, paths: list[str]) -> None:
        """Attach debug files to this error and name them in its message."""
        if not paths:
            return
        self.artifacts = (*self.artifacts, *paths)
        if self.args and isinstance(self.args[0], str):
            self.args = (f"{self.args[0]} [kept for debugging: {', '.join(paths)}]", *self.args[1:])


class ConfigError(ScraperError, ValueError):
    """An option, argument or environment value cannot be used as given."""

    http_status = 400


class MissingExtraError(ConfigError, ImportError):
    """An optional extra (``serve``, ``stealth``, ``direct``) is not installed; the message is the pip line."""

    def __init__(self, message: str, *, extra: str) -> None:
        super().__init__(message)
        self.extra = extra


class InputTooLongError(ConfigError):
    """A message is longer than the chat box takes (its page declares the limit): refused before
    anything is sent, since the site would only answer with an opaque refusal."""

    code = "context_length_exceeded"

    def __init__(self, message: str, *, limit: int, length: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.length = length


class BotNotFoundError(ScraperError, LookupError):
    """The page has no bot with the id or name asked for; the message lists the bots it has."""

    http_status = 404


class ModelNotSupportedError(ScraperError, ValueError):
    """The provider does not offer the requested model."""

    http_status = 404


class BrowserError(ScraperError):
    """The browser could not be found, started, reached, or it died."""

    http_status = 503


class BrowserNotFoundError(BrowserError):
    """No usable Chromium on this machine."""


class BrowserLaunchError(BrowserError):
    """A Chromium was found but failed to start or to connect."""


class BrowserCrashedError(BrowserError):
    """The page's renderer or the whole browser died during a chat; the next chat starts a new one."""


class ChallengeError(ScraperError):
    """An anti-bot page stood in the way and did not clear; the message says what to do.

    ``screenshot`` and ``html`` are paths of what the browser showed at that moment.
    """

    http_status = 503

    def __init__(self, message: str, *, vendor: str, kind: str, url: str) -> None:
        super().__init__(message)
        self.vendor = vendor
        self.kind = kind
        self.url = url
        self.screenshot: str | None = None
        self.html: str | None = None


class PageError(ScraperError, RuntimeError):
    """The page loaded, but it is not the chat page the plugin expects."""

    http_status = 502

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class MissingTokenError(PageError):
    """The page lacks the post id or the nonce the chat request needs."""


class TransportError(ScraperError):
    """The in-page request failed before an HTTP status arrived."""

    http_status = 502


class HTTPError(ScraperError):
    """The site answered a request with an error status."""

    http_status = 502

    def __init__(self, message: str, *, status: int, url: str, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.body = body


class NonceError(HTTPError):
    """The site rejected the nonce again after one refresh."""


class SiteError(ScraperError):
    """The chat plugin answered with an error of its own (limit reached, flagged, upstream failure)."""

    http_status = 502

    def __init__(self, message: str, *, kind: str = "error", status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


class RateLimitError(SiteError):
    """The site refused the message for now (too many from this visitor): wait ``retry_after`` seconds
    (None when the site does not say) and try again."""

    http_status = 429

    def __init__(
        self, message: str, *, kind: str = "rate_limited", status: int | None = 429, retry_after: float | None = None
    ) -> None:
        super().__init__(message, kind=kind, status=status)
        self.retry_after = retry_after


class StreamError(ScraperError):
    """The reply stream broke, or ended without the plugin's terminator: the reply is incomplete.

    ``received`` holds the text that did arrive, so nothing is lost silently.
    """

    http_status = 502

    def __init__(self, message: str, *, received: str = "") -> None:
        super().__init__(message)
        self.received = received


class ScraperTimeoutError(ScraperError, TimeoutError):
    """A step took longer than the timeout allows."""

    http_status = 504


class BusyError(ScraperError):
    """More chats at once than the configured bound, and no slot came free in time."""

    http_status = 429


class SiteBudgetError(BusyError):
    """The server's budget of chats a minute with this site (``--site-rate``) is spent, and no chat of
    it ends its window within the queue timeout: try again in ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConversationBusyError(BusyError):
    """Another turn of the same conversation (on this server or another sharing its state) still runs,
    and did not end within the queue timeout: a conversation's turns run one at a time."""


class StateUnavailableError(ScraperError):
    """The shared state store (``--state redis://...``) did not answer within its socket timeout; the
    request ends at once instead of hanging, and the next one tries the store again."""

    http_status = 503


class AuthenticationError(ScraperError):
    """``scraper serve`` was started with an API key, and the request carried none or another one."""

    http_status = 401


class CassetteError(ScraperError):
    """A cassette is missing, unreadable or of another format, or cannot be written."""
