"""Cassettes: one chat flow recorded against a site, secrets replaced, kept as files to replay offline.

A cassette is a folder::

    cassette.json     what was recorded, against what, with which placeholders (never their values)
    page-1.html       the chat page exactly as served (page-2.html after a reload, ...)
    exchanges.json    every request the page sent and its response, chunk by chunk with timing

Secrets are replaced before anything is written: each distinct nonce, session id, client id, cookie
value, credential, e-mail and IP address becomes a placeholder (``NONCE_1``, ``SESSION_1``, ...), the
same value the same placeholder everywhere (HTML, headers, bodies, also URL-encoded and JSON-escaped).
The recorded origin becomes ``{{origin}}`` so :mod:`scraper._replay` can serve the flow on any port;
the client then reads ``NONCE_1`` from the replayed page and sends it back, and matching still holds.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import html
import ipaddress
import itertools
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

from ._errors import ScraperError
from ._recording import ExchangeRecord, FlowRecorder, PageRecord

if TYPE_CHECKING:
    from ._browser import BrowserRuntime

__all__ = [
    "ANY",
    "CASSETTE_FILE",
    "EXCHANGES_FILE",
    "FORMAT",
    "FORMAT_VERSION",
    "IGNORED_FORM_FIELDS",
    "ORIGIN_PLACEHOLDERS",
    "Cassette",
    "CassetteError",
    "CassettePage",
    "ChunkData",
    "ExchangeData",
    "PageData",
    "RecordedChat",
    "RequestData",
    "ResponseData",
    "Scrubber",
    "chunk_bytes",
    "forget_sessions",
    "from_flow",
    "is_ignored_json_path",
    "is_loopback_host",
    "record_chat",
    "recording",
    "regenerate_fixtures",
]

log = logging.getLogger("scraper.cassette")

FORMAT = "scraper-cassette"
FORMAT_VERSION = 1
CASSETTE_FILE = "cassette.json"
EXCHANGES_FILE = "exchanges.json"
ANY = "{{any}}"  # a request value that changes on every run: matches anything at replay

# How the recorded origin is written, and what the replay server puts back in its place.
ORIGIN_PLACEHOLDERS = ("{{origin}}", "{{origin_json}}", "{{origin_url}}", "{{host}}")

# Random per request, so ignored when a replayed request is matched (and stored as ANY when random only).
IGNORED_FORM_FIELDS = frozenset({"chat_id", "wpaicg_chat_client_id"})
_VOLATILE_FORM_FIELDS = frozenset({"chat_id"})
_IGNORED_MESSAGE_KEYS = frozenset({"id", "timestamp", "key"})

# Request headers worth keeping: what the server looks at. The rest is the browser's own.
_KEPT_REQUEST_HEADERS = ("content-type", "accept", "x-wp-nonce", "authorization", "proxy-authorization", "cookie")
# Response headers never kept: hop-by-hop, framing (the replay frames bodies itself), and volatile ones.
_DROPPED_RESPONSE_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-authenticate",
        "proxy-connection",
        "content-length",
        "content-encoding",
        "date",
        "age",
        "etag",
        "last-modified",
        "alt-svc",
        "cf-ray",
        "nel",
        "report-to",
        "server-timing",
        "x-request-id",
        "request-id",
    }
)

Kind = Literal["NONCE", "SESSION", "CLIENT", "AUTH", "ID", "COOKIE", "EMAIL", "IP"]
# When one value is seen in two roles, the first kind in this order names it.
KINDS: tuple[Kind, ...] = ("NONCE", "SESSION", "CLIENT", "AUTH", "ID", "COOKIE", "EMAIL", "IP")
_MIN_FREE_TEXT = 4  # shorter values are replaced only where they were found (a cookie "1" is not hunted down)
_COMMON_WORDS = frozenset({"true", "false", "null", "none", "undefined", "deleted"})
_PLACEHOLDER = re.compile(r"^(?:NONCE|SESSION|CLIENT|AUTH|ID|COOKIE|EMAIL|IP)_\d+$|\{\{")
FIXED_EPOCH = 1_700_000_000  # what volatile epoch times become (2023-11-14T22:13:20Z)


class CassetteError(ScraperError):
    """A cassette is missing, unreadable or of another format, or cannot be written."""


# -- the JSON shapes ------------------------------------------------------------------------------


class ChunkData(TypedDict, total=False):
    """One piece of a response body: ``t`` seconds after the request, as text or (not UTF-8 alone) base64."""

    t: float
    text: str
    b64: str


class RequestData(TypedDict, total=False):
    """What the page sent: the headers that matter and the body (form pairs, a JSON value or text)."""

    headers: dict[str, str]
    form: list[list[str]]
    json: Any
    text: str


class ResponseData(TypedDict):
    """What came back; ``status`` is None when no response arrived, ``error`` when the body broke."""

    status: int | None
    headers: list[list[str]]
    chunks: list[ChunkData]
    complete: bool
    error: str | None


class ExchangeData(TypedDict):
    """One recorded request and its response (``index`` counts from 1, in recorded order)."""

    index: int
    method: str
    path: str
    request: RequestData
    response: ResponseData


class PageData(TypedDict):
    """One page load: which file holds its HTML, where it was served, with what status and headers."""

    file: str
    path: str
    status: int
    headers: list[list[str]]


@dataclass
class CassettePage:
    """A page load with its HTML (placeholders in, values out)."""

    path: str
    status: int
    headers: list[list[str]]
    html: str


@dataclass
class Cassette:
    """A recorded flow, scrubbed: metadata, page loads and exchanges, in recorded order."""

    meta: dict[str, Any]
    pages: list[CassettePage] = field(default_factory=list)
    exchanges: list[ExchangeData] = field(default_factory=list)
    path: Path | None = None

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or (self.path.name if self.path else "cassette"))

    @property
    def plugin(self) -> str | None:
        return self.meta.get("plugin")

    def summary(self) -> str:
        """One line for humans: name, plugin, what it holds."""
        pages = f"{len(self.pages)} page{'s' if len(self.pages) != 1 else ''}"
        exchanges = f"{len(self.exchanges)} exchange{'s' if len(self.exchanges) != 1 else ''}"
        return f"{self.name} ({self.plugin or 'unknown plugin'}, {pages}, {exchanges})"

    # -- reading ------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Cassette:
        """Read a cassette folder (or its ``cassette.json``)."""
        folder = Path(path)
        if folder.is_file() and folder.name == CASSETTE_FILE:
            folder = folder.parent
        meta_file = folder / CASSETTE_FILE
        if not meta_file.is_file():
            raise CassetteError(
                f"No cassette at {folder} (no {CASSETTE_FILE}). Record one with "
                f'`scraper record --provider chatgptfree --out {folder} "Hello"`, or check the path.'
            )
        try:
            meta = json.loads(meta_file.read_text("utf-8"))
            raw_exchanges = json.loads((folder / EXCHANGES_FILE).read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise CassetteError(f"The cassette at {folder} cannot be read ({exc}). Re-record it.") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise CassetteError(f"{meta_file} is not a {FORMAT} file. Re-record the cassette.")
        if meta.get("version") != FORMAT_VERSION:
            raise CassetteError(
                f"{meta_file} has format version {meta.get('version')!r}; this scraper reads version "
                f"{FORMAT_VERSION}. Re-record the cassette with this version."
            )
        pages: list[CassettePage] = []
        for entry in meta.get("pages", []):
            try:
                text = (folder / entry["file"]).read_text("utf-8")
                pages.append(CassettePage(entry["path"], int(entry["status"]), entry.get("headers", []), text))
            except (OSError, KeyError, ValueError, TypeError) as exc:
                raise CassetteError(f"The cassette at {folder} has a broken page entry {entry!r} ({exc}).") from exc
        if not isinstance(raw_exchanges, list):
            raise CassetteError(f"{folder / EXCHANGES_FILE} is not a list of exchanges. Re-record the cassette.")
        for number, exchange in enumerate(raw_exchanges, 1):
            problem = _exchange_problem(exchange)
            if problem:
                raise CassetteError(
                    f"Exchange {number} in {folder / EXCHANGES_FILE} is broken ({problem}). "
                    "Fix it by hand or re-record the cassette."
                )
        return cls(meta=meta, pages=pages, exchanges=raw_exchanges, path=folder)

    # -- writing ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the folder; an existing cassette there is replaced only with ``overwrite``.

        The files are written to a sibling folder first, so a failure never leaves half a cassette.
        """
        folder = Path(path)
        if folder.exists():
            if not folder.is_dir():
                raise CassetteError(f"{folder} exists and is not a folder; choose another --out.")
            ours = _cassette_files(folder)
            others = [p for p in folder.iterdir() if p not in ours]
            if ours and not overwrite:
                raise CassetteError(
                    f"A cassette already exists at {folder}; pass --force (overwrite=True) to replace it."
                )
            if others and not ours:
                raise CassetteError(f"{folder} is a folder with other files in it; choose an empty or new folder.")
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            meta = dict(self.meta)
            page_entries: list[PageData] = []
            for number, page in enumerate(self.pages, 1):
                name = f"page-{number}.html"
                (staging / name).write_text(page.html, "utf-8")
                page_entries.append({"file": name, "path": page.path, "status": page.status, "headers": page.headers})
            meta["pages"] = page_entries
            (staging / CASSETTE_FILE).write_text(_dump(meta), "utf-8")
            (staging / EXCHANGES_FILE).write_text(_dump(self.exchanges), "utf-8")
            folder.mkdir(exist_ok=True)
            for old in _cassette_files(folder):
                old.unlink()
            for new in staging.iterdir():
                os.replace(new, folder / new.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.meta["pages"] = meta["pages"]
        self.path = folder
        log.info("wrote cassette %s to %s", self.summary(), folder)
        return folder


def _exchange_problem(exchange: Any) -> str | None:
    """What is wrong with one stored exchange, if anything."""
    if not isinstance(exchange, dict):
        return "not an object"
    for key, kind in (("index", int), ("method", str), ("path", str), ("request", dict), ("response", dict)):
        if not isinstance(exchange.get(key), kind):
            return f"{key!r} is missing or not {kind.__name__}"
    response = exchange["response"]
    if not isinstance(response.get("chunks"), list) or not isinstance(response.get("headers"), list):
        return "the response needs 'headers' and 'chunks' lists"
    for chunk in response["chunks"]:
        if not isinstance(chunk, dict) or ("text" not in chunk and "b64" not in chunk):
            return f"chunk {chunk!r} has neither 'text' nor 'b64'"
    return None


def _cassette_files(folder: Path) -> list[Path]:
    names = {CASSETTE_FILE, EXCHANGES_FILE}
    return [p for p in folder.iterdir() if p.name in names or re.fullmatch(r"page-\d+\.html", p.name)]


def _dump(value: Any) -> str:
    """JSON indented by 2, with short flat lists and objects (a header pair, a chunk) kept on one line."""
    return _format(value, 0) + "\n"


def _format(value: Any, indent: int) -> str:
    one_line = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, (dict, list)) or not value:
        return one_line
    members = value.values() if isinstance(value, dict) else value
    if all(not isinstance(m, (dict, list)) for m in members) and indent + len(one_line) <= 116:
        return one_line
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        lines = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {_format(v, indent + 2)}" for k, v in value.items()]
        return "{\n" + ",\n".join(lines) + "\n" + " " * indent + "}"
    lines = [pad + _format(v, indent + 2) for v in value]
    return "[\n" + ",\n".join(lines) + "\n" + " " * indent + "]"


