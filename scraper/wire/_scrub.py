"""Scrubbing a recorded flow (cassettes, kept pages): every secret the one rule of :mod:`._secrets` finds
is replaced by a stable placeholder (``NONCE_1``...) everywhere, also URL-encoded, JSON- and HTML-escaped,
so a recording can be shared and replayed."""

from __future__ import annotations

import html
import itertools
import json
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

from ._secrets import (
    _COMMON_WORDS,
    _COMPLETION_ID,
    _EMAIL,
    _IPV4,
    _IPV6,
    _KEY_VALUE,
    _MIN_FREE_TEXT,
    _PLACEHOLDER,
    _URL_PARAM,
    KINDS,
    Kind,
    ip_secret,
    known_values,
    secret_kind,
)

__all__ = ["FIXED_EPOCH", "Scrubber", "origin_values", "scrub_page"]

FIXED_EPOCH = 1_700_000_000  # what volatile epoch times become (2023-11-14T22:13:20Z)
_EPOCH = re.compile(
    r"""(?P<key>\\*["']?(?:created|created_at|updated_at|timestamp|time)\\*["']?\s*[:=]\s*)(?P<num>\d{13}|\d{10})(?!\d)""",
    re.ASCII,
)


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
                if ip_secret(match.group(0)):
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


def scrub_page(html_text: str, origin: str, *, extra: Iterable[str] = (), cookies: Iterable[str] = ()) -> str:
    """A page (or any document) with every secret it holds replaced by a placeholder, as a cassette
    would have it; ``extra`` and ``cookies`` are values known to be secret from elsewhere."""
    scrubber = Scrubber(origin)
    scrubber.discover_text(html_text)
    known = known_values()
    for kind, values in (("COOKIE", cookies), ("NONCE", [*extra, *known])):
        for value in values:
            if value and value in html_text:
                scrubber.note(value, kind)  # type: ignore[arg-type]
    scrubber.discover_text(html.unescape(html_text))
    scrubber.finish()
    return scrubber.page(html_text)
