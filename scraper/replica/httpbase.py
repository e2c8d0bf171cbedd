"""The HTTP plumbing every local fake site here shares: a threaded loopback server, one request per
connection, bodies ended by closing the connection (as PHP's built-in server does)."""

from __future__ import annotations

import contextlib
import logging
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["MAX_BODY", "CloseDelimitedHandler", "LoopbackServer"]

log = logging.getLogger("scraper.replica")
MAX_BODY = 16 * 1024 * 1024


class LoopbackServer(ThreadingHTTPServer):
    """A threaded server that lets many streams run and does not wait for them on close."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    allow_reuse_address = True


class CloseDelimitedHandler(BaseHTTPRequestHandler):
    """Reads one request and closes after answering: no keep-alive, no Content-Length needed."""

    protocol_version = "HTTP/1.0"  # never keep-alive: every response ends with the close
    timeout = 60

    def setup(self) -> None:
        """Disable Nagle so each write of a stream leaves at once, in its own segment."""
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Route the server's access and error lines to the package logger (silent by default)."""
        log.debug("%s %s", self.address_string(), format % args)

    def read_body(self) -> bytes:
        """The request body, by Content-Length or chunked; ValueError if it cannot be read."""
        if self.headers.get("Expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            total = 0
            while True:
                size = int(self.rfile.readline(1024).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024).strip():
                        pass
                    return b"".join(parts)
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                parts.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            raise ValueError("bad Content-Length")
        return self.rfile.read(length) if length else b""