def chunk_bytes(chunk: ChunkData) -> bytes:
    """The bytes of one stored chunk."""
    if "b64" in chunk:
        return base64.b64decode(chunk["b64"])
    return chunk.get("text", "").encode("utf-8")


def is_ignored_json_path(path: tuple[str | int, ...]) -> bool:
    """JSON request fields a client makes up per request: AI Engine's ``chatId``, and ``id``,
    ``timestamp``, ``key`` of each history message."""
    if path == ("chatId",):
        return True
    return len(path) == 3 and path[0] == "messages" and isinstance(path[1], int) and path[2] in _IGNORED_MESSAGE_KEYS


def is_loopback_host(host: str | None) -> bool:
    """True for localhost and loopback addresses (the replica and replay servers live there)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# -- scrubbing ------------------------------------------------------------------------------------

_Q = r"""\\*["']"""  # a quote, maybe escaped (JSON inside a JSON string)
_KEY_VALUE = re.compile(rf"""(?:{_Q})?(?P<key>[A-Za-z_][\w-]*)(?:{_Q})?\s*[:=]\s*{_Q}(?P<value>[^"'\\\s<>&]+){_Q}""")
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


def _kind_for_key(key: str) -> Kind | None:
    """The secret kind a field, parameter or cookie name implies, if any."""
    k = key.lower()
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
            kind = _kind_for_key(match.group("key"))
            if kind is not None and "://" not in match.group("value") and "/" not in match.group("value"):
                self.note(match.group("value"), kind)
        for match in _URL_PARAM.finditer(text):
            kind = _kind_for_key(match.group("key"))
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
            self.note(cookie, _kind_for_key(name) or "COOKIE")

    def discover_set_cookie(self, value: str) -> None:
        name, _, rest = value.partition("=")
        cookie = rest.split(";", 1)[0].strip()
        self.note(cookie, _kind_for_key(name.strip()) or "COOKIE")
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
            kind = _kind_for_key(name)
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
            kind = _kind_for_key(key) if key else None
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

    def name_of(self, value: str) -> str | None:
        """The placeholder of a value found in the flow."""
        return self._names.get(value)

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
        out: list[list[str]] = []
        for name, value in pairs:
            if name in _VOLATILE_FORM_FIELDS:
                out.append([name, ANY])
            elif _kind_for_key(name) is not None:
                out.append([name, self.field(value)])
            else:
                out.append([name, self.text(value)])
        return out

    def json_value(self, value: Any, path: tuple[str | int, ...] = ()) -> Any:
        if is_ignored_json_path(path):
            return ANY
        if isinstance(value, dict):
            return {k: self.json_value(v, (*path, str(k))) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json_value(v, (*path, i)) for i, v in enumerate(value)]
        if isinstance(value, str):
            key = next((p for p in reversed(path) if isinstance(p, str)), None)
            return self.field(value) if key and _kind_for_key(key) else self.text(value)
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


# -- building a cassette from a recorded flow -------------------------------------------------------

BodyKind = Literal["none", "form", "json", "text"]


def _parse_body(headers: list[tuple[str, str]], body: str | None) -> tuple[BodyKind, Any]:
    if body is None or body == "":
        return "none", None
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "").lower()
    if "application/x-www-form-urlencoded" in content_type:
        return "form", parse_qsl(body, keep_blank_values=True)
    if "json" in content_type or body.lstrip()[:1] in ("{", "["):
        try:
            return "json", json.loads(body)
        except ValueError:
            pass
    return "text", body


