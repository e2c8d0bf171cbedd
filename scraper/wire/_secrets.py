"""What is secret, in one place: nonces, session and client ids, cookies, credentials, e-mails, IPs.

Everything that writes what a site sent somewhere a person may share (cassettes, debug files,
``scraper inspect``, logs) asks this module. Two ways to find a secret:

* by its **place**: a field, parameter, header or cookie whose name says nonce/session/client id/auth
  (:func:`secret_kind`), wherever it appears (form, JSON, URL query, ``key: "value"`` in a script);
* by its **shape**: e-mail and IP addresses, upstream completion ids.

:class:`Scrubber` finds the secrets of a whole flow first, then replaces each distinct value by one
placeholder everywhere (``NONCE_1``...), also URL-encoded, JSON- and HTML-escaped. :func:`redact`
is the one-pass form for a single text (log lines, messages), and :func:`shorten` is how a secret is
shown to a person: enough to compare two values, not to use one.
"""

from __future__ import annotations

import html
import ipaddress
import itertools
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal
from urllib.parse import quote, quote_plus, unquote, urlsplit, urlunsplit

__all__ = [
    "KINDS",
    "Kind",
    "RedactingFilter",
    "Scrubber",
    "redact",
    "redact_url",
    "remember",
    "scrub_page",
    "secret_kind",
    "shorten",
]

Kind = Literal["NONCE", "SESSION", "CLIENT", "AUTH", "ID", "COOKIE", "EMAIL", "IP"]
# When one value is seen in two roles, the first kind in this order names it.
KINDS: tuple[Kind, ...] = ("NONCE", "SESSION", "CLIENT", "AUTH", "ID", "COOKIE", "EMAIL", "IP")
_MIN_FREE_TEXT = 4  # shorter values are replaced only where they were found (a cookie "1" is not hunted down)
_COMMON_WORDS = frozenset({"true", "false", "null", "none", "undefined", "deleted"})
_PLACEHOLDER = re.compile(r"^(?:NONCE|SESSION|CLIENT|AUTH|ID|COOKIE|EMAIL|IP)_\d+$|\{\{")
FIXED_EPOCH = 1_700_000_000  # what volatile epoch times become (2023-11-14T22:13:20Z)

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
_EPOCH = re.compile(
    r"""(?P<key>\\*["']?(?:created|created_at|updated_at|timestamp|time)\\*["']?\s*[:=]\s*)(?P<num>\d{13}|\d{10})(?!\d)""",
    re.ASCII,
)


_NAMES_OF_THINGS = ("action", "name", "url", "path", "key_name", "field", "label", "text")


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
    if k in ("authorization", "proxy-authorization", "access_token", "api_key", "apikey"):
        return "AUTH"
    return None


def _ip_secret(candidate: str) -> bool:
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return False
    if address.is_loopback or address.is_unspecified:
        return False
    # "a::b" and the like are more likely CSS or code than an address
    return not (address.version == 6 and candidate.count(":") < 3 and max(len(g) for g in candidate.split(":")) < 3)


def _variants(value: str) -> set[str]:
    """The ways a value shows up: raw, URL-encoded, JSON-escaped, HTML-escaped."""
    found = {value, quote(value, safe=""), quote_plus(value), quote(value, safe="/:@")}
    dumped = json.dumps(value, ensure_ascii=False)[1:-1]
    found |= {dumped, dumped.replace("/", "\\/"), json.dumps(value)[1:-1], html.escape(value, quote=True)}
    return {v for v in found if v}


def _origin_forms(origin: str) -> dict[str, str]:
    """The recorded origin as it appears in pages and bodies, and the placeholder for each form."""
    forms = {
        origin: "{{origin}}",
        origin.replace("/", "\\/"): "{{origin_json}}",
        quote(origin, safe=""): "{{origin_url}}",
        quote(origin, safe="").replace("%3A", "%3a").replace("%2F", "%2f"): "{{origin_url}}",
    }
    netloc = urlsplit(origin).netloc
    if urlsplit(origin).port is not None:  # host:port is unambiguous; a bare domain would hit prose
        forms[netloc] = "{{host}}"
    return forms


