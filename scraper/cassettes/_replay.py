"""Serve a cassette on 127.0.0.1 as if it were the site: pages, then each recorded exchange, paced.

Streams are written chunk by chunk at their recorded times (scaled by ``speed``) and end by closing
the connection, as the plugins' PHP servers do, so the client meets the same framing and timing it
met when recording. A request is answered with the next unused recorded exchange that has the same
method, path and body (fields the client makes up per request are ignored); anything else gets a
409 that names the nearest recorded request and what differs.

Why 409 and not 404: the path usually exists in the cassette, only this request's content does not
match; and neither plugin ever answers 409, so it can never be mistaken for the site's own answer
(WordPress answers unknown REST routes with 404 ``rest_no_route``).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from .._http_server import CloseDelimitedHandler, LoopbackServer, ServerThread
from ..errors import ConfigError
from ..plugins import volatile_of
from ..wire import logger
from ..wire._scrub import origin_values
from ._format import Cassette, ExchangeData, chunk_bytes
from ._match import Received, differences
from ._match import received as _received

__all__ = ["MISMATCH_STATUS", "Mismatch", "ReplayServer", "ServedRequest"]

log = logger("scraper.replay")

MISMATCH_STATUS = 409
_SHORT = 40
# Subresources of the page are not recorded: scripts and styles get an empty stand-in, the rest a 404.
_STUBS: dict[str, tuple[int, str, bytes]] = {
    ".js": (200, "text/javascript; charset=UTF-8", b"/* not recorded in the cassette */\n"),
    ".mjs": (200, "text/javascript; charset=UTF-8", b"/* not recorded in the cassette */\n"),
    ".css": (200, "text/css; charset=UTF-8", b"/* not recorded in the cassette */\n"),
    ".svg": (200, "image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>\n'),
}
_STATIC = re.compile(r"\.(?:js|mjs|css|svg|png|jpe?g|gif|webp|avif|ico|woff2?|ttf|otf|eot|map)$", re.I)
_EMAIL_SHAPE = r"[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
_IP_SHAPE = r"[0-9A-Fa-f:.]{3,}"


@dataclass
class Mismatch:
    """A request no recorded exchange matched: what came, the nearest recorded one, what differs."""

    method: str
    path: str
    nearest: int | None
    differences: list[str]
    message: str


@dataclass
class ServedRequest:
    """What the server did with one request."""

    method: str
    path: str
    outcome: Literal["page", "exchange", "stub", "mismatch", "missing"]
    index: int | None = None  # the page number or exchange index


class _Server(LoopbackServer):
    def __init__(self, address: tuple[str, int], replay: ReplayServer) -> None:
        self.replay = replay
        super().__init__(address, _Handler)


class _Handler(CloseDelimitedHandler):
    """One request per connection; every body ends with the close, as on the recorded site."""

    server: _Server

    def _handle(self) -> None:
        try:
            body = self.read_body()
        except (ValueError, OSError):
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            self.server.replay._serve(self, self.command, self.path, headers, body)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            log.debug("%s %s: the client went away", self.command, self.path)

    do_GET = do_POST = do_HEAD = do_OPTIONS = do_PUT = do_PATCH = do_DELETE = _handle


class ReplayServer(ServerThread):
    """A cassette served as a site on 127.0.0.1.

    ``speed`` scales the recorded chunk times: 1.0 as recorded, 2.0 twice as fast, 0 all at once.
    :attr:`mismatches` lists the requests nothing matched, :attr:`served` everything answered.
    """

    thread_name = "replay"

    def __init__(
        self,
        cassette: Cassette | str | os.PathLike[str],
        speed: float = 1.0,
        port: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host, port)
        self.cassette = cassette if isinstance(cassette, Cassette) else Cassette.load(Path(cassette))
        if speed < 0:
            raise ConfigError("speed must be 0 (all at once) or more (1.0 = as recorded)")
        self.speed = float(speed)
        self._lock = threading.Lock()
        self._used: set[int] = set()
        self._page_hits: dict[str, int] = {}
        self.mismatches: list[Mismatch] = []
        self.served: list[ServedRequest] = []
        # exchange index -> when each chunk was due, in seconds after the headers (recorded time / speed)
        self.schedule: dict[int, list[float]] = {}
        self._values: dict[str, str] = {}
        self._volatile = volatile_of(self.cassette.plugin)

    def make_server(self, address: tuple[str, int]) -> _Server:
        return _Server(address, self)

    def started(self) -> None:
        self._values = origin_values(self.url)
        log.info("replaying %s at %s", self.cassette.summary(), self.url)

    @property
    def unused(self) -> list[int]:
        """Indexes of recorded exchanges no request has matched yet."""
        with self._lock:
            return [e["index"] for e in self.cassette.exchanges if e["index"] not in self._used]

    @property
    def pages_served(self) -> int:
        return sum(1 for s in self.served if s.outcome == "page")

    # -- serving ---------------------------------------------------------------------------------
    def _serve(self, handler: _Handler, method: str, target: str, headers: dict[str, str], body: bytes) -> None:
        received = _received(method, target, headers, body, self._contract)
        # A navigation gets the next recorded page load; a request from the page's scripts the next
        # recorded exchange (a page fetched by a script, to refresh a nonce, is an exchange).
        navigation = headers.get("sec-fetch-mode") == "navigate"
        with self._lock:
            page = self._next_page(received.path) if navigation and method in ("GET", "HEAD") else None
            exchange = self._claim(received) if page is None else None
            if exchange is None and page is None and method in ("GET", "HEAD"):
                page = self._next_page(received.path)
            unrecorded_page = navigation and exchange is None and page is None
            if (
                exchange is None
                and page is None
                and not unrecorded_page
                and not (method in ("GET", "HEAD") and self._is_static(target))
            ):
                mismatch = self._mismatch(received)
                self.mismatches.append(mismatch)
                self.served.append(ServedRequest(method, received.path, "mismatch", mismatch.nearest))
            else:
                mismatch = None
        if exchange is not None:
            self.served.append(ServedRequest(method, received.path, "exchange", exchange["index"]))
            log.debug("%s %s -> recorded exchange #%d", method, target, exchange["index"])
            self._write_exchange(handler, exchange)
        elif page is not None:
            number, status, page_headers, html = page
            self.served.append(ServedRequest(method, received.path, "page", number))
            log.debug("%s %s -> page %d", method, target, number)
            self._write_head(handler, status, page_headers)
            if method != "HEAD":
                handler.wfile.write(self._expand(html).encode("utf-8"))
        elif mismatch is not None:
            log.warning("%s", mismatch.message)
            text = mismatch.message + "\n"
            if len(mismatch.differences) > 1:
                text += "".join(f"  also: {d}\n" for d in mismatch.differences[1:])
            self._write_head(handler, MISMATCH_STATUS, [["Content-Type", "text/plain; charset=UTF-8"]])
            handler.wfile.write(text.encode("utf-8"))
        elif unrecorded_page:
            # A page the cassette never loaded is a page the site does not have: WordPress's 404.
            self.served.append(ServedRequest(method, received.path, "missing"))
            self._write_head(handler, 404, [["Content-Type", "text/html; charset=UTF-8"]])
            if method != "HEAD":
                handler.wfile.write(b"<!doctype html><title>Page not found</title><h1>Not found</h1>\n")
        else:
            self.served.append(ServedRequest(method, received.path, "stub"))
            suffix = os.path.splitext(urlsplit(target).path)[1].lower()
            status, content_type, data = _STUBS.get(suffix, (404, "text/plain; charset=UTF-8", b""))
            self._write_head(handler, status, [["Content-Type", content_type]])
            if method != "HEAD":
                handler.wfile.write(data)

    def _is_static(self, target: str) -> bool:
        return bool(_STATIC.search(urlsplit(target).path))

    def _next_page(self, path: str) -> tuple[int, int, list[list[str]], str] | None:
        """The next recorded load of this page; the last one again once all were served."""
        key = _page_key(path)
        numbered = [(n, p) for n, p in enumerate(self.cassette.pages, 1) if _page_key(p.path) == key]
        if not numbered:
            return None
        hits = self._page_hits.get(key, 0)
        self._page_hits[key] = hits + 1
        number, page = numbered[min(hits, len(numbered) - 1)]
        return number, page.status, page.headers, page.html

    def _write_head(self, handler: _Handler, status: int, headers: list[list[str]]) -> None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [f"HTTP/1.1 {status} {phrase}"]
        for name, value in headers:
            value = self._expand(value)
            if name.lower() == "set-cookie":
                value = _local_cookie(value)
            lines.append(f"{name}: {value}")
        lines.append("Connection: close")
        handler.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))

    def _write_exchange(self, handler: _Handler, exchange: ExchangeData) -> None:
        response = exchange["response"]
        if response["status"] is None:  # no response was recorded: the request failed on the way
            _reset(handler)
            return
        self._write_head(handler, int(response["status"]), response["headers"])
        started = time.monotonic()
        offsets = [float(chunk.get("t", 0.0)) / self.speed if self.speed > 0 else 0.0 for chunk in response["chunks"]]
        with self._lock:
            self.schedule[exchange["index"]] = offsets
        for chunk, offset in zip(response["chunks"], offsets, strict=True):
            if offset > 0:
                delay = started + offset - time.monotonic()
                if delay > 0 and self._stopping.wait(delay):
                    _reset(handler)
                    return
            if self._stopping.is_set():
                _reset(handler)
                return
            handler.wfile.write(self._expand_bytes(chunk_bytes(chunk)))
        if response.get("error"):
            _reset(handler)  # the recorded stream broke: break this one too

    # -- placeholders ----------------------------------------------------------------------------
    def _expand(self, text: str) -> str:
        for placeholder, value in self._values.items():
            text = text.replace(placeholder, value)
        return text

    def _expand_bytes(self, data: bytes) -> bytes:
        if b"{{" not in data:
            return data
        for placeholder, value in self._values.items():
            data = data.replace(placeholder.encode(), value.encode())
        return data

    def _contract(self, text: str) -> str:
        """A received value with this server's origin written back as placeholders."""
        for placeholder, value in sorted(self._values.items(), key=lambda item: len(item[1]), reverse=True):
            if value:
                text = text.replace(value, placeholder)
        return text

    def _claim(self, got: Received) -> ExchangeData | None:
        for exchange in self.cassette.exchanges:
            if exchange["index"] in self._used:
                continue
            if not differences(exchange, got, self._volatile):
                self._used.add(exchange["index"])
                return exchange
        return None

    def _mismatch(self, received: Received) -> Mismatch:
        best: tuple[tuple[int, int, int, int], ExchangeData, list[str]] | None = None
        for exchange in self.cassette.exchanges:
            diffs = differences(exchange, received, self._volatile)
            same_route = exchange["method"] == received.method and exchange["path"] == received.path
            score = (0 if same_route else 1, 1 if exchange["index"] in self._used else 0, len(diffs), exchange["index"])
            if best is None or score < best[0]:
                best = (score, exchange, diffs)
        where = f"{received.method} {received.path}"
        if best is None:
            message = f"scraper replay: no recorded request matches {where}; the cassette has no exchanges"
            return Mismatch(received.method, received.path, None, [], message)
        _, exchange, diffs = best
        nearest = f"#{exchange['index']} {exchange['method']} {exchange['path']}"
        if not diffs:
            count = sum(
                1 for e in self.cassette.exchanges if e["method"] == received.method and e["path"] == received.path
            )
            diffs = [f"already replayed: the cassette holds {count} such request(s) and this is one more"]
        # Short on purpose: clients quote the first 200 characters of an error body.
        message = f"scraper replay: no match; nearest recorded request {nearest}: {diffs[0]}"
        return Mismatch(received.method, received.path, exchange["index"], diffs, message)


def _page_key(path: str) -> str:
    base, _, query = path.partition("?")
    return (base.rstrip("/") or "/") + (f"?{query}" if query else "")


def _local_cookie(value: str) -> str:
    """A recorded Set-Cookie that a plain-HTTP loopback server may set: no Secure, Domain or SameSite=None."""
    name_value, *attributes = value.split(";")
    kept = []
    for attribute in attributes:
        key = attribute.strip().split("=", 1)[0].lower()
        if key in ("secure", "domain", "partitioned"):
            continue
        if key == "samesite" and attribute.strip().lower().endswith("none"):
            continue
        kept.append(attribute)
    return ";".join([name_value, *kept])


def _reset(handler: _Handler) -> None:
    """End the connection with a reset, as a broken stream ends (a plain close would look complete)."""
    with contextlib.suppress(OSError):
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()  # the descriptor goes once the handler's files close: no FIN first
    handler.close_connection = True