def _relative(url: str, origin: str) -> str:
    """path?query of a URL of the recorded origin; other origins keep their full URL."""
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}" != origin:
        log.warning("%s is not on the recorded origin %s; the replay will not serve it", url, origin)
        return url
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _infer_plugin(exchanges: list[ExchangeRecord]) -> str | None:
    for record in exchanges:
        path = urlsplit(record.url).path
        if path.endswith("/admin-ajax.php") and record.request_body and "wpaicg" in record.request_body:
            return "aipower"
        if "/mwai" in path or "rest_route=%2Fmwai" in record.url or "rest_route=/mwai" in record.url:
            return "aiengine"
    return None


def _infer_message(exchanges: list[ExchangeRecord]) -> str | None:
    for record in exchanges:
        kind, value = _parse_body(record.request_headers, record.request_body)
        if kind == "form":
            for name, field_value in value:
                if name == "message":
                    return str(field_value)
        elif kind == "json" and isinstance(value, dict) and isinstance(value.get("newMessage"), str):
            return value["newMessage"]
    return None


def _page_headers(scrub: Scrubber, headers: list[tuple[str, str]]) -> list[list[str]]:
    out = []
    for name, value in headers:
        if name.lower() in _DROPPED_RESPONSE_HEADERS:
            continue
        if name.lower() == "content-type" and "charset" in value.lower():
            value = re.sub(r"(?i)charset=[\w-]+", "charset=UTF-8", value)  # the HTML is stored as UTF-8
        out.append([name, scrub.header(name, value)])
    return out