def origin_values(origin: str) -> dict[str, str]:
    """Placeholder -> text, to put an origin back in place of the placeholders."""
    return {
        "{{origin}}": origin,
        "{{origin_json}}": origin.replace("/", "\\/"),
        "{{origin_url}}": quote(origin, safe=""),
        "{{host}}": urlsplit(origin).netloc,
    }


def _map_cut(cut: int, spans: list[tuple[int, int, int]]) -> int:
    """Where a chunk boundary lands after replacements (inside a replaced value: after its placeholder)."""
    delta = 0
    for start, end, length in spans:
        if cut <= start:
            break
        if cut < end:
            return start + delta + length
        delta += length - (end - start)
    return cut + delta


def _sub_tracking(
    pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str], text: str, cuts: list[int]
) -> tuple[str, list[int]]:
    """``pattern.sub`` that also moves chunk boundaries along with the text."""
    spans: list[tuple[int, int, int]] = []
    parts: list[str] = []
    last = 0
    for match in pattern.finditer(text):
        replacement = replace(match)
        parts.append(text[last : match.start()])
        parts.append(replacement)
        spans.append((match.start(), match.end(), len(replacement)))
        last = match.end()
    if not spans:
        return text, cuts
    parts.append(text[last:])
    return "".join(parts), [_map_cut(c, spans) for c in cuts]


def _normalise_epoch(match: re.Match[str]) -> str:
    number = FIXED_EPOCH * 1000 if len(match.group("num")) == 13 else FIXED_EPOCH
    return f"{match.group('key')}{number}"


