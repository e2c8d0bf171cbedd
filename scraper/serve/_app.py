"""The OpenAI-compatible app: ``/v1/chat/completions``, ``/v1/responses``, ``/v1/models``, ``/health``
(Starlette, ASGI).

Every request shares one warm browser and its site lanes (one :class:`~scraper.ChatService`). A chat
holds one of ``max_concurrency`` slots from the moment it starts until its last byte is sent, or until
its client goes away: then the chat is cancelled and the request in the page aborted.

A streamed reply does not answer until the chat's first event is in, so an error before any text
gets its own HTTP status (404, 502, 503, 504...); an error after text was sent ends the stream with an
``error`` event, which OpenAI's SDK raises, never with a normal finish.

Every request first passes :class:`~._guard.Guard` (Origin, Host, Content-Type) and its body
:func:`~._validate.read_json` (size, time, nesting, Unicode): a bad request is a 4xx before any browser
work. When the server stops, streams still open after the grace period end with an ``error`` event and
``[DONE]`` (:meth:`ServerState.stop`), so a client can tell a cut from a finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import __version__
from .._aio import closing, within
from ..browser import (
    BrowserOptions,
    BrowserPool,
    BrowserRuntime,
    origin_of,
    remote_options,
    share_profiles,
    tree_memory,
    where,
)
from ..client import ChatService
from ..client._completions import CompletionBuilder, CompletionRequest
from ..client._conversation import ConversationBook, TurnRequest
from ..client._models import ModelCatalog, Resolved
from ..client._service import PooledChatService
from ..errors import AuthenticationError, BrowserError, BusyError, ConfigError, ScraperError, SiteBudgetError
from ..plugins import Finish, TextDelta
from ..state import MemoryRateLimiter, RateLimiter, RedisRateLimiter, RedisStore, open_store
from ..wire import logger, redact, redact_url
from ._config import ServeConfig
from ._errors import error_body, error_json
from ._guard import Guard
from ._metrics import CONTENT_TYPE, Metrics
from ._reqlog import RequestLog
from ._validate import read_json

__all__ = ["ServerState", "Slots", "create_app"]

log = logger("scraper.serve")
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_JSON_HEADERS = [(b"content-type", b"application/json")]


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _event(value: Any) -> bytes:
    return b"data: " + (value if isinstance(value, bytes) else _json(value)) + b"\n\n"


class Slots:
    """At most ``limit`` chats at once; a request beyond that waits its turn up to ``wait`` seconds, then
    gets :class:`~scraper.BusyError` (429)."""

    def __init__(self, limit: int, wait: float) -> None:
        self.limit = limit
        self.wait = wait
        self.in_flight = 0
        self.waiting = 0
        self._free = asyncio.Semaphore(limit)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._free.locked():
            self.waiting += 1
            try:
                await within(self._free.acquire(), self.wait)
            except asyncio.TimeoutError:
                raise BusyError(
                    f"{self.limit} chats are in flight and none ended within {self.wait:g} s; try again shortly "
                    "(or start the server with a higher --max-concurrency)."
                ) from None
            finally:
                self.waiting -= 1
        else:
            await self._free.acquire()
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self._free.release()


class ServerState:
    """What the app's requests share: settings, the chat service, the models, the slots, counters."""

    def __init__(self, config: ServeConfig, service: ChatService) -> None:
        self.config = config
        self.service = service
        self.catalog = ModelCatalog(config.sites, allow_urls=config.urls_allowed)
        self.slots = Slots(config.max_concurrency, config.queue_timeout)
        # which site conversation goes on with which history (the process's own store unless configured)
        # ... or, with --state, the Redis this server shares with others (its profiles too)
        self.shared: RedisStore | None = RedisStore(config.state) if config.state else None
        # each site's budget of chats a minute: this server's, or every server's on the shared Redis
        self.budget: RateLimiter | None = None
        if config.site_rate is not None:
            rate = config.site_rate
            self.budget = RedisRateLimiter(self.shared, rate) if self.shared else MemoryRateLimiter(rate)
        if self.shared is not None:
            self.book = ConversationBook(self.shared)
        else:
            self.book = (
                service.book if config.conversations is None else ConversationBook(open_store(config.conversations))
            )
        self.served = 0  # chats answered to the end
        self.failed = 0  # chats that ended with an error (a client that left is neither)
        self.metrics = Metrics()  # what GET /metrics reports
        self.browser_error: dict[str, Any] | None = None  # the browser's last failure: when, and what
        self.started = time.time()
        self.cut: asyncio.Event | None = None  # set when the server stops and open chats must end now
        self.stopping = False
        self.loop: asyncio.AbstractEventLoop | None = None  # the app's, once it started

    def stop_soon(self, grace: float) -> None:
        """:meth:`stop` from any thread, or from a signal handler."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.stop, grace)

    def stop(self, grace: float) -> None:
        """The server is stopping: chats still running after ``grace`` seconds are ended (on the app's loop)."""
        if self.stopping:
            return
        self.stopping = True
        loop = asyncio.get_running_loop()
        loop.call_later(grace, self.cut_now)

    def cut_now(self) -> None:
        self._cut().set()

    def _cut(self) -> asyncio.Event:
        if self.cut is None:
            self.cut = asyncio.Event()
        return self.cut

    def authorized(self, request: Request) -> bool:
        key = self.config.api_key
        if not key:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), key.encode())

    def authorize(self, request: Request) -> None:
        if not self.authorized(request):
            raise AuthenticationError(
                "This server wants its API key: send `Authorization: Bearer KEY` "
                "(OpenAI clients: api_key=KEY; `scraper chat`: set SCRAPER_API_KEY)."
            )