def from_flow(
    recorder: FlowRecorder,
    *,
    origin: str,
    name: str,
    plugin: str | None = None,
    message: str | None = None,
    provider: str | None = None,
    recorded_at: datetime.date | None = None,
) -> Cassette:
    """A scrubbed cassette from what a recorder saw (plugin and message are inferred when not given)."""
    from . import __version__

    origin = origin.rstrip("/")
    events: list[tuple[float, str, PageRecord | ExchangeRecord]] = [
        *((p.at, "page", p) for p in recorder.pages),
        *((e.at, "exchange", e) for e in recorder.exchanges),
    ]
    events.sort(key=lambda item: item[0])
    plugin = plugin or _infer_plugin(recorder.exchanges)
    message = message if message is not None else _infer_message(recorder.exchanges)

    scrub = Scrubber(origin)
    parsed: dict[int, tuple[BodyKind, Any]] = {}
    for _, _, record in events:
        if isinstance(record, PageRecord):
            for header, value in record.headers:
                scrub.discover_header(header, value)
            scrub.discover_text(record.body)
            scrub.discover_text(html.unescape(record.body))
            continue
        scrub.discover_text(urlsplit(record.url).query)
        for header, value in record.request_headers:
            if header.lower() in _KEPT_REQUEST_HEADERS:
                scrub.discover_header(header, value)
        kind, body = parsed[id(record)] = _parse_body(record.request_headers, record.request_body)
        if kind == "form":
            scrub.discover_form(body)
        elif kind == "json":
            scrub.discover_json(body)
        else:
            scrub.discover_text(body)
        for header, value in record.response_headers:
            if header.lower() not in _DROPPED_RESPONSE_HEADERS:
                scrub.discover_header(header, value)
        scrub.discover_text(record.body.decode("utf-8", "replace"))
    scrub.discover_text(message)
    scrub.finish()

    pages: list[CassettePage] = []
    exchanges: list[ExchangeData] = []
    flow: list[str] = []
    for _, _, record in events:
        if isinstance(record, PageRecord):
            pages.append(
                CassettePage(
                    path=scrub.text(_relative(record.url, origin)),
                    status=record.status,
                    headers=_page_headers(scrub, record.headers),
                    html=scrub.page(record.body),
                )
            )
            flow.append(f"page-{len(pages)}")
            continue
        exchanges.append(_exchange(scrub, record, parsed[id(record)], len(exchanges) + 1, origin))
        flow.append(f"exchange-{len(exchanges)}")

    host = urlsplit(origin).hostname
    loopback = is_loopback_host(host)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "name": name,
        "recorded_at": (recorded_at or datetime.datetime.now(datetime.timezone.utc).date()).isoformat(),
        "recorded_against": "scraper replica (local)" if loopback else "live site",
        # A loopback site's port was a throwaway free port: leaving it out keeps re-recordings identical.
        "site_url": f"{urlsplit(origin).scheme}://{host}" if loopback else origin,
        "plugin": plugin,
        "provider": provider,
        "message": scrub.text(message) if message is not None else None,
        "scraper_version": __version__,
        "placeholders": [p for p in ORIGIN_PLACEHOLDERS if _uses(p, pages, exchanges)] + scrub.placeholders,
        "flow": flow,
    }
    return Cassette(meta=meta, pages=pages, exchanges=exchanges)


