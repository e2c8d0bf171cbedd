"""``python -m benchmarks.transfer``: ways to bring a reply's body from the page to Python, side by side.

The chat request runs as a ``fetch`` in the page; its body has to reach Python somehow. This script
sends the same request (a fast stream of many events from a local replica site, read from the page a
real chat used) and times each way of reading it, against aiohttp reading it directly:

* ``read in the page only``: the page reads the body and drops it; the floor of every way below
  that reads in the page.
* ``current transport``: the package's own (base64 by ``Uint8Array.prototype.toBase64``).
* ``pull base64``: Python asks the page for what arrived since the last ask; bytes travel as base64 of
  a binary string (``btoa``: the package's transport before, and still where ``toBase64`` is missing).
* ``pull base64, one ahead``: the same, with the next ask already sent while Python parses a chunk.
* ``pull toBase64``, ``pull toBase64, one ahead``: the same two with the browser's own base64.
* ``pull text``: the page decodes UTF-8 (``TextDecoder`` in stream mode) and hands over text.
* ``pull text, one ahead``: both.
* ``CDP stream``: the DevTools protocol pushes the body (``Network.streamResourceContent`` and
  ``Network.dataReceived``) while the page drains it; nothing is asked for (the request is held until
  streaming is on, so no byte can arrive before it).
* ``CDP Fetch + IO.read``: the body is taken in the browser process, never reaching the page, and
  read with ``IO.read``.
* ``binding push``: the page calls a function Python exposed, once per network read.
* ``byte channel (WebSocket)``: a script in a world of its own (``Page.createIsolatedWorld``: the
  page's scripts cannot reach its variables) opens a WebSocket to a server in this process (a random
  path per run), fetches the body and sends each network read as a binary frame, then ``done``; the
  bytes bypass the DevTools protocol and base64 alike.
* ``byte channel, batched``: the same, with the reads that arrive while the socket is still sending
  joined into one frame.

Every way parses the body into events as a chat does and must give the direct client's events (their ids
and times aside); the table gives the median and spread of each, the CPU time the client's processes
spent on it (steadier than wall time on a shared machine), and its ratio to the direct floor.
``--interleave`` runs the ways in turn, round after round, rather than one way's runs together.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import re
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from scraper.browser import _fetch as fetch_module
from scraper.browser._driver import in_page
from scraper.browser._fetch import _as_js
from scraper.client import WordPressChat
from scraper.wire import HTTPRequest, SSEDecoder

from ._common import Replicas, spread, tree_cpu

__all__ = ["main"]

EVENTS = 5000

# Experimental readers, added to the page next to the package's own hook (same request shape).
_PROBE = """
(() => {
  const key = Symbol.for("scraper.probe");
  if (window[key]) return;
  const runs = new Map();
  const encode = (chunks) => {
    let size = 0;
    for (const c of chunks) size += c.length;
    const all = new Uint8Array(size);
    let at = 0;
    for (const c of chunks) { all.set(c, at); at += c.length; }
    let text = "";
    for (let i = 0; i < all.length; i += 0x8000) text += String.fromCharCode.apply(null, all.subarray(i, i + 0x8000));
    return btoa(text);
  };
  const joined = (chunks) => {
    if (chunks.length === 1) return chunks[0];
    let size = 0;
    for (const c of chunks) size += c.length;
    const all = new Uint8Array(size);
    let at = 0;
    for (const c of chunks) { all.set(c, at); at += c.length; }
    return all;
  };
  const form = (req) => {
    if (!req.form) return req.body;
    const body = new FormData();
    for (const [name, value] of req.form) body.append(name, value);
    return body;
  };
  window[key] = {
    start: async (req, mode) => {
      const state = { queue: [], done: false, wake: null, decoder: new TextDecoder("utf-8") };
      runs.set(req.id, state);
      const init = { method: req.method, headers: req.headers, body: form(req), credentials: "include" };
      const response = await fetch(req.url, init);
      const reader = response.body.getReader();
      const notify = () => { if (state.wake) { const w = state.wake; state.wake = null; w(); } };
      (async () => {
        for (;;) {
          const r = await reader.read();
          if (r.done) break;
          if (mode === "drain") continue;
          if (mode === "push") {
            await window.__probe_push(req.id, state.decoder.decode(r.value, { stream: true }));
            continue;
          }
          state.queue.push(r.value);
          notify();
        }
        if (mode === "push") await window.__probe_push(req.id, null);
        state.done = true;
        notify();
      })();
      return response.status;
    },
    next: (id, how) => {
      const state = runs.get(id);
      const take = () => {
        const chunks = state.queue.splice(0, state.queue.length);
        let data = "";
        if (how === "text") { for (const c of chunks) data += state.decoder.decode(c, { stream: true }); }
        else if (how === "native" && chunks.length) data = joined(chunks).toBase64();
        else if (chunks.length) data = encode(chunks);
        return { data, done: state.done && !state.queue.length };
      };
      if (state.queue.length || state.done) return take();
      return new Promise((resolve) => { state.wake = () => resolve(take()); });
    },
  };
})();
"""


DRAIN = """async ([req]) => {
  const body = req.form ? new FormData() : req.body;
  if (req.form) for (const [name, value] of req.form) body.append(name, value);
  const response = await fetch(req.url, { method: req.method, headers: req.headers, body, credentials: "include" });
  const reader = response.body.getReader();
  while (!(await reader.read()).done);
}"""


def starter(mode: str) -> str:
    return f"([req]) => window[Symbol.for('scraper.probe')].start(req, '{mode}')"


class Parsed:
    """What a chat does with the body: parse it into events, keep their data."""

    def __init__(self) -> None:
        self.decoder = SSEDecoder()
        self.parts: list[str] = []

    def feed(self, chunk: bytes | str) -> None:
        for event in self.decoder.feed(chunk):
            self.parts.append(event.data)

    def text(self) -> str:
        for event in self.decoder.flush():
            self.parts.append(event.data)
        return "\n".join(self.parts)


_ids = iter(range(1, 1 << 30))


def same(text: str) -> str:
    """The events without their numbers (each reply has its own id and time)."""
    return re.sub(r"chatcmpl-[0-9a-z]+|[0-9]+", "#", text)


async def pull(page: Any, request: HTTPRequest, *, how: str, ahead: bool) -> str:
    """``how``: ``text`` (UTF-8 decoded in the page), ``btoa`` (base64 of a binary string) or ``native``
    (``Uint8Array.prototype.toBase64``); every pull takes all that arrived since the last."""
    request_id = next(_ids)
    await in_page(page, starter("queue"), [_as_js(request, request_id)])
    parsed = Parsed()
    ask = "([id, how]) => window[Symbol.for('scraper.probe')].next(id, how)"
    pending = asyncio.ensure_future(in_page(page, ask, [request_id, how]))
    while True:
        step = await pending
        if ahead and not step["done"]:
            pending = asyncio.ensure_future(in_page(page, ask, [request_id, how]))
        if step["data"]:
            parsed.feed(step["data"] if how == "text" else base64.b64decode(step["data"]))
        if step["done"]:
            return parsed.text()
        if not ahead:
            pending = asyncio.ensure_future(in_page(page, ask, [request_id, how]))


async def drained(page: Any, request: HTTPRequest) -> str:
    """The page reads the body and keeps nothing: what any way that reads in the page cannot beat."""
    await in_page(page, DRAIN, [_as_js(request, next(_ids))])
    return ""


async def current(page: Any, request: HTTPRequest) -> str:
    """The package's own transport, as a chat uses it."""
    response = await fetch_module.open_stream(page, request, timeout=60)
    parsed = Parsed()
    async for chunk in response.aiter_bytes():
        parsed.feed(chunk)
    await response.aclose()
    return parsed.text()


