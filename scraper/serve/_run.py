"""Running the server as ``scraper serve`` does: uvicorn on the main thread, on a socket bound first (so
a taken port is one clear error), until SIGINT or SIGTERM; then streams get a grace period to finish,
are cancelled past it, and the browser is closed, leaving no process behind."""

from __future__ import annotations

import os
import signal
import socket
import sys
from types import FrameType

from .._extras import import_extra
from ..browser import close
from ..errors import ConfigError
from ._app import create_app
from ._config import ServeConfig

__all__ = ["GRACE_SECONDS", "bind", "run"]

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


def run(config: ServeConfig, *, log_level: str = "warning") -> int:
    """Serve until stopped; return the exit status (0 after SIGINT or SIGTERM)."""
    uvicorn = import_extra("uvicorn", "serve")

    config.check()
    sock = bind(config.host, config.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            log_level=log_level,
            access_log=log_level in ("info", "debug"),
            lifespan="on",
            timeout_graceful_shutdown=GRACE_SECONDS,
        )
    )
    print(
        f"scraper serve: OpenAI-compatible API at http://{shown}:{port}/v1 (health: /health); Ctrl+C stops it",
        file=sys.stderr,
        flush=True,
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
    print("scraper serve: stopped", file=sys.stderr, flush=True)
    return 0