def _uses(placeholder: str, pages: list[CassettePage], exchanges: list[ExchangeData]) -> bool:
    if any(placeholder in page.html or placeholder in json.dumps(page.headers) for page in pages):
        return True
    blob = json.dumps(exchanges, ensure_ascii=False)
    if placeholder in blob:
        return True
    return any(
        placeholder.encode() in base64.b64decode(c["b64"])
        for e in exchanges
        for c in e["response"]["chunks"]
        if "b64" in c
    )


def _exchange(
    scrub: Scrubber, record: ExchangeRecord, body: tuple[BodyKind, Any], index: int, origin: str
) -> ExchangeData:
    headers: dict[str, str] = {}
    raw = {k.lower(): v for k, v in record.request_headers}
    for name in _KEPT_REQUEST_HEADERS:
        if name in raw:
            headers[name] = scrub.header(name, raw[name])
    request: RequestData = {"headers": headers}
    kind, value = body
    if kind == "form":
        request["form"] = scrub.form(value)
    elif kind == "json":
        request["json"] = scrub.json_value(value)
    elif kind == "text":
        request["text"] = scrub.text(value)
    chunks: list[ChunkData] = []
    times = [t for t, _ in record.chunks]
    for t, data in zip(times, scrub.body([d for _, d in record.chunks]), strict=True):
        if not data:
            continue
        try:
            chunks.append({"t": round(t, 3), "text": data.decode("utf-8")})
        except UnicodeDecodeError:
            chunks.append({"t": round(t, 3), "b64": base64.b64encode(data).decode("ascii")})
    response: ResponseData = {
        "status": record.status,
        "headers": [
            [k, scrub.header(k, v)] for k, v in record.response_headers if k.lower() not in _DROPPED_RESPONSE_HEADERS
        ],
        "chunks": chunks,
        "complete": record.complete,
        "error": scrub.text(record.error) if record.error else None,
    }
    return {
        "index": index,
        "method": record.method,
        "path": scrub.text(_relative(record.url, origin)),
        "request": request,
        "response": response,
    }