async def cdp_stream(page: Any, request: HTTPRequest) -> str:
    """The DevTools protocol pushes the body while the page drains it. Streaming can only be turned on
    for a request that has not finished loading, and a fast local reply may finish before the command
    arrives; so the request is held (``Fetch``, paused before it is sent) until streaming is on."""
    session = await page.context.new_cdp_session(page)
    parsed = Parsed()
    loop = asyncio.get_running_loop()
    finished = loop.create_future()
    paused: asyncio.Future[dict[str, Any]] = loop.create_future()
    ids: set[str] = set()

    def received(event: dict[str, Any]) -> None:
        if event["requestId"] in ids and event.get("data"):
            parsed.feed(base64.b64decode(event["data"]))

    def done(event: dict[str, Any]) -> None:
        if event["requestId"] in ids and not finished.done():
            finished.set_result(None)

    session.on("Fetch.requestPaused", lambda event: paused.done() or paused.set_result(event))
    session.on("Network.dataReceived", received)
    session.on("Network.loadingFinished", done)
    await session.send("Network.enable")
    pattern = request.url.split("?")[0] + "*"
    await session.send("Fetch.enable", {"patterns": [{"urlPattern": pattern, "requestStage": "Request"}]})
    try:
        starting = asyncio.ensure_future(in_page(page, starter("drain"), [_as_js(request, next(_ids))]))
        event = await paused
        ids.add(event["networkId"])
        buffered = await session.send("Network.streamResourceContent", {"requestId": event["networkId"]})
        if buffered.get("bufferedData"):
            raise RuntimeError("data arrived before streaming began: the order is lost")
        await session.send("Fetch.continueRequest", {"requestId": event["requestId"]})
        await starting
        await finished
        return parsed.text()
    finally:
        await session.detach()


