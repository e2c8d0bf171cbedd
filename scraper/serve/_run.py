"""Running the server as ``scraper serve`` does: uvicorn on the main thread, on a socket bound first (so
a taken port is one clear error), until SIGINT or SIGTERM; then streams get a grace period to finish,
are ended with an error event past it, and the browser is closed, leaving no process behind.

Connections are bounded in time: a request's headers must arrive within ``header_timeout``, a
kept-alive connection may idle ``idle_timeout`` (the app bounds the body, ``body_timeout``), so slow
clients cannot hold the server."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import socket
import sys
from types import FrameType
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..browser import close
from ..errors import ConfigError
from ..wire import logger
from ._app import ServerState, create_app
from ._config import ServeConfig
from ._reqlog import use_json_logs

__all__ = ["GRACE_SECONDS", "BoundedH11Protocol", "bind", "run", "uvicorn_server"]

log = logger("scraper.serve")
GRACE_SECONDS = 5.0  # how long running streams may go on after a stop is asked for


class _Stopped(Exception):
    """SIGTERM arrived: stop the way SIGINT does, and exit 0."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; ConfigError saying so when the port is taken.

    Made with the protocol named (IPPROTO_TCP): asyncio sets TCP_NODELAY only on connections of such a
    socket, and without it a chunk written right after the headers waits for the client's delayed ACK.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen()
        return sock
    except OSError as exc:
        sock.close()
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ConfigError(
            f"Cannot listen on {host}:{port}: {reason}. Is another `scraper serve` running? "
            "Pick another port with --port."
        ) from None


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class BoundedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for each request's headers.

    uvicorn times out an idle kept-alive connection, but any byte resets that, and a new connection has
    no timer at all: a client sending its headers a byte at a time could hold a connection forever.
    Here the headers of every request, first or next, must be complete within ``header_timeout``.
    """

    header_timeout = 10.0

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._timed_cycle: object = None
        self._headers_due: asyncio.TimerHandle | None = None
        self._await_headers()

    def _await_headers(self) -> None:
        if self._headers_due is not None:
            self._headers_due.cancel()
        self._headers_due = self.loop.call_later(self.header_timeout, self._headers_late)

    def _headers_late(self) -> None:
        self._headers_due = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:  # no response of ours is on its way
            self.transport.write(_TIMED_OUT)
        self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and self.cycle is not self._timed_cycle:  # a request's headers arrived
            self._timed_cycle = self.cycle
            if self._headers_due is not None:
                self._headers_due.cancel()
                self._headers_due = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.our_state is not h11.MUST_CLOSE:
            self._await_headers()  # the next request's headers are due in time too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._headers_due is not None:
            self._headers_due.cancel()
            self._headers_due = None
        super().connection_lost(exc)


def uvicorn_server(config: ServeConfig, app: Any = None, *, log_level: str = "warning") -> Any:
    """The uvicorn server ``scraper serve`` runs: bounded connections, and a stop that ends open streams
    with an error event once the grace period is over (before uvicorn would cancel them)."""
    import uvicorn

    app = app if app is not None else create_app(config)
    state: ServerState = app.state.scraper

    class Protocol(BoundedH11Protocol):
        header_timeout = config.header_timeout

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            state.stop_soon(GRACE_SECONDS)
            super().handle_exit(sig, frame)

    return Server(
        uvicorn.Config(
            app,
            log_level=log_level,
            access_log=log_level in ("info", "debug") and config.log_format == "text",
            # JSON logs: uvicorn's loggers keep the handler use_json_logs gave them
            log_config=None if config.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
            lifespan="on",
            http=Protocol,
            timeout_keep_alive=max(1, round(config.idle_timeout)),
            # Past the grace period the app ends its streams itself; uvicorn's own cut is a last resort.
            timeout_graceful_shutdown=math.ceil(GRACE_SECONDS + 10),
        )
    )


def run(config: ServeConfig, *, log_level: str = "warning") -> int:
    """Serve until stopped; return the exit status (0 after SIGINT or SIGTERM)."""
    config.check()
    if config.log_format == "json":
        use_json_logs(logging.DEBUG if log_level == "debug" else logging.INFO)
    sock = bind(config.host, config.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    server = uvicorn_server(config, log_level=log_level)
    _say(
        config,
        f"scraper serve: OpenAI-compatible API at http://{shown}:{port}/v1 (health: /health, metrics: /metrics); "
        "Ctrl+C stops it",
    )
    # uvicorn takes SIGINT and SIGTERM while it runs, then raises them again once it has shut down: the
    # handler set here turns that SIGTERM into a normal return instead of the default sudden death.
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    except _Stopped:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
        close()
    _say(config, "scraper serve: stopped")
    return 0


def _say(config: ServeConfig, text: str) -> None:
    """A line for the person who started the server (a log record when the log is JSON)."""
    if config.log_format == "json":
        log.info("%s", text)
    else:
        print(text, file=sys.stderr, flush=True)
