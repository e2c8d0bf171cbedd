"""``Client`` and ``AsyncClient``: OpenAI's Python interface, in process, no server.

``client.chat.completions.create(model=..., messages=..., stream=...)`` picks the chat the way
``scraper serve`` does (one resolver, :class:`~scraper.client._models.ModelCatalog`), and answers with
OpenAI-shaped objects. Errors are the package's own (:class:`~scraper.ScraperError` subclasses).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Literal, overload

from .._aio import close_now, closing
from ..browser import BrowserOptions, BrowserPool, BrowserRuntime
from ..browser._pool import BrowserSpec
from ..plugins import Finish, TextDelta
from ._completions import ChatCompletion, ChatCompletionChunk, CompletionBuilder, CompletionRequest
from ._models import ModelCatalog, Resolved
from ._prompt import Messages
from ._service import ChatService

__all__ = ["AsyncClient", "AsyncStream", "Client", "Stream"]

DEFAULT_TIMEOUT = 120.0


class _Base:
    """What both clients hold: the catalog of models, the chat service, the per-chat defaults."""

    _chat_type: ClassVar[type[_Chat] | type[_AsyncChat]]

    def __init__(
        self,
        *,
        sites: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        proxy: str | None = None,
        browser: BrowserOptions | BrowserPool | Sequence[BrowserSpec] | None = None,
    ) -> None:
        self.catalog = ModelCatalog(sites)
        self.timeout = float(timeout)
        self.proxy = proxy
        # URLs: a pool of those browsers, the client's own (closed with it; a pool passed in is the caller's)
        self._own_pool: BrowserPool | None = None
        if browser is not None and not isinstance(browser, (dict, BrowserPool)):
            browser = self._own_pool = BrowserPool(browser)
        self.service = ChatService.for_options(browser)
        self.chat = self._chat_type(self)

    def _prepare(self, **fields: Any) -> tuple[CompletionRequest, Resolved]:
        """The request checked and resolved exactly as the server does it."""
        request = CompletionRequest.from_body({key: value for key, value in fields.items() if value is not None})
        return request, self.catalog.resolve(request.model, provider=request.provider, site=request.site)

    def _options(self, request: CompletionRequest) -> dict[str, Any]:
        return {"timeout": request.timeout or self.timeout, "proxy": self.proxy}


# -- synchronous ------------------------------------------------------------------------------------------


class Stream:
    """The reply's chunks, as they come, for synchronous code. Closing it (``close()``, ``with``, or
    leaving the loop early and closing) aborts the request in the page."""

    def __init__(self, runtime: BrowserRuntime, events: AsyncIterator[TextDelta | Finish], builder: CompletionBuilder):
        self._runtime = runtime
        self._events = events
        self.builder = builder

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        return self

    def __next__(self) -> ChatCompletionChunk:
        try:
            event = self._runtime.call_sync(_next(self._events))
        except StopAsyncIteration:
            raise StopIteration from None
        return self.builder.chunk(event)

    def close(self) -> None:
        self._runtime.call_sync(close_now(self._events))

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Completions:
    def __init__(self, client: _Base) -> None:
        self._client = client

    @overload
    def create(
        self, *, model: str | None = ..., messages: Messages, stream: Literal[False] = ..., **kwargs: Any
    ) -> ChatCompletion: ...
    @overload
    def create(
        self, *, model: str | None = ..., messages: Messages, stream: Literal[True], **kwargs: Any
    ) -> Stream: ...

    def create(
        self,
        *,
        model: str | None = None,
        messages: Messages,
        stream: bool = False,
        provider: str | None = None,
        site: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **openai_options: Any,
    ) -> ChatCompletion | Stream:
        """A reply to ``messages``: a whole :class:`ChatCompletion`, or with ``stream=True`` a :class:`Stream`
        of chunks. ``openai_options`` (temperature, max_tokens, ...) are accepted and ignored: a chat box
        takes none of them."""
        client = self._client
        request, chosen = client._prepare(
            **openai_options,
            model=model,
            messages=messages,
            stream=stream,
            provider=provider,
            site=site,
            timeout=timeout,
        )
        # the reply is read on the (first) browser's thread; a pool places the chat on any of its browsers
        _, events = client.service.turn(chosen.target, request.messages, **client._options(request))
        builder = CompletionBuilder(chosen.model)
        runtime = client.service.runtime
        if request.stream:
            return Stream(runtime, events, builder)
        return runtime.call_sync(_complete(events, builder))


class _Chat:
    def __init__(self, client: _Base) -> None:
        self.completions = _Completions(client)


class Client(_Base):
    """OpenAI's client interface for the chat boxes, in this process::

        from scraper import Client

        reply = Client().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}])
        print(reply.choices[0].message.content)

    ``sites`` names chat pages to use as models (``{"NAME": url}``: ``model="NAME"`` or ``"NAME/BOT"``);
    ``browser`` takes browser options (``{"headless": False}``), or a :class:`~scraper.BrowserPool` (or a list
    of browser URLs, ``"local"``, ``ws://...``, ``http://...``) to spread the chats over, placed as
    ``scraper serve --browser`` places them; ``timeout`` and ``proxy`` apply to each chat.
    """

    chat: _Chat
    _chat_type = _Chat

    def close(self) -> None:
        """Close the browsers of a pool this client made from URLs (the process's browser stays warm)."""
        if self._own_pool is not None:
            self._own_pool.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# -- asynchronous -----------------------------------------------------------------------------------------


class AsyncStream:
    """The reply's chunks, as they come, on any event loop. Closing it (``aclose()``, ``async with``, or
    cancelling the task that reads it) aborts the request in the page."""

    def __init__(self, events: AsyncIterator[TextDelta | Finish], builder: CompletionBuilder) -> None:
        self._events = events
        self.builder = builder

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        return self.builder.chunk(await self._events.__anext__())

    async def aclose(self) -> None:
        await close_now(self._events)

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class _AsyncCompletions:
    def __init__(self, client: _Base) -> None:
        self._client = client

    @overload
    async def create(
        self, *, model: str | None = ..., messages: Messages, stream: Literal[False] = ..., **kwargs: Any
    ) -> ChatCompletion: ...
    @overload
    async def create(
        self, *, model: str | None = ..., messages: Messages, stream: Literal[True], **kwargs: Any
    ) -> AsyncStream: ...

    async def create(
        self,
        *,
        model: str | None = None,
        messages: Messages,
        stream: bool = False,
        provider: str | None = None,
        site: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **openai_options: Any,
    ) -> ChatCompletion | AsyncStream:
        """As :meth:`Client.chat.completions.create`, awaited; a stream is an :class:`AsyncStream`."""
        client = self._client
        request, chosen = client._prepare(
            **openai_options,
            model=model,
            messages=messages,
            stream=stream,
            provider=provider,
            site=site,
            timeout=timeout,
        )
        _, events = client.service.turn(chosen.target, request.messages, **client._options(request))
        builder = CompletionBuilder(chosen.model)
        if request.stream:
            return AsyncStream(events, builder)
        return await _complete(events, builder)


class _AsyncChat:
    def __init__(self, client: _Base) -> None:
        self.completions = _AsyncCompletions(client)


class AsyncClient(_Base):
    """:class:`Client` for async code: ``await client.chat.completions.create(...)``; with ``stream=True``,
    ``async for chunk in stream``."""

    chat: _AsyncChat
    _chat_type = _AsyncChat

    async def aclose(self) -> None:
        """Close the browsers of a pool this client made from URLs (the process's browser stays warm)."""
        if self._own_pool is not None:
            await self._own_pool.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


# -- shared -----------------------------------------------------------------------------------------------


async def _next(events: AsyncIterator[TextDelta | Finish]) -> TextDelta | Finish:
    return await events.__anext__()


async def _complete(events: AsyncIterator[TextDelta | Finish], builder: CompletionBuilder) -> ChatCompletion:
    """Read the whole reply; closing the events whatever happens (an error, a cancellation)."""
    async with closing(events):
        async for event in events:
            builder.chunk(event)
    return builder.completion()