async def io_read(page: Any, request: HTTPRequest) -> str:
    """The page sends the request; the body is taken in the browser process (``Fetch`` domain, paused at
    the response) and read with ``IO.read``; the page's own fetch is then failed."""
    session = await page.context.new_cdp_session(page)
    paused: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    session.on("Fetch.requestPaused", lambda event: paused.done() or paused.set_result(event))
    pattern = request.url.split("?")[0] + "*"
    await session.send("Fetch.enable", {"patterns": [{"urlPattern": pattern, "requestStage": "Response"}]})
    try:
        starting = asyncio.ensure_future(
            in_page(page, starter("drain") + ".catch((e) => String(e))", [_as_js(request, next(_ids))])
        )
        event = await paused
        stream = (await session.send("Fetch.takeResponseBodyAsStream", {"requestId": event["requestId"]}))["stream"]
        parsed = Parsed()
        while True:
            read = await session.send("IO.read", {"handle": stream, "size": 1 << 20})
            if read.get("data"):
                parsed.feed(base64.b64decode(read["data"]) if read.get("base64Encoded") else read["data"].encode())
            if read.get("eof"):
                break
        await session.send("IO.close", {"handle": stream})
        await session.send("Fetch.failRequest", {"requestId": event["requestId"], "errorReason": "Aborted"})
        await starting
        return parsed.text()
    finally:
        await session.detach()


class Pushed:
    def __init__(self) -> None:
        self.runs: dict[int, tuple[Parsed, asyncio.Future[None]]] = {}

    def __call__(self, _source: Any, request_id: int, chunk: str | None) -> None:
        parsed, done = self.runs[request_id]
        if chunk is None:
            done.set_result(None)
        else:
            parsed.feed(chunk)


async def push(page: Any, request: HTTPRequest, pushed: Pushed) -> str:
    request_id = next(_ids)
    parsed, done = Parsed(), asyncio.get_running_loop().create_future()
    pushed.runs[request_id] = (parsed, done)
    await in_page(page, starter("push"), [_as_js(request, request_id)])
    await done
    return parsed.text()


# The page's side of the byte channel: run by Runtime.evaluate in an isolated world of the page's frame
# (same origin and cookies as the page, none of its variables), so the page's scripts never see the socket.
_CHANNEL = """
(async () => {
  const req = %s;
  const batch = %s;
  const socket = new WebSocket(%s);
  socket.binaryType = "arraybuffer";
  await new Promise((ok, fail) => { socket.onopen = ok; socket.onerror = () => fail(new Error("no socket")); });
  const body = req.form ? new FormData() : req.body;
  if (req.form) for (const [name, value] of req.form) body.append(name, value);
  const response = await fetch(req.url, { method: req.method, headers: req.headers, body, credentials: "include" });
  const reader = response.body.getReader();
  const held = [];
  const flush = () => {
    if (!held.length) return;
    const all = new Uint8Array(held.reduce((size, c) => size + c.length, 0));
    let at = 0;
    for (const c of held.splice(0)) { all.set(c, at); at += c.length; }
    socket.send(all);
  };
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    if (!batch) { socket.send(r.value); continue; }
    held.push(r.value);  // batched: one frame once the socket has sent what it was given
    if (socket.bufferedAmount === 0) flush();
  }
  flush();
  socket.send("done");
  return response.status;
})()
"""


