"""What is secret, in one place: nonces, session and client ids, tokens, keys, passwords, cookies,
e-mails, IPs. Scrubbing (:mod:`._scrub`, cassettes) and redaction (:mod:`._redact`, logs, messages, file
names) both ask this module and nothing else.

Two ways to find a secret:

* by its **place**: a field, parameter, header or cookie whose name says nonce/session/client id/token/
  key/password (:func:`secret_kind`), wherever it appears (form, JSON, URL query, ``key: "value"``);
* by its **shape**: e-mail and IP addresses, upstream completion ids, the password of a URL.

Values once seen in a secret's place are remembered (:func:`remember`), so a later text that shows one
elsewhere hides it too. The memory is bounded: the most recently seen :data:`KNOWN_LIMIT` values, matched
by one compiled pattern that is rebuilt once per batch of new values, not on every one.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Literal

__all__ = [
    "KINDS",
    "KNOWN",
    "KNOWN_LIMIT",
    "Kind",
    "KnownSecrets",
    "ip_secret",
    "known_values",
    "remember",
    "secret_kind",
    "shorten",
]

Kind = Literal["NONCE", "SESSION", "CLIENT", "AUTH", "ID", "COOKIE", "EMAIL", "IP"]
# When one value is seen in two roles, the first kind in this order names it.
KINDS: tuple[Kind, ...] = ("NONCE", "SESSION", "CLIENT", "AUTH", "ID", "COOKIE", "EMAIL", "IP")
_MIN_FREE_TEXT = 4  # shorter values are replaced only where they were found (a cookie "1" is not hunted down)
_COMMON_WORDS = frozenset({"true", "false", "null", "none", "undefined", "deleted"})
_PLACEHOLDER = re.compile(r"^(?:NONCE|SESSION|CLIENT|AUTH|ID|COOKIE|EMAIL|IP)_\d+$|\{\{")

_Q = r"""\\*["']"""  # a quote, maybe escaped (JSON inside a JSON string)
# A key starts where a word does, and is not longer than names get: matching stays linear on any text
# (an unbounded key would try every suffix of a long run of letters, as minified scripts have).
_KEY_VALUE = re.compile(
    rf"""(?<![\w-])(?:{_Q})?(?P<key>[A-Za-z_][\w-]{{0,63}})(?:{_Q})?\s*[:=]\s*{_Q}(?P<value>[^"'\\\s<>&]+){_Q}"""
)
_URL_PARAM = re.compile(r"""(?:[?&;]|&amp;)(?P<key>[A-Za-z_][\w-]*)=(?P<value>[^&\s"'#<>;]+)""")
_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])", re.ASCII
)
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)", re.ASCII)
_IPV6 = re.compile(
    r"(?<![\w:])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
    r"|(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4})*)?::(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4})*)?)(?![\w:])",
    re.ASCII,
)
_COMPLETION_ID = re.compile(r"\b(?:chatcmpl-|resp_)[A-Za-z0-9]{8,}\b", re.ASCII)
_URL_WITH_USER = re.compile(r"\b([a-z][a-z0-9+.-]*://)([^/\s:@]+)(?::[^/\s@]*)?@", re.I)


_NAMES_OF_THINGS = ("action", "name", "url", "path", "key_name", "field", "label", "text")
# Names of credentials: an access token, an API or cache key, a password.
_CREDENTIALS = ("token", "_key", "-key", "apikey", "password", "passwd", "secret")


def secret_kind(key: str) -> Kind | None:
    """The kind of secret a field, parameter, header or cookie of this name holds, if it holds one.

    A name that says it holds the *name* of something (``nonceRefreshAction``, ``session_name``) is not
    a secret's place: its value is an action or a label, the same for everyone.
    """
    k = key.lower()
    if k.endswith(_NAMES_OF_THINGS):
        return None
    if "nonce" in k or "csrf" in k or k in ("new_token", "_token"):
        return "NONCE"
    if re.search(r"(?:^|[_-])sess|sess(?:ion)?_?id", k) or k == "sid":
        return "SESSION"
    if "client_id" in k or k == "clientid":
        return "CLIENT"
    if k in ("responseid", "response_id"):
        return "ID"
    if k in ("authorization", "proxy-authorization", "apikey", "key", "sig", "signature") or k.endswith(_CREDENTIALS):
        return "AUTH"
    return None


def ip_secret(candidate: str) -> bool:
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return False
    if address.is_loopback or address.is_unspecified:
        return False
    # "a::b" and the like are more likely CSS or code than an address
    return not (address.version == 6 and candidate.count(":") < 3 and max(len(g) for g in candidate.split(":")) < 3)


def shorten(value: Any) -> str:
    """A secret as its first and last two characters and its length: enough to compare, not to use."""
    text = str(value)
    return f"{text[:2]}…{text[-2:]} ({len(text)} chars)" if len(text) > 6 else "…"


KNOWN_LIMIT = 4096  # distinct secret values remembered (the most recently seen)
_BATCH = 64  # new values waiting before the compiled matcher is rebuilt


class KnownSecrets:
    """Secret values seen so far, so a text that shows one anywhere later hides it.

    Bounded (least recently seen values are forgotten beyond ``limit``) and cheap per text: one compiled
    alternation of the known values, rebuilt when ``batch`` new values have come; until then the few
    newest are looked for with plain substring search.
    """

    def __init__(self, limit: int = KNOWN_LIMIT, batch: int = _BATCH) -> None:
        self.limit = limit
        self.batch = batch
        self.rebuilds = 0  # times the matcher was compiled: a long-running process can watch it
        self._values: OrderedDict[str, None] = OrderedDict()
        self._pending: list[str] = []  # known, not yet in the compiled matcher
        self._matcher: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def values(self) -> list[str]:
        with self._lock:
            return list(self._values)

    def add(self, values: Iterable[str]) -> None:
        with self._lock:
            for value in values:
                if value in self._values:
                    self._values.move_to_end(value)
                    continue
                self._values[value] = None
                self._pending.append(value)
            while len(self._values) > self.limit:
                self._values.popitem(last=False)
            if len(self._pending) >= self.batch or (
                self._pending and self._matcher is None and len(self._values) > self.batch
            ):
                self._rebuild()

    def _rebuild(self) -> None:
        known = sorted(self._values, key=len, reverse=True)
        self._matcher = re.compile("|".join(re.escape(v) for v in known)) if known else None
        self._pending = []
        self.rebuilds += 1

    def hide(self, text: str, shown: str) -> str:
        """``text`` with every known value replaced by ``shown``."""
        matcher, pending = self._matcher, self._pending[:]
        if matcher is not None:
            text = matcher.sub(shown, text)
        for value in sorted(pending, key=len, reverse=True):
            if value in text:
                text = text.replace(value, shown)
        return text


KNOWN = KnownSecrets()


def remember(values: Mapping[str, Any]) -> None:
    """Note the secret values among ``values`` (by their keys), so later texts never show them."""
    found = [str(v) for k, v in values.items() if v and secret_kind(str(k)) and len(str(v)) >= _MIN_FREE_TEXT]
    if found:
        KNOWN.add(found)


def known_values() -> list[str]:
    """The remembered secret values, oldest first."""
    return KNOWN.values()
