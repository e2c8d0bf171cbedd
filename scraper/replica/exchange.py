"""One request and its response, written the way PHP's built-in server writes them.

The response has no ``Content-Length`` and no chunked encoding: the body ends when the connection
closes, so a client cannot lean on transfer framing to tell a finished stream from a cut one. Streams
are paced here, and a client that goes away is noticed while the site waits between events, not only
when a write fails.
"""

from __future__ import annotations

import json
import math
import select
import socket
import time
from collections.abc import Iterable, Sequence
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from ..wire import parse_form
from .config import RecordedRequest

if TYPE_CHECKING:
    from http.server import BaseHTTPRequestHandler

    from .server import ReplicaSite

__all__ = ["POWERED_BY", "ClientGone", "Exchange"]

POWERED_BY = "PHP/8.2.35"
_PAUSE_SLICE = 0.05  # how often a waiting stream looks at the stop flag
_SPLIT_GAP = 0.001  # between the two writes of an event cut inside a character


class ClientGone(Exception):
    """The client closed the connection (or the site is stopping) while a response was being written."""


def _parse_json(content_type: str, body: bytes) -> tuple[bool, Any]:
    """(parsed?, value) for a body that is or claims to be JSON."""
    text = body.strip()
    if not text or ("json" not in content_type.lower() and text[:1] not in (b"{", b"[")):
        return False, None
    try:
        return True, json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False, None


def _parse_cookies(header: str) -> dict[str, str]:
    """``name=value; name2=value2`` as PHP's ``$_COOKIE`` reads it (first occurrence wins)."""
    cookies: dict[str, str] = {}
    for piece in header.split(";"):
        name, sep, value = piece.strip().partition("=")
        if sep and name and name not in cookies:
            cookies[name] = value.strip().strip('"')
    return cookies


