"""``scraper chat`` through a running ``scraper serve``: the warm path of the command line.

When a server answers at ``SCRAPER_SERVER`` (default http://127.0.0.1:1337; ``off`` never looks), the
chat goes through its warm browser: a Python start, one probe, one request, the reply. The page is the
one this command would load itself (its flags and its environment decide), sent as the request's
``site``. Standard library only: the browser layer is not even imported on this path.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import socket
import sys
from collections.abc import Iterator
from typing import Any, TextIO
from urllib.parse import urlsplit

from .. import errors
from ..errors import ScraperError, StreamError
from ..serve._config import DEFAULT_PORT
from ..wire._sse import SSEDecoder
from ._common import Progress, SiteChoice, UsageError

__all__ = ["DEFAULT_SERVER", "chat_through_server", "server_url"]

log = logging.getLogger("scraper.cli")
DEFAULT_SERVER = f"http://127.0.0.1:{DEFAULT_PORT}"
CONNECT_SECONDS = 0.1  # nothing listening on loopback is known at once; a far host that drops packets is not
HEALTH_SECONDS = 2.0
# Flags about the browser itself: a chat that asks for them runs in a browser of its own.
OWN_BROWSER_FLAGS = (
    "headed",
    "slow_mo",
    "trace",
    "debug_dir",
    "proxy",
    "cookie",
    "driver",
    "virtual_display",
    "no_auto_click",
    "browser",
)


def server_url() -> str | None:
    """Where a server may be (``SCRAPER_SERVER``), or None when it is switched off."""
    value = os.environ.get("SCRAPER_SERVER", DEFAULT_SERVER).strip()
    if value.lower() in ("", "0", "off", "no", "none"):
        return None
    url = value if "://" in value else f"http://{value}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"SCRAPER_SERVER must be http://HOST:PORT (or off), not {value!r}")
    return url.rstrip("/")


def _headers() -> dict[str, str]:
    key = os.environ.get("SCRAPER_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


def _connect(url: str) -> http.client.HTTPConnection | None:
    """A connection to a scraper server at ``url`` that answered its health check, or None."""
    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname or "", parts.port, timeout=CONNECT_SECONDS)
    try:
        connection.connect()
        # The chat request follows the health check on this connection in two writes (headers, body):
        # without TCP_NODELAY the second waits for the server's delayed ACK, some 40 ms.
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.sock.settimeout(HEALTH_SECONDS)
        connection.request("GET", "/health", headers=_headers())
        response = connection.getresponse()
        health = json.loads(response.read())
    except (OSError, ValueError, http.client.HTTPException):
        connection.close()
        return None
    if response.status != 200 or not isinstance(health, dict) or health.get("service") != "scraper":
        connection.close()
        return None
    connection.sock.settimeout(None)  # the server bounds each step of the chat, and answers 504 past it
    return connection


def _request(args: argparse.Namespace, choice: SiteChoice, text: str) -> dict[str, Any]:
    site: dict[str, Any] = {"url": choice.page_url}
    if choice.fallback_urls:
        site["fallback_urls"] = list(choice.fallback_urls)
    if choice.plugins:
        site["plugins"] = list(choice.plugins)
    if choice.bot is not None:
        site["bot"] = choice.bot
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": text}],
        "stream": True,
        "site": site,
        "timeout": args.timeout,
    }
    if getattr(args, "continue_", False):
        body["conversation"] = "last"
    if choice.preset is not None:
        body["provider"] = choice.preset.name
    if args.model:
        body["model"] = args.model
    return body


def _reported(error: Any) -> ScraperError:
    """The error the server reported, as the class it names, so it prints as a local run would."""
    error = error if isinstance(error, dict) else {}
    code = str(error.get("code"))
    kind = next((cls for cls in (errors.InputTooLongError,) if cls.code == code), getattr(errors, code, None))
    if not (isinstance(kind, type) and issubclass(kind, ScraperError)):
        kind = ScraperError
    reported = kind.__new__(kind)
    ScraperError.__init__(reported, str(error.get("message") or "the scraper server reported an error"))
    return reported


def _payloads(response: http.client.HTTPResponse) -> Iterator[str]:
    """The ``data`` of each server-sent event of the response, as it arrives."""
    decoder = SSEDecoder()
    while True:
        piece = response.read1(65536)
        if not piece:
            return
        for event in decoder.feed(piece):
            yield event.data


def chat_through_server(args: argparse.Namespace, choice: SiteChoice, text: str, out: TextIO) -> bool:
    """Stream the reply through a running server; False (nothing done) when none answers or the flags
    ask for a browser of this command's own."""
    if getattr(args, "no_server", False) or any(getattr(args, flag, None) for flag in OWN_BROWSER_FLAGS):
        return False
    url = server_url()
    connection = _connect(url) if url else None
    if connection is None:
        return False
    with Progress(sys.stderr, choice.label) as progress:
        log.info("chatting through the scraper server at %s", url)
        try:
            body = json.dumps(_request(args, choice, text), ensure_ascii=False).encode("utf-8")
            headers = {**_headers(), "Content-Type": "application/json", "Accept": "text/event-stream"}
            connection.request("POST", "/v1/chat/completions", body=body, headers=headers)
            response = connection.getresponse()
            if response.status != 200:
                raise _reported(_json(response.read()).get("error"))
            for data in _payloads(response):
                if data == "[DONE]":
                    break
                chunk = _json(data)
                if "error" in chunk:
                    raise _reported(chunk["error"])
                piece = (chunk.get("choices") or [{}])[0].get("delta", {}).get("content")
                if piece:
                    progress.stop()
                    out.write(piece)
                    out.flush()
            else:
                raise StreamError(f"The scraper server at {url} closed the stream before the reply's end.")
        except (OSError, http.client.HTTPException) as exc:
            raise StreamError(f"Lost the scraper server at {url}: {exc}") from None
        finally:
            connection.close()
    out.write("\n")
    out.flush()
    return True


def _json(data: str | bytes) -> dict[str, Any]:
    """A JSON object, or {} for anything else (the caller then reports what is missing)."""
    try:
        value = json.loads(data)
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {}
