"""What a site flow looked like on the wire: the pages as served and every request from the page.

A :class:`FlowRecorder` attached to a site session collects, in order, each page load and each in-page
request with its response headers (``Set-Cookie`` included) and body chunks with their timing. The
cassette writer turns that into files; ``scraper inspect`` turns it into a timeline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["ExchangeRecord", "FlowRecorder", "PageRecord"]

Headers = list[tuple[str, str]]


@dataclass
class PageRecord:
    """One navigation of the chat page: the HTML exactly as the server sent it."""

    url: str
    status: int
    headers: Headers
    body: str
    at: float  # seconds since the recorder started


@dataclass
class ExchangeRecord:
    """One request sent from the page and its response, chunk by chunk."""

    method: str
    url: str
    request_headers: Headers
    request_body: str | None
    at: float  # seconds since the recorder started
    request_form: list[tuple[str, str]] | None = None  # a multipart body, as its fields
    status: int | None = None
    response_headers: Headers = field(default_factory=list)
    chunks: list[tuple[float, bytes]] = field(default_factory=list)  # (seconds since the request, bytes)
    error: str | None = None
    complete: bool = False
    _t0: float = field(default_factory=time.perf_counter, repr=False)

    def add_chunk(self, data: bytes) -> None:
        self.chunks.append((time.perf_counter() - self._t0, data))

    @property
    def body(self) -> bytes:
        return b"".join(data for _, data in self.chunks)


class FlowRecorder:
    """Collects a site flow in order; attach one with ``runtime.rules.recording(url)``."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.pages: list[PageRecord] = []
        self.exchanges: list[ExchangeRecord] = []

    def _now(self) -> float:
        return time.perf_counter() - self.started

    def page(self, url: str, status: int, headers: Headers, body: str) -> PageRecord:
        record = PageRecord(url, status, headers, body, self._now())
        self.pages.append(record)
        return record

    def exchange(
        self, method: str, url: str, headers: Headers, body: str | None, form: list[tuple[str, str]] | None = None
    ) -> ExchangeRecord:
        record = ExchangeRecord(method, url, headers, body, self._now(), form)
        self.exchanges.append(record)
        return record
