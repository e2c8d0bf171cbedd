"""The model behind both plugins: what it answers, in which pieces, and how its failures read.

The default reply and its chunking are those of the recorded sites, so a replica stream of the same
message has the same events as the recordings.
"""

from __future__ import annotations

import html
import re
import secrets
import time
from typing import Any

from .config import SiteConfig

__all__ = [
    "DEFAULT_REPLY",
    "FINGERPRINT",
    "MODEL",
    "UPSTREAM_ERROR",
    "completion_id",
    "created",
    "php_trim",
    "reply_pieces",
    "response_id",
    "sanitize_text_field",
    "split_words",
    "usage",
]

MODEL = "gpt-4o-mini"
FINGERPRINT = "fp_wplab"
UPSTREAM_ERROR = "Lab forced upstream error"
DEFAULT_REPLY = "Echo: {message} | Привет, мир! 🙂"
# How the upstream cut the fixed tail of the default reply.
_DEFAULT_TAIL = [" |", " При", "вет", ",", " мир", "!", " 🙂"]
_WORDS = re.compile(r"\s*\S+|\s+$")
_PHP_TRIM = " \t\n\r\0\x0b"
_LESS_THAN = re.compile(r"<[^>]*?((?=<)|>|$)")
_SCRIPT_STYLE = re.compile(r"<(script|style)[^>]*?>.*?</\1>", re.S | re.I)
_TAG = re.compile(r"<[^>]*>")
_RUNS = re.compile(r"[\r\n\t ]+")
_OCTET = re.compile(r"%[a-fA-F0-9]{2}")


def _text(value: Any) -> str:
    """A request value as text (PHP would see a missing value as an empty string)."""
    return value if isinstance(value, str) else "" if value is None else str(value)


def php_trim(value: Any) -> str:
    """PHP's ``trim``: only space, tab, newlines, NUL and vertical tab, not every Unicode space."""
    return _text(value).strip(_PHP_TRIM)


def sanitize_text_field(value: Any) -> str:
    """WordPress's ``sanitize_text_field`` (AI Power runs the message through it): tags out,
    runs of spaces, tabs and newlines made one space, trimmed, percent-encoded octets removed."""
    text = _text(value)
    if "<" in text:
        # a "<" that opens no tag is kept as text (escaped); tags and script/style bodies go
        text = _LESS_THAN.sub(lambda m: m.group(0) if ">" in m.group(0) else html.escape(m.group(0)), text)
        text = _SCRIPT_STYLE.sub("", text)
        text = _TAG.sub("", text).replace("<\n", "&lt;\n")
    text = _RUNS.sub(" ", text).strip(_PHP_TRIM)
    if _OCTET.search(text):
        text = _OCTET.sub("", text)
        text = re.sub(r" +", " ", text).strip(_PHP_TRIM)
    return text


def split_words(text: str) -> list[str]:
    """Word-sized pieces, each with the whitespace before it, that join back to ``text`` exactly."""
    return _WORDS.findall(text)


def reply_pieces(config: SiteConfig, message: str) -> list[str]:
    """The reply to ``message`` as the stream's content pieces (joined, they are the full reply)."""
    if config.reply_events is not None:
        return [f"w{i} " for i in range(max(0, config.reply_events))]
    if config.reply is not None:
        return split_words(config.reply.replace("{message}", message))
    return ["Echo", ":", *split_words(" " + message), *_DEFAULT_TAIL]


def completion_id() -> str:
    """An id in the shape the recorded upstream used."""
    return "chatcmpl-lab" + secrets.token_hex(6)


def response_id() -> str:
    """A Responses-API id in the shape the recorded upstream used (what AIPKit relays as ``response_id``)."""
    return "resp_lab" + secrets.token_hex(12)


def created() -> int:
    """The ``created`` timestamp of a completion."""
    return int(time.time())


def usage(reply: str) -> dict[str, Any]:
    """AI Engine's estimated usage block (about four characters a token)."""
    tokens = max(1, len(reply) // 4)
    return {
        "prompt_tokens": tokens,
        "completion_tokens": tokens,
        "total_tokens": tokens * 2,
        "price": None,
        "queries": 1,
        "accuracy": "estimated",
    }
