"""Redaction: texts a person reads (log lines, error messages, HTTP answers, debug folder names) with
every secret hidden, by the one rule of :mod:`._secrets`: values in a secret's place, values seen there
before, the password and the secret query values of a URL."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

from ._secrets import _KEY_VALUE, _URL_PARAM, _URL_WITH_USER, KNOWN, secret_kind

__all__ = ["SHOWN", "RedactingFilter", "logger", "redact", "redact_url"]

SHOWN = "[secret]"


def redact_url(url: str) -> str:
    """``url`` with the password of a ``user:password@`` part hidden (the user name stays), and the values
    of its query parameters that hold secrets."""
    if "@" not in url and "?" not in url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        host = parts.hostname or ""
        netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    query = _URL_PARAM.sub(_hide_value, "?" + parts.query)[1:] if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _hide_value(match: re.Match[str]) -> str:
    if not secret_kind(match.group("key")):
        return match.group(0)
    start, end = match.span("value")
    offset = match.start()
    return match.group(0)[: start - offset] + SHOWN + match.group(0)[end - offset :]


def redact(text: str) -> str:
    """``text`` without secrets: values in a secret's place, secrets seen before, URL passwords."""
    if not text:
        return text
    text = _URL_PARAM.sub(_hide_value, _KEY_VALUE.sub(_hide_value, text))
    text = _URL_WITH_USER.sub(lambda m: f"{m.group(1)}{m.group(2)}:***@", text)
    return KNOWN.hide(text, SHOWN)


class RedactingFilter(logging.Filter):
    """Rewrites log records of the ``scraper`` loggers so no secret reaches a log handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()


def logger(name: str) -> logging.Logger:
    """The package's logger ``name``, whose records never show a secret (whatever handler reads them)."""
    log = logging.getLogger(name)
    if _FILTER not in log.filters:
        log.addFilter(_FILTER)
    return log
