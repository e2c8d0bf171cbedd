"""What applies to the sites of a runtime besides their pages: the hosts their contexts may reach
(offline replay) and the recorders that watch a site's flow.

A :class:`SiteRules` is state of a runtime (``runtime.rules``). The runtimes :func:`get_runtime` hands out
share one, so a chat that asks for another runtime (other browser options) cannot escape a limit set
for the process's chats; a runtime made directly has its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

from ..wire import logger
from ._recording import FlowRecorder

__all__ = ["SiteRules", "origin_of", "without_credentials"]

log = logger("scraper.session")


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, never with a ``user:password@`` part."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def without_credentials(url: str) -> tuple[str, dict[str, str] | None]:
    """``url`` without its ``user:password@`` part, and that part as Playwright's ``http_credentials``
    for the URL's origin (a page's ``fetch`` refuses a URL holding credentials; the context sends them)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    bare = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    credentials = {
        "username": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "origin": origin_of(url),
    }
    return bare, credentials


class SiteRules:
    """Host limits and recorders. The context managers change only what new contexts and requests see."""

    def __init__(self) -> None:
        self.allowed_hosts: set[str] | None = None
        self._recorders: dict[str, FlowRecorder] = {}

    # -- recording ---------------------------------------------------------------------------------------
    def recorder_for(self, origin: str) -> FlowRecorder | None:
        return self._recorders.get(origin)

    @contextlib.contextmanager
    def recording(self, url: str) -> Iterator[FlowRecorder]:
        """Record every page load and in-page request of the site at ``url`` while the block runs (a
        warm page is not loaded again: ``forget`` the site first to record its page too)."""
        origin = origin_of(url)
        recorder = FlowRecorder()
        previous = self._recorders.get(origin)
        self._recorders[origin] = recorder
        try:
            yield recorder
        finally:
            if previous is None:
                self._recorders.pop(origin, None)
            else:
                self._recorders[origin] = previous

    # -- host limits -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def only_hosts(self, hosts: set[str]) -> Iterator[None]:
        """While the block runs, browser contexts created from now on reach only ``hosts``."""
        previous = self.allowed_hosts
        self.allowed_hosts = set(hosts)
        try:
            yield
        finally:
            self.allowed_hosts = previous

    async def restrict(self, context: Any) -> None:
        """Make ``context`` refuse requests and WebSockets to hosts not allowed."""
        await context.route("**/*", self._allowed_or_abort)
        await context.route_web_socket(lambda url: True, self._socket_allowed_or_closed)

    def _allowed(self, url: str) -> bool:
        allowed = self.allowed_hosts
        return (
            allowed is None or (urlsplit(url).hostname or "") in allowed or url.startswith(("data:", "blob:", "about:"))
        )

    async def _socket_allowed_or_closed(self, socket: Any) -> None:
        if self._allowed(socket.url):
            socket.connect_to_server()
        else:
            log.warning("blocked a WebSocket to %s (only %s allowed)", urlsplit(socket.url).hostname, self._hosts())
            await socket.close(code=1008, reason="blocked: replaying allows loopback only")

    def _hosts(self) -> str:
        return ", ".join(sorted(self.allowed_hosts or ()))

    async def _allowed_or_abort(self, route: Any) -> None:
        url = route.request.url
        if self._allowed(url):
            await route.continue_()
        else:
            log.warning("blocked a request to %s (only %s allowed)", urlsplit(url).hostname, self._hosts())
            await route.abort("blockedbyclient")