# -- recording --------------------------------------------------------------------------------------


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@contextlib.contextmanager
def recording(url: str, runtime: BrowserRuntime | None = None) -> Iterator[FlowRecorder]:
    """Record every page load and in-page request of the site at ``url`` while the block runs.

    A site whose page is already loaded will not load it again: call :func:`forget_sessions` first
    so the page itself is part of the recording.
    """
    from ._browser import get_runtime

    runtime = runtime or get_runtime()
    origin = _origin_of(url)
    recorder = FlowRecorder()
    previous = runtime.recorders.get(origin)
    runtime.recorders[origin] = recorder
    try:
        yield recorder
    finally:
        if previous is None:
            runtime.recorders.pop(origin, None)
        else:
            runtime.recorders[origin] = previous


async def forget_sessions(runtime: BrowserRuntime, url: str) -> int:
    """Close the warm sessions of the site at ``url`` (on the browser thread); returns how many."""
    origin = _origin_of(url)

    async def close() -> int:
        closed = 0
        for key, pool in list(runtime.sessions.items()):
            page_url = key[0] if isinstance(key, tuple) else str(key)
            if _origin_of(page_url) == origin:
                runtime.sessions.pop(key, None)
                with contextlib.suppress(Exception):
                    await pool.close()
                closed += 1
        return closed

    if not runtime.sessions:
        return 0
    return await runtime.call(close())


@dataclass
class RecordedChat:
    """What :func:`record_chat` produced: the cassette, where it was written, the reply's chunks."""

    cassette: Cassette
    path: Path
    chunks: list[str]


