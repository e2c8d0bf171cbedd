"""The in-page request hands every body to Python byte for byte, however the network cut it.

The page hands each pull over as base64 (``Uint8Array.prototype.toBase64``), or, in a browser without
it, as the bytes themselves when they are all ASCII and as base64 of a binary string otherwise: both
ways are read here. These bodies are written in pieces with a flush after each, so the page reads
them cut where the server cut them (a character split in two, a BOM, a stray byte).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import pytest

from scraper.browser import get_runtime, open_stream
from scraper.browser._fetch import _as_js
from scraper.browser._page_script import page_script
from scraper.wire import HTTPRequest
from tests._support import http_server

PACE = 0.05  # seconds between the pieces of a body
SMILE = "🙂".encode()
PRIVET = "Привет".encode()
BODIES: dict[str, list[bytes]] = {
    "utf8-cut": [PRIVET[:3], PRIVET[3:] + SMILE[:1], SMILE[1:3], SMILE[3:] + b" ok"],
    "bom": ["\ufeff".encode() + b"data: 1\n\n", "\ufeff".encode()],
    "stray-byte": [b"data: " + PRIVET[:5], PRIVET[5:] + b"\xff\xfe", SMILE[:2], SMILE[2:] + b" after"],
    "ends-mid-character": [b"text ", SMILE[:3]],
    "cp1251": ["Привет, мир".encode("cp1251"), "!".encode("cp1251")],
    "empty": [],
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    paths: ClassVar[list[str]] = []  # every path asked for, in order

    def do_GET(self) -> None:
        self.paths.append(self.path)
        if self.path == "/":
            page = b"<!doctype html><title>bodies</title><p>bodies"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        pieces = BODIES[self.path.rsplit("/", 1)[-1]]
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in pieces:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
            time.sleep(PACE)  # the server's pace, so the page reads each piece on its own
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with http_server(Handler) as url:
        yield url


async def streamed(page: Any, url: str) -> tuple[bytes, int]:
    response = await open_stream(page, HTTPRequest("GET", url), timeout=30)
    pieces = [chunk async for chunk in response.aiter_bytes()]
    await response.aclose()
    assert all(pieces), "no empty chunk is handed on"
    return b"".join(pieces), response.received


def warm_lane(url: str) -> Any:
    """The lane of the page a chat with the site of ``url`` runs in."""
    return get_runtime().sites.pool(url.rsplit("/body/", 1)[0] + "/").primary


async def read(url: str) -> tuple[bytes, int]:
    """Through a warm site's page, as a chat reads."""
    lane = warm_lane(url)

    async def body() -> tuple[bytes, int]:  # on the browser's own loop, where its pages live
        await lane.ready(30)
        return await streamed(lane.page, url)

    return await get_runtime().call(body())


async def read_without_native_base64(url: str) -> tuple[bytes, int]:
    """Through a page of a browser that has no ``Uint8Array.prototype.toBase64`` (before Chromium 140)."""

    async def body() -> tuple[bytes, int]:
        context = await (await get_runtime().browser()).new_context()
        try:
            await context.add_init_script("delete Uint8Array.prototype.toBase64;")  # runs before the package's
            await context.add_init_script(page_script())
            page = await context.new_page()
            await page.goto(url.rsplit("/body/", 1)[0] + "/")
            assert not await page.evaluate("'toBase64' in Uint8Array.prototype")
            return await streamed(page, url)
        finally:
            await context.close()

    return await get_runtime().call(body())


@pytest.mark.parametrize("case", list(BODIES))
@pytest.mark.parametrize("reader", [read, read_without_native_base64], ids=["toBase64", "binary-string"])
async def test_body_arrives_byte_for_byte(site, case, reader):
    got, received = await reader(f"{site}/body/{case}")
    assert got == b"".join(BODIES[case])
    assert received == len(got)


async def test_a_request_aborted_before_its_timer_fires_is_never_sent(site):
    """A chat given up on (its client left) between the call that starts its request and the page's timer
    that sends it: the abort stops it there, where it once found nothing to abort and let it go out."""
    url = f"{site}/body/empty?never-sent"
    lane = warm_lane(url)

    async def start_and_abort() -> dict[str, Any]:
        await lane.ready(30)
        return await lane.page.evaluate(
            """([req]) => new Promise((resolve) => {
                const hook = window[Symbol.for('scraper.hook')];
                let aborted = null;
                hook.later(req, (head) => resolve({ head, aborted }));
                aborted = hook.abort(req.id);
            })""",
            [_as_js(HTTPRequest("GET", url), 10**9)],
        )

    result = await get_runtime().call(start_and_abort())
    assert result["aborted"] is True
    assert "failed" in result["head"]
    got, _ = await read(f"{site}/body/utf8-cut")  # the page still works, and the server has seen its request
    assert got == b"".join(BODIES["utf8-cut"])
    assert "/body/empty?never-sent" not in Handler.paths