class Channel:
    """A WebSocket server in this process, on loopback and a free port; a run's page connects to the
    path of its own random token, and its frames go to that run alone."""

    def __init__(self) -> None:
        self.runs: dict[str, tuple[Parsed, bytearray, asyncio.Future[None]]] = {}
        self.runner: Any = None
        self.port = 0
        self.expected = ""  # the direct client's body, its numbers masked (each reply has its own ids)

    async def start(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/{token}", self._socket)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _socket(self, request: Any) -> Any:
        from aiohttp import WSMsgType, web

        run = self.runs.get(request.match_info["token"])
        if run is None:
            raise web.HTTPNotFound()
        parsed, raw, done = run
        socket = web.WebSocketResponse(max_msg_size=0)
        await socket.prepare(request)
        async for message in socket:
            if message.type == WSMsgType.BINARY:
                raw += message.data
                parsed.feed(message.data)
            elif message.type == WSMsgType.TEXT and message.data == "done":
                done.done() or done.set_result(None)
                break
        await socket.close()
        return socket


async def channel(page: Any, request: HTTPRequest, server: Channel, session: Any, world: int, batch: bool) -> str:
    """The body over a WebSocket from an isolated world; its bytes must be the UTF-8 the site sent.
    ``batch``: reads that arrive while the socket still sends go out together in one frame."""
    token = secrets.token_urlsafe(16)
    parsed, raw, done = Parsed(), bytearray(), asyncio.get_running_loop().create_future()
    server.runs[token] = (parsed, raw, done)
    try:
        url = f"ws://127.0.0.1:{server.port}/{token}"
        script = _CHANNEL % (json.dumps(_as_js(request, next(_ids))), json.dumps(batch), json.dumps(url))
        sent = await session.send(
            "Runtime.evaluate", {"expression": script, "contextId": world, "awaitPromise": True, "returnByValue": True}
        )
        if "exceptionDetails" in sent:
            raise RuntimeError(f"byte channel: {sent['exceptionDetails'].get('exception', {}).get('description')}")
        await done
        if same(bytes(raw).decode("utf-8")) != server.expected:  # strict: a split or lost byte fails here
            raise RuntimeError(f"byte channel: {len(raw)} bytes, not the direct client's body")
        return parsed.text()
    finally:
        del server.runs[token]


async def isolated_world(page: Any) -> tuple[Any, int]:
    """A CDP session and a new isolated world in the page's main frame (Playwright has no public way to
    evaluate in one)."""
    session = await page.context.new_cdp_session(page)
    tree = await session.send("Page.getFrameTree")
    made = await session.send(
        "Page.createIsolatedWorld", {"frameId": tree["frameTree"]["frame"]["id"], "worldName": "bench-channel"}
    )
    return session, made["executionContextId"]


async def direct(url: str, request: HTTPRequest, cookies: dict[str, str], raw: bytearray | None = None) -> str:
    import aiohttp

    parsed = Parsed()
    data: Any = request.body
    if request.form is not None:
        data = aiohttp.FormData()
        for name, value in request.form:
            data.add_field(name, value)
    async with (
        aiohttp.ClientSession(cookies=cookies) as session,
        session.request(request.method, request.url, headers=dict(request.headers), data=data) as response,
    ):
        while True:
            chunk = await response.content.readany()
            if not chunk:
                break
            parsed.feed(chunk)
            if raw is not None:
                raw += chunk
    return parsed.text()


async def capture(url: str) -> tuple[Any, HTTPRequest]:
    """One real chat, to get the page it ran from and the request it sent."""
    seen: list[tuple[Any, HTTPRequest]] = []
    original = fetch_module.open_stream

    async def spy(page: Any, request: HTTPRequest, **kwargs: Any) -> Any:
        seen.append((page, request))
        return await original(page, request, **kwargs)

    fetch_module.open_stream = spy  # type: ignore[assignment]
    import scraper.browser._lanes as lanes

    lanes.open_stream = spy  # type: ignore[assignment]
    try:
        chat = WordPressChat(url, plugins=("aipower",))
        async for _ in chat.create_async_generator("", [{"role": "user", "content": "Привет"}], timeout=60):
            pass
    finally:
        fetch_module.open_stream = original
        lanes.open_stream = original  # type: ignore[assignment]
    return seen[-1]


async def measure(
    page: Any, request: HTTPRequest, repeat: int, url: str, only: set[str] | None, interleave: bool, exclude: set[int]
) -> list[tuple[str, list[float], list[float]]]:
    """Runs on the browser's own loop (the page belongs to it)."""
    await in_page(page, _PROBE)
    pushed = Pushed()
    await page.expose_binding("__probe_push", pushed)
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    floor_bytes = bytearray()
    expected = await direct(url, request, cookies, floor_bytes)
    server = Channel()
    server.expected = same(floor_bytes.decode("utf-8"))
    await server.start()
    session, world = await isolated_world(page)
    try:
        return await _measure(
            page, request, repeat, url, only, interleave, exclude, pushed, cookies, expected, (server, session, world)
        )
    finally:
        await session.detach()
        await server.stop()


async def _measure(
    page: Any,
    request: HTTPRequest,
    repeat: int,
    url: str,
    only: set[str] | None,
    interleave: bool,
    exclude: set[int],
    pushed: Pushed,
    cookies: dict[str, str],
    expected: str,
    byte_channel: tuple[Channel, Any, int],
) -> list[tuple[str, list[float], list[float]]]:
    server, session, world = byte_channel
    ways: list[tuple[str, Callable[[], Awaitable[str]]]] = [
        ("direct (aiohttp)", lambda: direct(url, request, cookies)),
        ("read in the page only", lambda: drained(page, request)),
        ("current transport", lambda: current(page, request)),
        ("pull base64", lambda: pull(page, request, how="btoa", ahead=False)),
        ("pull base64, one ahead", lambda: pull(page, request, how="btoa", ahead=True)),
        ("pull toBase64", lambda: pull(page, request, how="native", ahead=False)),
        ("pull toBase64, one ahead", lambda: pull(page, request, how="native", ahead=True)),
        ("pull text", lambda: pull(page, request, how="text", ahead=False)),
        ("pull text, one ahead", lambda: pull(page, request, how="text", ahead=True)),
        ("CDP stream", lambda: cdp_stream(page, request)),
        ("CDP Fetch + IO.read", lambda: io_read(page, request)),
        ("binding push", lambda: push(page, request, pushed)),
        ("byte channel (WebSocket)", lambda: channel(page, request, server, session, world, False)),
        ("byte channel, batched", lambda: channel(page, request, server, session, world, True)),
    ]
    ways = [(name, way) for name, way in ways if only is None or name in only or name.startswith("direct")]
    times: dict[str, list[float]] = {name: [] for name, _ in ways}
    cpu: dict[str, list[float]] = {name: [] for name, _ in ways}

    async def timed(name: str, way: Callable[[], Awaitable[str]]) -> None:
        gc.collect()  # untimed: a collection of the last run's garbage does not land in this one
        used = tree_cpu(os.getpid(), exclude)
        started = time.perf_counter()
        got = await asyncio.wait_for(way(), 60)
        times[name].append((time.perf_counter() - started) * 1000)
        after = tree_cpu(os.getpid(), exclude)
        if used is not None and after is not None:
            cpu[name].append((after - used) * 1000)
        if got and same(got) != same(expected):
            raise RuntimeError(f"{name}: {len(got)} characters, not the {len(expected)} expected")

    if interleave:  # round after round of every way: a busy spell of a shared machine hits them all alike
        for _, way in ways:
            await way()  # untimed: the first run of a way warms its code paths
        for _ in range(repeat):
            for name, way in ways:
                await timed(name, way)
    else:
        for name, way in ways:  # one way at a time, so what one leaves behind (a pending push) slows only itself
            await way()
            for _ in range(repeat):
                await timed(name, way)
    return [(name, times[name], cpu[name]) for name, _ in ways]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.transfer", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument(
        "--interleave", action="store_true", help="run the ways in turn, round after round (a busy machine)"
    )
    parser.add_argument("--only", metavar="NAMES", help="ways to run, separated by semicolons (default: all)")
    args = parser.parse_args(argv)
    with Replicas(["aipower"], "process") as replicas:
        replicas.configure("aipower", first_delay=0.0, chunk_delay=0.0, reply_events=args.events)
        only = {name.strip() for name in args.only.split(";")} if args.only else None
        runtime_rows = asyncio.run(_run(args.repeat, replicas.urls["aipower"], only, args.interleave, replicas.pids))
    floor = statistics.median(runtime_rows[0][1])
    print(
        f"{args.events}-event stream, {args.repeat} runs each, ms (median ± half IQR), ratio to direct; "
        "the CPU ms the client's processes used (Python, driver, Chromium)"
    )
    for name, samples, used in runtime_rows:
        middle, half = spread(samples)
        cpu = "cpu {:6.0f} ± {:4.0f}".format(*spread(used)) if used else " " * 17
        print(f"{name:26} {middle:8.1f} ± {half:5.1f}   {cpu}   {middle / floor:5.2f}×")
    return 0


async def _run(
    repeat: int, url: str, only: set[str] | None, interleave: bool, exclude: set[int]
) -> list[tuple[str, list[float], list[float]]]:
    from scraper.browser import aclose, get_runtime

    try:
        page, request = await capture(url + "/")
        return await get_runtime().call(measure(page, request, repeat, url, only, interleave, exclude))
    finally:
        await aclose()


if __name__ == "__main__":
    sys.exit(main())