async def record_chat(
    target: Any,
    message: str,
    out: str | os.PathLike[str],
    *,
    name: str | None = None,
    provider: str | None = None,
    model: str = "",
    timeout: float = 120,
    cookies: dict[str, str] | None = None,
    proxy: str | None = None,
    overwrite: bool = False,
    on_chunk: Callable[[str], None] | None = None,
    **kwargs: Any,
) -> RecordedChat:
    """Run one real chat with ``target`` (a provider class or instance) and write it as a cassette.

    The site's warm session is closed first, so the recording starts with the page load. Nothing is
    written when the chat fails.
    """
    from ._browser import get_runtime
    from ._chat import _BROWSER_KEYS

    if not overwrite and (Path(out) / CASSETTE_FILE).exists():
        raise CassetteError(f"A cassette already exists at {out}; pass --force (overwrite=True) to replace it.")
    options: dict[str, Any] = dict(getattr(target, "browser_options", None) or {})
    options.update({k: kwargs[k] for k in _BROWSER_KEYS if k in kwargs})
    runtime = get_runtime(options)  # type: ignore[arg-type]
    page_url = target.page_url()
    origin = _origin_of(page_url)
    await forget_sessions(runtime, page_url)
    chunks: list[str] = []
    with recording(origin, runtime) as recorder:
        stream: AsyncIterator[str] = target.create_async_generator(
            model, [{"role": "user", "content": message}], proxy=proxy, timeout=timeout, cookies=cookies, **kwargs
        )
        async for chunk in stream:
            chunks.append(chunk)
            if on_chunk is not None:
                on_chunk(chunk)
    plugin_class = getattr(target, "plugin_class", None)
    cassette = from_flow(
        recorder,
        origin=origin,
        name=name or Path(out).name,
        plugin=getattr(plugin_class, "name", None),
        message=message,
        provider=provider,
    )
    path = cassette.save(out, overwrite=overwrite)
    return RecordedChat(cassette, path, chunks)


# -- the shipped fixtures ---------------------------------------------------------------------------

FIXTURE_MESSAGE = "Привет, как дела?"


class _FixtureSpec(TypedDict):
    name: str
    plugin: Literal["aipower", "aiengine"]
    provider: Literal["chatgptfree", "chatgpt4online"]
    nonce_mode: str


FIXTURES: tuple[_FixtureSpec, ...] = (
    {"name": "chatgptfree-hello", "plugin": "aipower", "provider": "chatgptfree", "nonce_mode": "ok"},
    {"name": "chatgpt4online-hello", "plugin": "aiengine", "provider": "chatgpt4online", "nonce_mode": "ok"},
    {"name": "chatgptfree-nonce-refresh", "plugin": "aipower", "provider": "chatgptfree", "nonce_mode": "reject_once"},
    {
        "name": "chatgpt4online-nonce-refresh",
        "plugin": "aiengine",
        "provider": "chatgpt4online",
        "nonce_mode": "reject_once",
    },
)
_PRESET_ENV = {"chatgptfree": "SCRAPER_CHATGPTFREE_URL", "chatgpt4online": "SCRAPER_CHATGPT4ONLINE_URL"}


async def aregenerate_fixtures(directory: str | os.PathLike[str] = "fixtures") -> list[Path]:
    """Record the shipped cassettes again against fresh replica sites (the ``-nonce-refresh`` ones
    with the replica rejecting the first nonce, so the client reloads or restarts its session)."""
    from ._chat import AIPowerChat
    from ._providers import Chatgpt4Online, ChatgptFree
    from .replica import ReplicaSite

    providers = {"chatgptfree": ChatgptFree, "chatgpt4online": Chatgpt4Online}
    # A browser that has just started is slow to pull the first replies, which merges their chunks:
    # one chat that is not recorded first makes the recorded chunking closer to the site's own.
    with ReplicaSite("aipower") as warm:
        await AIPowerChat(warm.url).create_async_generator("", [{"role": "user", "content": "warm-up"}]).collect()
    written = []
    for spec in FIXTURES:
        env = _PRESET_ENV[spec["provider"]]
        saved = os.environ.get(env)
        with ReplicaSite(spec["plugin"]) as site:
            site.config.nonce_mode = spec["nonce_mode"]
            site.config.chunk_delay = 0.05  # slow enough that each event arrives as its own chunk
            os.environ[env] = site.url
            try:
                result = await record_chat(
                    providers[spec["provider"]],
                    FIXTURE_MESSAGE,
                    Path(directory) / spec["name"],
                    provider=spec["provider"],
                    overwrite=True,
                )
            finally:
                if saved is None:
                    os.environ.pop(env, None)
                else:
                    os.environ[env] = saved
        written.append(result.path)
    return written


def regenerate_fixtures(directory: str | os.PathLike[str] = "fixtures") -> list[Path]:
    """Synchronous :func:`aregenerate_fixtures` (``scraper regen-fixtures``)."""
    import asyncio

    return asyncio.run(aregenerate_fixtures(directory))