class Exchange:
    """The request as parsed, and the means to answer it: whole, or as a paced stream."""

    def __init__(self, site: ReplicaSite, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        self.site = site
        self._handler = handler
        self._sock: socket.socket = handler.connection
        self.method = handler.command
        target = urlsplit(handler.path)
        self.path = target.path or "/"
        self.query: dict[str, str] = dict(parse_qsl(target.query, keep_blank_values=True))
        headers: dict[str, str] = {}
        for name, value in handler.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        self.headers = headers
        self.body = body
        content_type = headers.get("content-type", "")
        self.form = parse_form(content_type, body)
        self.json_ok, self.json = _parse_json(content_type, body)
        self.cookies = _parse_cookies(headers.get("cookie", ""))
        self.started = False
        self.status = 0
        self.record: RecordedRequest | None = None
        self._poller: Any = None
        self._peer_talks = False  # the client sent more bytes: stop watching for EOF, rely on writes
        # headers a front (a CDN the site sits behind) adds to whatever the site answers
        self.edge_headers: list[tuple[str, str]] = []
        self.powered_by = POWERED_BY  # the PHP build the site reports (the recordings' sites ran different ones)

    @property
    def host(self) -> str:
        """The Host the client asked for (PHP's server echoes it as a response header)."""
        return self.headers.get("host") or self.site.url.split("//", 1)[1]

    @property
    def peer(self) -> str:
        """The client's IP address (what a front shows on its block pages)."""
        return str(self._handler.client_address[0])

    @property
    def origin(self) -> str | None:
        """The request's Origin header, if any."""
        return self.headers.get("origin")

    def make_record(self) -> RecordedRequest:
        """A log entry for this request (status filled in when the answer starts)."""
        self.record = RecordedRequest(
            method=self.method,
            path=self.path,
            query=dict(self.query),
            headers=dict(self.headers),
            body=self.body,
            form=self.form,
            json=self.json if self.json_ok else None,
            time=time.time(),
        )
        return self.record

    # -- writing ---------------------------------------------------------------------------------

    def begin(self, status: int, headers: Iterable[tuple[str, str]], *, php: bool = True) -> None:
        """Send the status line and headers: PHP's own first, unless the answer comes from a front
        (``php=False``: only ``Date``, the rest is in ``headers``); then the front's ``edge_headers``."""
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [f"HTTP/1.1 {status} {phrase}"]
        if php:
            lines += [
                f"Host: {self.host}",
                f"Date: {formatdate(usegmt=True)}",
                "Connection: close",
                f"X-Powered-By: {self.powered_by}",
            ]
        else:
            lines.append(f"Date: {formatdate(usegmt=True)}")
        lines += [f"{name}: {value}" for name, value in headers]
        lines += [f"{name}: {value}" for name, value in self.edge_headers]
        if self.record is not None:
            self.record.status = status
        self.status = status
        self.started = True
        self.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))

    def write(self, data: bytes) -> None:
        """One socket write; ClientGone if the peer is gone or the site is stopping."""
        if self.site.stopping:
            raise ClientGone("the site is stopping")
        if not data:
            return
        try:
            self._handler.wfile.write(data)
        except OSError as exc:  # BrokenPipe, ConnectionReset, ConnectionAborted, timeouts
            raise ClientGone(str(exc)) from exc

    def respond(self, status: int, headers: Iterable[tuple[str, str]], body: bytes = b"", *, php: bool = True) -> None:
        """A whole response: headers, then the body, then (by returning) the close."""
        self.begin(status, headers, php=php)
        if self.method != "HEAD":
            self.write(body)

    def stream(
        self,
        status: int,
        headers: Iterable[tuple[str, str]],
        events: Sequence[bytes],
        *,
        split_utf8: bool = False,
        head: bytes = b"",
    ) -> None:
        """Send ``head`` right after the headers (what a plugin writes before it calls the model), then
        ``events`` paced by the config's delays, counting the stream in the site's stats.

        The stats count the stream as started before its client can see the headers, and as ended before
        its client can see the last bytes: whatever a client does once a stream is over, the stats are
        never behind it.
        """
        site = self.site
        config = site.config
        writes = [head, *events]
        site.stream_started()
        ended = False
        try:
            self.begin(status, headers)
            for index, data in enumerate(writes):  # the head goes out whole, with no pause before it
                if index:
                    self.pause(config.first_delay if index == 1 else config.chunk_delay)
                if index == len(writes) - 1:
                    site.stream_ended(aborted=False)
                    ended = True
                self._write_event(data, split_utf8 and index > 0)
        except BaseException:
            if ended:
                site.stream_lost_its_end()
            else:
                site.stream_ended(aborted=True)
            raise

    def _write_event(self, event: bytes, split_utf8: bool) -> None:
        """Write one event; with ``split_utf8``, cut it after the lead byte of its first multi-byte character."""
        if split_utf8:
            cut = next((i for i, byte in enumerate(event) if byte >= 0xC0), -1)
            if cut >= 0:
                self.write(event[: cut + 1])
                time.sleep(_SPLIT_GAP)
                self.write(event[cut + 1 :])
                return
        self.write(event)

    # -- waiting ---------------------------------------------------------------------------------

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` (at least one look at the socket), raising ClientGone as soon as the client leaves."""
        deadline = time.monotonic() + max(0.0, seconds)
        while True:
            if self.site.stopping:
                raise ClientGone("the site is stopping")
            wait = min(max(deadline - time.monotonic(), 0.0), _PAUSE_SLICE)
            if self._peer_talks:
                time.sleep(wait)
            elif self._readable(wait):
                self._check_peer()
            if time.monotonic() >= deadline:
                return

    def _readable(self, timeout: float) -> bool:
        """Whether the socket has something to read (data, EOF or an error) within ``timeout``."""
        if hasattr(select, "poll"):
            if self._poller is None:
                self._poller = select.poll()
                self._poller.register(self._sock, select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR)
            return bool(self._poller.poll(math.ceil(timeout * 1000)))
        readable, _, errored = select.select([self._sock], [], [self._sock], timeout)
        return bool(readable or errored)

    def _check_peer(self) -> None:
        """Peek at the readable socket: EOF or a reset means the client has gone."""
        try:
            data = self._sock.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError, TimeoutError):
            return
        except OSError as exc:
            raise ClientGone(str(exc)) from exc
        if not data:
            raise ClientGone("the client closed the connection")
        self._peer_talks = True
