"""Cassettes: one chat flow recorded against a site, secrets replaced, kept as files to replay offline.

A cassette is a folder::

    cassette.json     what was recorded, against what, with which placeholders (never their values)
    page-1.html       the chat page exactly as served (page-2.html after a reload, ...)
    exchanges.json    every request the page sent and its response, chunk by chunk with timing

Secrets are replaced before anything is written (:class:`scraper.wire.Scrubber`): each distinct
nonce, session id, client id, cookie value, credential, e-mail and IP address becomes a placeholder
(``NONCE_1``, ``SESSION_1``, ...), the same value the same placeholder everywhere. The recorded origin
becomes ``{{origin}}`` so the replay server can serve the flow on any port.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from ..errors import CassetteError
from ..wire import logger

__all__ = [
    "ANY",
    "CASSETTE_FILE",
    "EXCHANGES_FILE",
    "FORMAT",
    "FORMAT_VERSION",
    "ORIGIN_PLACEHOLDERS",
    "Cassette",
    "CassetteError",
    "CassettePage",
    "ChunkData",
    "ExchangeData",
    "PageData",
    "RequestData",
    "ResponseData",
    "chunk_bytes",
    "is_loopback_host",
]

log = logger("scraper.cassette")

FORMAT = "scraper-cassette"
FORMAT_VERSION = 1
CASSETTE_FILE = "cassette.json"
EXCHANGES_FILE = "exchanges.json"
ANY = "{{any}}"  # a request value that changes on every run: matches anything at replay

# How the recorded origin is written, and what the replay server puts back in its place.
ORIGIN_PLACEHOLDERS = ("{{origin}}", "{{origin_json}}", "{{origin_url}}", "{{host}}")


# -- the JSON shapes ------------------------------------------------------------------------------


class ChunkData(TypedDict, total=False):
    """One piece of a response body: ``t`` seconds after the request, as text or (not UTF-8 alone) base64."""

    t: float
    text: str
    b64: str


class RequestData(TypedDict, total=False):
    """What the page sent: the headers that matter and the body (urlencoded form pairs, multipart
    fields, a JSON value or text)."""

    headers: dict[str, str]
    form: list[list[str]]
    multipart: list[list[str]]
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