class ChatResponse:
    """The ASGI response of one chat: a slot, the chat, and its answer (a stream of chunks or one JSON
    object), while watching for the client to leave, which cancels the chat."""

    def __init__(self, state: ServerState, request: CompletionRequest, chosen: Resolved) -> None:
        self.state = state
        self.request = request
        self.chosen = chosen
        self.started = False  # the response's status line has been sent
        self.queued: float | None = None  # seconds the chat waited for a slot (sent as x-scraper-queue-ms)
        self.turn: TurnRequest | None = None
        self.arrived = time.perf_counter()
        self.first_text = False  # the chat's first event is in (its time was counted)

    @property
    def plugin(self) -> str:
        """The plugin that answered (once the turn was planned), else the ones the request allowed."""
        plan = self.turn.plan if self.turn is not None else None
        if plan is not None and plan.record.plugin:
            return plan.record.plugin
        return ",".join(self.chosen.target.plugins or ()) or "unknown"

    async def _timed(self, events: AsyncIterator[TextDelta | Finish]) -> AsyncIterator[TextDelta | Finish]:
        """``events``, counting the time to the first one (what a client waits before text starts)."""
        async with closing(events):
            async for event in events:
                if not self.first_text:
                    self.first_text = True
                    self.state.metrics.first_chunk_after(time.perf_counter() - self.arrived)
                yield event

    def _events(self) -> AsyncIterator[TextDelta | Finish]:
        """The chat's events: one turn of the conversation the request's messages are."""
        timeout = self.request.timeout or self.state.config.timeout
        book, wanted = self.state.book, self.request.conversation
        record = None
        if wanted is not None:  # messages that add to a conversation this server knows
            found = book.last(self.chosen.target.page_url) if wanted == "last" else wanted
            record = book.get(found) if found else None
            if record is None and wanted != "last":
                raise ConfigError(f"No conversation {wanted!r} is known to this server.")
        messages = [*(record.messages if record else []), *self.request.messages]
        self.turn, events = self.state.service.turn(
            self.chosen.target,
            messages,
            record=record,
            timeout=timeout,
            book=book,
            wait=self.state.config.queue_timeout,
        )
        return events

    async def _take_budget(self) -> None:
        """One chat from the site's budget (``--site-rate``), before any browser work: waited for while
        the window frees within the queue timeout (counted as queue wait), else SiteBudgetError (429)."""
        budget = self.state.budget
        if budget is None:
            return
        site = origin_of(self.chosen.target.page_url).lower()
        deadline = self.arrived + self.state.config.queue_timeout
        while (wait := await asyncio.to_thread(budget.take, site)) > 0:
            if time.perf_counter() + wait > deadline:
                raise SiteBudgetError(
                    f"{site} had its {budget.limit} chats of the last {budget.window:g} s (--site-rate); the next "
                    f"frees in {wait:.1f} s, beyond the queue timeout. Try again then.",
                    retry_after=wait,
                )
            await asyncio.sleep(wait)

    async def _render(self, send: Send, events: AsyncIterator[TextDelta | Finish]) -> None:
        """The answer in OpenAI's chat completion shapes: chunks as they come, or one object at the end."""
        builder = CompletionBuilder(self.chosen.model)
        if self.request.stream:
            await self._stream(send, events, builder)
        else:
            async for event in events:
                builder.chunk(event)
            await self._start(send, 200, _JSON_HEADERS)
            await self._last(send, _json(builder.completion().to_dict()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chat = asyncio.ensure_future(self._answer(send))
        gone = asyncio.ensure_future(_client_gone(receive))
        cut = asyncio.ensure_future(self.state._cut().wait())
        try:
            await asyncio.wait({chat, gone, cut}, return_when=asyncio.FIRST_COMPLETED)
            if gone.done() and not chat.done():
                self.state.metrics.chat_ended("left", self.plugin)
                log.info("the client left; cancelling its chat with %s", redact_url(self.chosen.target.page_url))
            elif cut.done() and not chat.done():
                chat.cancel()
                await asyncio.gather(chat, return_exceptions=True)
                self.state.metrics.chat_ended("failed", self.plugin)
                await self._fail(send, _Stopping("The server is shutting down; the reply was cut. Send it again."))
        finally:
            for task in (chat, gone, cut):
                task.cancel()
            await asyncio.gather(chat, gone, cut, return_exceptions=True)

    async def _answer(self, send: Send) -> None:
        state = self.state
        arrived = self.arrived = time.perf_counter()
        try:
            await self._take_budget()
            async with state.slots.slot():
                self.queued = time.perf_counter() - arrived
                state.metrics.queued_for(self.queued)
                async with closing(self._timed(self._events())) as events:
                    await self._render(send, events)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            state.failed += 1
            state.metrics.chat_ended("failed", self.plugin)
            if isinstance(exc, BrowserError):
                state.browser_error = {"at": round(time.time(), 3), "error": type(exc).__name__, "message": str(exc)}
            if not isinstance(exc, ScraperError):
                log.exception("a chat failed unexpectedly")
            await self._fail(send, exc)

    async def _stream(self, send: Send, events: AsyncIterator[TextDelta | Finish], builder: CompletionBuilder) -> None:
        """Chunks as the events come; the status goes out with the first one, so an early error has its own."""
        async for event in events:
            if not self.started:
                await self._start(send, 200, _SSE_HEADERS)
            await send(
                {"type": "http.response.body", "body": _event(builder.chunk(event).to_dict()), "more_body": True}
            )
        if not self.started:  # no event at all: still a complete, empty reply
            await self._start(send, 200, _SSE_HEADERS)
            await send(
                {"type": "http.response.body", "body": _event(builder.chunk(Finish()).to_dict()), "more_body": True}
            )
        await self._last(send, _event(b"[DONE]"))

    async def _last(self, send: Send, body: bytes) -> None:
        """The answer's last bytes: the chat counts as served before its client can see the end."""
        self.state.served += 1
        self.state.metrics.chat_ended("served", self.plugin)
        await send({"type": "http.response.body", "body": body})

    async def _start(self, send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.started = True
        if self.queued is not None:
            headers = [*headers, (b"x-scraper-queue-ms", f"{self.queued * 1000:.1f}".encode())]
        plan = self.turn.plan if self.turn is not None else None
        if plan is not None:  # which site conversation answered, and whether a history was new to it
            headers = [*headers, (b"x-scraper-conversation", plan.record.id.encode())]
            if plan.context_note:
                headers.append((b"x-scraper-context", plan.context_note.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})

    def _stream_error(self, exc: Exception) -> bytes:
        """The last bytes of a stream that failed after it started."""
        return _event(error_body(exc)[1]) + _event(b"[DONE]")

    async def _fail(self, send: Send, exc: Exception) -> None:
        """Report an error: with its status before the answer started, else as the stream's last event."""
        if not self.started:
            status, body = error_json(exc)
            wait = getattr(exc, "retry_after", None)  # a site's "wait": said the HTTP way too
            retry = [(b"retry-after", str(math.ceil(wait)).encode())] if wait is not None else []
            await self._start(send, status, _JSON_HEADERS + retry)
            await send({"type": "http.response.body", "body": body})
        elif self.request.stream:
            await send({"type": "http.response.body", "body": self._stream_error(exc)})
        else:  # the JSON answer was on its way: all that can be done is to end it
            await send({"type": "http.response.body", "body": b""})


async def _read_json(request: Request, limit: int) -> Any:
    """The body as checked JSON, at most ``limit`` bytes (see :mod:`._validate`): every route that reads
    one this way gets the same checks and the server's body timeout."""
    state = getattr(request.app.state, "scraper", None)
    timeout = state.config.body_timeout if state is not None else ServeConfig.body_timeout
    return await read_json(request, limit, timeout)


class _Stopping(ScraperError):
    """The server stopped before the chat ended."""

    http_status = 503


async def _client_gone(receive: Receive) -> None:
    """Returns when the client disconnects (the request body has been read by then)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def create_app(config: ServeConfig, service: ChatService | None = None) -> Starlette:
    """The app for ``config``; ``service`` defaults to the process's browser for the config's options."""
    state = ServerState(config, service or _service(config))
    pooled = state.service if isinstance(state.service, PooledChatService) else None

    async def chat_completions(request: Request) -> ChatResponse:
        state.authorize(request)
        body = CompletionRequest.from_body(await _read_json(request, config.max_body))
        chosen = state.catalog.resolve(body.model, provider=body.provider, site=body.site)
        if body.ignored:
            log.debug("ignoring request fields a chat box has no use for: %s", ", ".join(body.ignored))
        return ChatResponse(state, body, chosen)

    async def responses(request: Request) -> ChatResponse:
        from ._responses import responses_endpoint  # it builds on this module's ChatResponse

        return await responses_endpoint(state, request)

    async def models(request: Request) -> JSONResponse:
        state.authorize(request)
        found = await state.catalog.models(state.service, timeout=min(config.timeout, 30))
        data = [
            {"id": m.id, "object": "model", "created": state.catalog.created, "owned_by": m.owned_by} for m in found
        ]
        return JSONResponse({"object": "list", "data": data})

    async def health(request: Request) -> JSONResponse:
        answer: dict[str, Any] = {"status": "ok", "service": "scraper", "version": __version__}
        if state.authorized(request):
            answer |= await _runtime_state(state.service.runtime)
            answer["memory"] = tree_memory().to_dict()
            answer["chats"] = {
                "in_flight": state.slots.in_flight,
                "waiting": state.slots.waiting,
                "served": state.served,
                "failed": state.failed,
                "max_concurrency": state.slots.limit,
            }
            if pooled is None:
                answer["browsers"] = [_browser_health(state, answer)]
            else:
                answer["browsers"] = [member.health() for member in pooled.pool]
                answer["pool"] = {"size": len(pooled.pool), "up": pooled.pool.up}
                answer["pool"] |= {"lost": pooled.pool.lost, "rejoined": pooled.pool.rejoined}
            if state.shared is not None:  # the URL without its password
                answer["state"] = {"url": state.shared.shown, "up": await asyncio.to_thread(state.shared.ping)}
        return JSONResponse(answer)

    async def admin_browsers(request: Request) -> JSONResponse:
        """Make the pool the browsers given: new ones join, ones left out close once their chats end."""
        state.authorize(request)
        body = await _read_json(request, config.max_body)
        given = body.get("browsers") if isinstance(body, dict) else None
        if pooled is None:
            raise ConfigError("This server chats in one browser; start it with two or more --browser to change them.")
        if not isinstance(given, (str, list)) or not all(isinstance(item, str) for item in given):
            raise ConfigError('POST /admin/browsers wants {"browsers": ["local" or URL, ...]}.')
        await asyncio.get_running_loop().run_in_executor(None, pooled.pool.replace, given)
        for runtime in pooled.runtimes:
            if config.max_sites is not None:
                runtime.sites.max_sites = config.max_sites
        return JSONResponse({"browsers": [member.health() for member in pooled.pool]})

    async def metrics(request: Request) -> Response:
        state.authorize(request)
        runtimes = [await _runtime_state(runtime) for runtime in state.service.runtimes]
        lanes = [lane for runtime in runtimes for site in runtime["sites"] for lane in site["lanes"]]
        up = pooled.pool.up if pooled is not None else sum(int(r["browser"]["connected"]) for r in runtimes)
        gauges = {
            "scraper_browsers": ("Browsers the server chats in.", len(runtimes)),
            "scraper_browsers_up": ("Browsers connected and answering.", up),
            "scraper_pages_open": ("Chat pages loaded in the browsers.", sum(lane["loaded"] for lane in lanes)),
            "scraper_sites_warm": ("Sites with warm pages.", sum(len(runtime["sites"]) for runtime in runtimes)),
            "scraper_chats_in_flight": ("Chats running now.", state.slots.in_flight),
            "scraper_chats_waiting": ("Chats waiting for a free slot.", state.slots.waiting),
        }
        return Response(state.metrics.render(gauges), media_type=CONTENT_TYPE)

    async def scraper_error(request: Request, exc: Exception) -> Response:
        status, body = error_body(exc)
        return JSONResponse(body, status_code=status)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        kind = "invalid_request_error"
        error = {"message": f"{request.method} {request.url.path}: {exc.detail}", "type": kind, "param": None}
        return JSONResponse({"error": {**error, "code": None}}, status_code=exc.status_code)

    async def unexpected(request: Request, exc: Exception) -> Response:
        status, body = error_body(exc)
        return JSONResponse(body, status_code=status)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.loop = asyncio.get_running_loop()
        # The bound on warm sites holds while the server runs: the browser may be the process's own,
        # shared with other code that set its own bound.
        bounds = {runtime: runtime.sites.max_sites for runtime in state.service.runtimes}
        if config.max_sites is not None:
            for runtime in bounds:
                runtime.sites.max_sites = config.max_sites
        warming = [asyncio.ensure_future(_warm(runtime)) for runtime in bounds]
        if state.shared is not None:
            log.info("state shared with other servers in %s", state.shared.shown)
            share_profiles(state.shared)
        try:
            yield
        finally:
            for task in warming:
                task.cancel()
            for runtime, bound in bounds.items():
                runtime.sites.max_sites = bound
            if state.shared is not None:
                share_profiles(None)
                state.shared.close()
            if pooled is not None:
                await pooled.pool.aclose()

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/responses", responses, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/admin/browsers", admin_browsers, methods=["POST"]),
        ],
        exception_handlers={ScraperError: scraper_error, HTTPException: http_error, Exception: unexpected},
        lifespan=lifespan,
        middleware=[
            Middleware(RequestLog),
            Middleware(Guard, allow_origins=config.allow_origins, allow_hosts=config.allow_hosts),
        ],
    )
    app.state.scraper = state
    return app


def _browser_health(state: ServerState, runtime: dict[str, Any]) -> dict[str, Any]:
    """The browser's line of ``/health``: where it is (a remote one without its path, which may be its
    key), whether it is up, its pages and chats, and its last failure."""
    lanes = [lane for site in runtime.get("sites", []) for lane in site["lanes"]]
    last = state.browser_error
    return {
        "browser": where(state.config.browser or "local"),
        "up": bool(runtime.get("browser", {}).get("connected")),
        "pages": sum(lane["loaded"] for lane in lanes),
        "chats": sum(lane["in_flight"] for lane in lanes),
        "last_error": {**last, "message": redact(last["message"])} if last else None,
    }


def _browser_options(config: ServeConfig) -> BrowserOptions:
    """The browser the server chats in: a remote one (``--browser``), else one it launches."""
    options: BrowserOptions = {"headless": False} if config.headed else {}
    return {**options, **remote_options(config.browser)} if config.browser else options


def _service(config: ServeConfig) -> ChatService:
    """The chat service of the config's browser, or of its pool of browsers (two or more)."""
    if len(config.browsers) > 1:
        return PooledChatService(BrowserPool(config.browsers, _browser_options(config)))
    return ChatService.for_options(_browser_options(config))


async def _warm(runtime: BrowserRuntime) -> None:
    """Start the browser as the server starts, so the first chat does not wait for it."""
    try:
        await runtime.call(runtime.browser())
    except ScraperError as exc:
        log.error("the browser did not start: %s (chats will answer 503 until it does)", exc)


async def _runtime_state(runtime: BrowserRuntime) -> dict[str, Any]:
    """The browser and its warm sites, read on the browser thread (a snapshot)."""

    async def read() -> dict[str, Any]:
        connected = runtime.connected
        sites = [
            {
                "page_url": redact_url(pool.page_url),
                "proxy": bool(pool.proxy),
                "busy": pool.busy,
                "waiting": pool.waiting,
                "lanes": [
                    {
                        "loaded": lane.page is not None and lane.page_loads > 0,
                        "page_loads": lane.page_loads,
                        "in_flight": pool.in_flight.get(id(lane), 0),
                    }
                    for lane in pool.lanes
                ],
            }
            for pool in runtime.sites
        ]
        registry = runtime.sites
        return {
            "limits": {
                "max_sites": registry.max_sites,
                "sites_opened": registry.opened,
                "sites_closed": registry.evicted,
            },
            "browser": {
                "launched": runtime.launches > 0,
                "connected": connected,
                "version": runtime.version,
                "executable": runtime.location.path if runtime.location else None,
                "launches": runtime.launches,
            },
            "sites": sites,
        }

    try:
        return await runtime.call(read())
    except ScraperError as exc:
        return {"browser": {"launched": False, "connected": False, "error": str(exc)}, "sites": []}
