"""Who may talk to the server: checks every request passes before any route runs (ASGI middleware).

Loopback is no trust boundary against the user's own browser: any web page it shows can send a
"simple" cross-site POST (``text/plain``, no preflight) to 127.0.0.1, and a name the page controls can be
made to resolve to 127.0.0.1 (DNS rebinding). So:

* a request from a web page (``Origin``, or ``Sec-Fetch-Site`` saying cross-site) is refused with 403
  unless its origin was allowed (``--allow-origin``); allowed origins get CORS answers;
* a ``Host`` that is not an address the server listens on (or ``--allow-host``) is refused with 421;
* a request with a body must say ``Content-Type: application/json`` (415 otherwise).

The OpenAI SDK, curl and ``scraper chat`` send no ``Origin`` and the listening address as ``Host``: they
pass unchanged. Every route, present or added later, is behind these checks.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from ._errors import refusal

__all__ = ["Guard"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def _split_host(value: str) -> tuple[str, int | None]:
    """``host[:port]`` (IPv6 in brackets) as a lower-case host and a port."""
    value = value.strip().lower()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = value.partition(":")
    return host.rstrip("."), int(port) if port.isdigit() else None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Guard:
    """ASGI middleware: Origin, Host and Content-Type checks in front of ``app``."""

    def __init__(self, app: App, *, allow_origins: Iterable[str] = (), allow_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.allow_origins = {origin.rstrip("/").lower() for origin in allow_origins}
        self.allow_hosts = {host.lower() for host in allow_hosts}
        self.refused = 0  # requests refused here (none of them reached a route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        problem = self._problem(scope, headers)
        if problem is not None:
            self.refused += 1
            await _answer(send, *problem)
            return
        origin = headers.get("origin", "").rstrip("/").lower()
        if origin and scope["method"] == "OPTIONS":  # a preflight of an allowed origin
            await _answer(send, 204, None, cors=_cors(origin, preflight=True))
            return
        if not origin:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_cors(origin)]}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _problem(self, scope: Scope, headers: dict[str, str]) -> tuple[int, dict[str, Any]] | None:
        host = headers.get("host")
        if host is not None and not self._host_allowed(host, scope.get("server")):
            return 421, refusal(
                421,
                "This server does not answer for that Host; use the address it listens on (or start it with "
                "--allow-host NAME).",
                "misdirected_request",
            )
        origin = headers.get("origin")
        fetch_site = headers.get("sec-fetch-site", "")
        if (origin is not None or fetch_site in ("cross-site", "same-site")) and (
            (origin or "").rstrip("/").lower() not in self.allow_origins
        ):
            return 403, refusal(
                403,
                "Requests from web pages are refused: a page the browser shows must not drive this server. "
                "Start it with --allow-origin ORIGIN to let one in.",
                "origin_not_allowed",
            )
        if scope["method"] in _BODY_METHODS:
            media = headers.get("content-type", "").partition(";")[0].strip().lower()
            if media != "application/json":
                return 415, refusal(
                    415,
                    "Send the request body as JSON, with `Content-Type: application/json`.",
                    "unsupported_media_type",
                )
        return None

    def _host_allowed(self, value: str, server: tuple[str, int] | None) -> bool:
        host, port = _split_host(value)
        if host in self.allow_hosts or value.strip().lower() in self.allow_hosts:
            return True
        if server is None:
            return True
        listen_host, listen_port = server[0].lower(), server[1]
        if port is not None and port != listen_port:
            return False
        if host == listen_host:
            return True
        try:
            listening = ipaddress.ip_address(listen_host)
        except ValueError:
            return False
        if listening.is_loopback:
            return host in _LOOPBACK_NAMES or (_is_ip(host) and ipaddress.ip_address(host).is_loopback)
        # Listening on every address (behind an API key): an address is fine, a name must be allowed.
        return listening.is_unspecified and (_is_ip(host) or host == "localhost")


def _cors(origin: str, *, preflight: bool = False) -> list[tuple[bytes, bytes]]:
    headers = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
    if preflight:
        headers += [
            (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
            (b"access-control-allow-headers", b"authorization, content-type"),
            (b"access-control-max-age", b"600"),
        ]
    return headers


async def _answer(
    send: Send, status: int, body: dict[str, Any] | None, *, cors: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    data = json.dumps(body).encode("utf-8") if body is not None else b""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())] if body else []
    await send({"type": "http.response.start", "status": status, "headers": [*headers, *cors]})
    await send({"type": "http.response.body", "body": data})