class Scrubber:
    """Finds the secrets of one flow, names them, and rewrites every text of the flow without them.

    First every text is shown to a ``discover_*`` method (in recorded order, which fixes the
    numbering), then :meth:`finish` names the values, then the rewriting methods apply.
    """

    def __init__(self, origin: str) -> None:
        self.origin = origin.rstrip("/")
        self._kind: dict[str, Kind] = {}
        self._order: list[str] = []
        self._names: dict[str, str] = {}
        self._text_map: dict[str, str] = {}
        self._text_re: re.Pattern[str] | None = None
        self._bytes_map: dict[str, str] = {}
        self._bytes_re: re.Pattern[str] | None = None

    # -- discovery ------------------------------------------------------------------------------
    def note(self, value: str | None, kind: Kind) -> None:
        """A secret value seen in the flow."""
        if not value or _PLACEHOLDER.search(value) or value.lower() in _COMMON_WORDS:
            return
        if self._names:
            raise RuntimeError("Scrubber.note() after finish()")
        current = self._kind.get(value)
        if current is None:
            self._order.append(value)
            self._kind[value] = kind
        elif KINDS.index(kind) < KINDS.index(current):
            self._kind[value] = kind

    def discover_text(self, text: str | None) -> None:
        """Secrets in free text: ``nonce``/session/client fields, URL parameters, e-mails, IPs, ids."""
        if not text:
            return
        for match in _KEY_VALUE.finditer(text):
            kind = secret_kind(match.group("key"))
            if kind is not None and "://" not in match.group("value") and "/" not in match.group("value"):
                self.note(match.group("value"), kind)
        for match in _URL_PARAM.finditer(text):
            kind = secret_kind(match.group("key"))
            if kind is not None:
                self.note(unquote(match.group("value")), kind)
        for match in _COMPLETION_ID.finditer(text):
            self.note(match.group(0), "ID")
        for match in _EMAIL.finditer(text):
            self.note(unquote(match.group(0)), "EMAIL")
        for pattern in (_IPV4, _IPV6):
            for match in pattern.finditer(text):
                if _ip_secret(match.group(0)):
                    self.note(match.group(0), "IP")

    def discover_cookie_header(self, value: str) -> None:
        for name, cookie in _cookie_pairs(value):
            self.note(cookie, secret_kind(name) or "COOKIE")

    def discover_set_cookie(self, value: str) -> None:
        name, _, rest = value.partition("=")
        cookie = rest.split(";", 1)[0].strip()
        self.note(cookie, secret_kind(name.strip()) or "COOKIE")
        self.discover_text(rest.partition(";")[2])

    def discover_header(self, name: str, value: str) -> None:
        lower = name.lower()
        if lower == "cookie":
            self.discover_cookie_header(value)
        elif lower == "set-cookie":
            self.discover_set_cookie(value)
        elif lower in ("authorization", "proxy-authorization"):
            self.note(value, "AUTH")
            token = value.partition(" ")[2]
            if token.strip():
                self.note(token.strip(), "AUTH")
        elif lower == "x-wp-nonce":
            self.note(value.strip(), "NONCE")
        else:
            self.discover_text(value)

    def discover_form(self, pairs: Iterable[tuple[str, str]]) -> None:
        for name, value in pairs:
            kind = secret_kind(name)
            if kind is not None:
                self.note(value, kind)
            self.discover_text(value)

    def discover_json(self, value: Any, key: str | None = None) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                self.discover_json(v, str(k))
        elif isinstance(value, list):
            for item in value:
                self.discover_json(item, key)
        elif isinstance(value, str):
            kind = secret_kind(key) if key else None
            if kind is not None:
                self.note(value, kind)
            self.discover_text(value)

    # -- naming ---------------------------------------------------------------------------------
    def finish(self) -> None:
        """Name every value (``KIND_n``, numbered by first appearance) and build the rewriters."""
        counters: dict[str, int] = {}
        for value in self._order:
            kind = self._kind[value]
            counters[kind] = counters.get(kind, 0) + 1
            self._names[value] = f"{kind}_{counters[kind]}"
        text_map: dict[str, str] = {}
        for value in sorted(self._names, key=len, reverse=True):
            if len(value) < _MIN_FREE_TEXT:
                continue
            for variant in _variants(value):
                text_map.setdefault(variant, self._names[value])
        for form, placeholder in _origin_forms(self.origin).items():
            text_map[form] = placeholder  # the origin wins over anything found inside it
        self._text_map = text_map
        self._text_re = _alternation(text_map)
        self._bytes_map = {k.encode("utf-8").decode("latin-1"): v for k, v in text_map.items()}
        self._bytes_re = _alternation(self._bytes_map)

    @property
    def placeholders(self) -> list[str]:
        """The placeholder names in use, by kind then number (the values are never listed)."""
        names = list(self._names.values())
        return sorted(names, key=lambda n: (KINDS.index(n.rsplit("_", 1)[0]), int(n.rsplit("_", 1)[1])))

    # -- rewriting ------------------------------------------------------------------------------
    def text(self, value: str) -> str:
        """Free text with every known secret and the origin replaced."""
        if self._text_re is None or not value:
            return value
        return self._text_re.sub(lambda m: self._text_map[m.group(0)], value)

    def field(self, value: str) -> str:
        """A value found in a secret's own place: its placeholder whatever its length, else as text."""
        return self._names.get(value) or self.text(value)

    def page(self, value: str) -> str:
        return self.text(_EPOCH.sub(_normalise_epoch, value))

    def body(self, chunks: list[bytes]) -> list[bytes]:
        """A response body rewritten as a whole, cut again where it was cut on the wire.

        A boundary inside a replaced value moves to the end of its placeholder.
        """
        if not chunks:
            return []
        view = b"".join(chunks).decode("latin-1")
        cuts: list[int] = []
        at = 0
        for chunk in chunks[:-1]:
            at += len(chunk)
            cuts.append(at)
        view, cuts = _sub_tracking(_EPOCH, _normalise_epoch, view, cuts)
        if self._bytes_re is not None:
            view, cuts = _sub_tracking(self._bytes_re, lambda m: self._bytes_map[m.group(0)], view, cuts)
        data = view.encode("latin-1")
        bounds = [0, *cuts, len(data)]
        return [data[a:b] for a, b in itertools.pairwise(bounds)]

    def cookie_header(self, value: str) -> str:
        return "; ".join(f"{name}={self.field(cookie)}" for name, cookie in _cookie_pairs(value))

    def set_cookie(self, value: str) -> str:
        name, _, rest = value.partition("=")
        cookie, sep, attributes = rest.partition(";")
        return f"{name}={self.field(cookie.strip())}{sep}{self.text(attributes)}"

    def header(self, name: str, value: str) -> str:
        lower = name.lower()
        if lower == "cookie":
            return self.cookie_header(value)
        if lower == "set-cookie":
            return self.set_cookie(value)
        if lower in ("authorization", "proxy-authorization", "x-wp-nonce"):
            return self.field(value.strip())
        return self.text(value)

    def form(self, pairs: Iterable[tuple[str, str]]) -> list[list[str]]:
        return [[name, self.field(value) if secret_kind(name) else self.text(value)] for name, value in pairs]

    def json_value(self, value: Any, path: tuple[str | int, ...] = ()) -> Any:
        if isinstance(value, dict):
            return {k: self.json_value(v, (*path, str(k))) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json_value(v, (*path, i)) for i, v in enumerate(value)]
        if isinstance(value, str):
            key = next((p for p in reversed(path) if isinstance(p, str)), None)
            return self.field(value) if key and secret_kind(key) else self.text(value)
        return value


