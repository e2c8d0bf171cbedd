"""The chat request, run as a ``fetch`` inside the site's own page.

Running the request in the page gives it the browser's cookies (HttpOnly ones included), its
User-Agent, Origin and Referer, and any anti-bot clearance the page earned. The body comes back by
pull: each :meth:`StreamingResponse.aiter_bytes` step asks the page for everything that arrived since
the last step, so order is kept, chunks coalesce while Python is busy, and nothing is lost. The bytes
travel as base64 (in a browser without ``Uint8Array.prototype.toBase64``, as they are when they are
all ASCII); Python decodes them with one incremental UTF-8 decoder, so a character cut between network
reads is joined, not mangled per chunk.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

from .._aio import within
from ..errors import ScraperTimeoutError, StreamError, TransportError
from ..wire import HTTPRequest, Response, logger, redact_url
from ._driver import DriverError, in_page
from ._errors import first_line, is_gone, playwright_error
from ._page_script import ABORT, NEXT, START
from ._recording import ExchangeRecord, FlowRecorder

__all__ = ["StreamingResponse", "open_stream"]

log = logger("scraper.transport")

_ids = itertools.count(1)
ABORT_SECONDS = 5.0  # a page that cannot even abort in this time is gone or hung: the request dies with it


def _as_js(request: HTTPRequest, request_id: int) -> dict[str, Any]:
    return {
        "id": request_id,
        "method": request.method,
        "url": request.url,
        "headers": dict(request.headers),
        "body": request.body,
        "form": [list(pair) for pair in request.form] if request.form is not None else None,
    }


class StreamingResponse(Response):
    """An HTTP response whose body is still arriving in the page."""

    def __init__(
        self,
        page: Any,
        request_id: int,
        head: dict[str, Any],
        request: HTTPRequest,
        idle_timeout: float,
        record: ExchangeRecord | None = None,
    ) -> None:
        self._page = page
        self._id = request_id
        self.record = record
        self.status: int = int(head["status"])
        self.url: str = head.get("url") or request.url
        self.headers: dict[str, str] = {k.lower(): v for k, v in head.get("headers", {}).items()}
        self.request = request
        self.idle_timeout = idle_timeout
        self.received = 0
        self.on_close: Callable[[], None] | None = None  # told once, when the response is closed
        self._done = False
        self._closed = False

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body as it arrives; raises :class:`StreamError` if the connection breaks."""

        while not self._done:
            step = await self._step()
            for chunk in (step["text"].encode("ascii"), base64.b64decode(step["data"])):
                if chunk:
                    self.received += len(chunk)
                    if self.record is not None:
                        self.record.add_chunk(chunk)
                    yield chunk
            if step["error"]:
                self._done = True
                if self.record is not None:
                    self.record.error = step["error"]
                raise StreamError(f"The connection to {self.url} broke after {self.received} bytes: {step['error']}.")
            if step["done"]:
                self._done = True
                if self.record is not None:
                    self.record.complete = True

    async def _step(self) -> dict[str, Any]:
        """What arrived since the last pull: as ``data`` (base64), or as ``text`` when it is all ASCII."""
        try:
            return await within(in_page(self._page, NEXT, self._id), self.idle_timeout)
        except asyncio.TimeoutError:
            raise ScraperTimeoutError(
                f"No data from {self.url} for {self.idle_timeout:g} s; the reply stalled. Try again, or raise timeout=."
            ) from None
        except DriverError as exc:
            if is_gone(exc):
                raise playwright_error(exc, f"reading the reply from {self.url}") from exc
            raise StreamError(
                f"The page lost the response from {self.url} mid-stream ({first_line(exc)}); "
                "the page navigated away. Try again."
            ) from exc

    async def aclose(self) -> None:
        """Abort the in-page fetch if it is still running (the page forgets it either way)."""
        if self._closed:
            return
        self._closed = True
        try:
            if not self._done and await _abort(self._page, self._id):
                log.debug("aborted the in-page fetch of %s", redact_url(self.url))
        finally:
            if self.on_close is not None:
                self.on_close()


async def _abort(page: Any, request_id: int) -> bool:
    """Abort a request in the page by id; False when it had already ended or the page is gone."""
    try:
        return bool(await within(in_page(page, ABORT, request_id), ABORT_SECONDS))
    except Exception:
        return False


def _pairs(headers: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(h["name"], h["value"]) for h in headers]


async def _arrival(expected: Any) -> Any:
    """What a Playwright ``expect_event`` waited for."""
    async with expected as info:
        pass
    return await info.value


async def _raw_headers(waiter: asyncio.Task[Any], record: ExchangeRecord) -> None:
    """The headers as sent and received on the wire (Cookie and Set-Cookie included), for a recording."""
    with contextlib.suppress(Exception):
        response = await within(waiter, 5)
        record.response_headers = _pairs(await response.headers_array())
        record.request_headers = _pairs(await response.request.headers_array())


async def open_stream(
    page: Any, request: HTTPRequest, *, timeout: float, recorder: FlowRecorder | None = None
) -> StreamingResponse:
    """Send ``request`` from ``page`` and return once the status and headers have arrived."""

    log.debug("%s %s", request.method, redact_url(request.url))
    request_id = next(_ids)
    record = waiter = None
    if recorder is not None:
        form = list(request.form) if request.form is not None else None
        record = recorder.exchange(request.method, request.url, list(request.headers.items()), request.body, form)
        expected = page.expect_event(  # listening from this call on, before the request can go out
            "response",
            lambda r: r.url == request.url and r.request.method == request.method,
            timeout=timeout * 1000,
        )
        waiter = asyncio.ensure_future(_arrival(expected))
    try:
        head = await within(in_page(page, START, [_as_js(request, request_id)]), timeout)
    except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
        # The fetch may still be running in the page: abort it there, whatever happened here.
        await asyncio.shield(_abort(page, request_id))
        if waiter is not None:
            waiter.cancel()
        if isinstance(exc, asyncio.CancelledError):
            raise
        raise ScraperTimeoutError(
            f"{request.url} sent no response headers within {timeout:g} s. Try again, or raise timeout=."
        ) from None
    except DriverError as exc:
        if waiter is not None:
            waiter.cancel()
        if is_gone(exc):
            raise playwright_error(exc, f"sending the request to {request.url}") from exc
        raise TransportError(f"The browser could not send the request to {request.url}: {first_line(exc)}") from exc
    if "failed" in head:
        if record is not None:
            record.error = head["failed"]
        if waiter is not None:
            waiter.cancel()
        raise TransportError(
            f"The browser could not reach {request.url}: {head['failed']}. "
            "Check the URL, the network or proxy, and that the site is up."
        )
    if record is not None and waiter is not None:
        record.status = int(head["status"])
        await _raw_headers(waiter, record)
    response = StreamingResponse(page, request_id, head, request, idle_timeout=timeout, record=record)
    log.debug("%s %s -> %s %s", request.method, redact_url(request.url), response.status, response.content_type)
    return response
