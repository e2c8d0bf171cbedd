"""The package's small HTTP server base: a threaded loopback server, one request per connection, bodies
ended by closing the connection (as PHP's built-in server does). Cassette replay serves on it; the
replica sites build on it too."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

__all__ = ["MAX_BODY", "CloseDelimitedHandler", "LoopbackServer", "ServerThread"]

log = logging.getLogger("scraper.http")
MAX_BODY = 16 * 1024 * 1024
_S = TypeVar("_S", bound="ServerThread")


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
            parts: list[bytes] = []
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


class ServerThread:
    """A loopback server run in a daemon thread: start, stop, ``with`` support, its port and URL.

    Subclasses build their server in :meth:`make_server`; running streams watch :attr:`stopping`.
    """

    thread_name = "loopback"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._port = port
        self._server: LoopbackServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._life_lock = threading.RLock()

    def make_server(self, address: tuple[str, int]) -> LoopbackServer:
        raise NotImplementedError

    def started(self) -> None:
        """Called once the server is bound (its port known) and serving."""

    def start(self: _S) -> _S:
        """Bind (a free port unless one was given) and serve in a daemon thread; returns self."""
        with self._life_lock:
            if self._server is not None:
                return self
            self._stopping.clear()
            server = self.make_server((self.host, self._port))
            self._port = server.server_address[1]
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"{self.thread_name}-{self._port}",
                daemon=True,
            )
            self._thread.start()
        self.started()
        return self

    def stop(self) -> None:
        """Stop serving, end running streams, release the port. Safe to call twice."""
        with self._life_lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def stopping(self) -> bool:
        """Whether the server is shutting down (running streams end at their next step)."""
        return self._stopping.is_set()

    @property
    def port(self) -> int:
        """The bound port (0 before start when none was asked for)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port``, no trailing slash (like a site's base URL)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self._port}"