def _alternation(mapping: dict[str, str]) -> re.Pattern[str] | None:
    if not mapping:
        return None
    return re.compile("|".join(re.escape(k) for k in sorted(mapping, key=len, reverse=True)))


def _cookie_pairs(header: str) -> list[tuple[str, str]]:
    pairs = []
    for piece in header.split(";"):
        name, sep, value = piece.strip().partition("=")
        if sep and name:
            pairs.append((name, value))
    return pairs


# -- one-pass redaction: log lines, messages, pages kept for debugging ----------------------------------

_SHOWN = "[secret]"
_known: set[str] = set()
_known_lock = threading.Lock()
_known_re: re.Pattern[str] | None = None
_URL_WITH_USER = re.compile(r"\b([a-z][a-z0-9+.-]*://)([^/\s:@]+)(?::[^/\s@]*)?@", re.I)


def shorten(value: Any) -> str:
    """A secret as its first and last two characters and its length: enough to compare, not to use."""
    text = str(value)
    return f"{text[:2]}…{text[-2:]} ({len(text)} chars)" if len(text) > 6 else "…"


def redact_url(url: str) -> str:
    """``url`` with the password of a ``user:password@`` part hidden (the user name stays)."""
    if "@" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def remember(values: Mapping[str, Any]) -> None:
    """Note the secret values among ``values`` (by their keys), so later log lines never show them."""
    global _known_re
    found = {str(v) for k, v in values.items() if v and secret_kind(str(k)) and len(str(v)) >= _MIN_FREE_TEXT}
    with _known_lock:
        if found <= _known:
            return
        _known.update(found)
        _known_re = re.compile("|".join(re.escape(v) for v in sorted(_known, key=len, reverse=True)))


def redact(text: str) -> str:
    """``text`` without secrets: values in a secret's place, secrets seen before, URL passwords."""
    if not text:
        return text

    def hide(match: re.Match[str]) -> str:
        if not secret_kind(match.group("key")):
            return match.group(0)
        start, end = match.span("value")
        offset = match.start()
        return match.group(0)[: start - offset] + _SHOWN + match.group(0)[end - offset :]

    text = _URL_PARAM.sub(hide, _KEY_VALUE.sub(hide, text))
    text = _URL_WITH_USER.sub(lambda m: f"{m.group(1)}{m.group(2)}:***@", text)
    pattern = _known_re
    return pattern.sub(_SHOWN, text) if pattern is not None else text


def scrub_page(html_text: str, origin: str, *, extra: Iterable[str] = (), cookies: Iterable[str] = ()) -> str:
    """A page (or any document) with every secret it holds replaced by a placeholder, as a cassette
    would have it; ``extra`` and ``cookies`` are values known to be secret from elsewhere."""
    scrubber = Scrubber(origin)
    scrubber.discover_text(html_text)
    with _known_lock:
        known = list(_known)
    for kind, values in (("COOKIE", cookies), ("NONCE", [*extra, *known])):
        for value in values:
            if value and value in html_text:
                scrubber.note(value, kind)  # type: ignore[arg-type]
    scrubber.discover_text(html.unescape(html_text))
    scrubber.finish()
    return scrubber.page(html_text)


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
