"""Recording a real chat as a cassette, and the shipped fixtures recorded against the replica sites."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from ..browser import BrowserOptions, get_runtime, origin_of
from ..client import BROWSER_KEYS, PRESETS, WordPressChat
from ..errors import CassetteError
from ._build import from_flow
from ._format import CASSETTE_FILE, Cassette

__all__ = ["FIXTURES", "FIXTURE_MESSAGE", "RecordedChat", "aregenerate_fixtures", "record_chat", "regenerate_fixtures"]


@dataclass
class RecordedChat:
    """What :func:`record_chat` produced: the cassette, where it was written, the reply's chunks."""

    cassette: Cassette
    path: Path
    chunks: list[str]
    turns: list[list[str]] | None = None  # a conversation: each turn's chunks


async def record_chat(
    target: Any,
    message: str | Sequence[str],
    out: str | os.PathLike[str],
    *,
    name: str | None = None,
    provider: str | None = None,
    model: str = "",
    timeout: float = 120,
    cookies: dict[str, str] | None = None,
    proxy: str | None = None,
    overwrite: bool = False,
    on_chunk: Callable[[str], None] | None = None,
    **kwargs: Any,
) -> RecordedChat:
    """Run one real chat with ``target`` (a provider class or instance) and write it as a cassette;
    several messages are the turns of one conversation, recorded in order (replayed turn by turn).

    The site's warm lanes are closed first, so the recording starts with the page load. Nothing is
    written when the chat fails.
    """
    if not overwrite and (Path(out) / CASSETTE_FILE).exists():
        raise CassetteError(f"A cassette already exists at {out}; pass --force (overwrite=True) to replace it.")
    options: BrowserOptions = dict(getattr(target, "browser_options", None) or {})  # type: ignore[assignment]
    options.update({k: kwargs[k] for k in BROWSER_KEYS if k in kwargs})  # type: ignore[typeddict-item]
    runtime = get_runtime(options)
    page_url = target.page_url()
    origin = origin_of(page_url)
    await runtime.call(runtime.sites.forget(page_url))
    messages = [message] if isinstance(message, str) else list(message)
    turns: list[list[str]] = []
    with runtime.rules.recording(origin) as recorder:
        conversation = (
            None if len(messages) == 1 else target.conversation(proxy=proxy, timeout=timeout, cookies=cookies, **kwargs)
        )
        for text in messages:
            stream: AsyncIterator[str] = (
                conversation.send(text)
                if conversation is not None
                else target.create_async_generator(
                    model, [{"role": "user", "content": text}], proxy=proxy, timeout=timeout, cookies=cookies, **kwargs
                )
            )
            turns.append([])
            async for chunk in stream:
                turns[-1].append(chunk)
                if on_chunk is not None:
                    on_chunk(chunk)
    cassette = from_flow(recorder, origin=origin, name=name or Path(out).name, message=messages[0], provider=provider)
    path = cassette.save(out, overwrite=overwrite)
    chunks = [chunk for turn in turns for chunk in turn]
    return RecordedChat(cassette, path, chunks, turns if len(messages) > 1 else None)


# -- the shipped fixtures ---------------------------------------------------------------------------

FIXTURE_MESSAGE = "Привет, как дела?"


class _FixtureSpec(TypedDict):
    name: str
    site: str  # the replica's plugin
    provider: str | None  # a preset that chats with it (None: the generic chat of that plugin)
    nonce_mode: str


FIXTURES: tuple[_FixtureSpec, ...] = (
    {"name": "chatgptfree-hello", "site": "aipkit", "provider": "chatgptfree", "nonce_mode": "ok"},
    {"name": "chatgptfree-nonce-refresh", "site": "aipkit", "provider": "chatgptfree", "nonce_mode": "reject_once"},
    {
        "name": "chatgptfree-stream-nonce-refresh",
        "site": "aipkit",
        "provider": "chatgptfree",
        "nonce_mode": "stream_reject_once",
    },
    {"name": "chatgpt4online-hello", "site": "aiengine", "provider": "chatgpt4online", "nonce_mode": "ok"},
    {
        "name": "chatgpt4online-nonce-refresh",
        "site": "aiengine",
        "provider": "chatgpt4online",
        "nonce_mode": "reject_once",
    },
    {"name": "aipower-legacy-hello", "site": "aipower", "provider": None, "nonce_mode": "ok"},
    {"name": "aipower-legacy-nonce-refresh", "site": "aipower", "provider": None, "nonce_mode": "reject_once"},
)


async def aregenerate_fixtures(directory: str | os.PathLike[str] = "fixtures") -> list[Path]:
    """Record the shipped cassettes again against fresh replica sites (the ``-nonce-refresh`` ones with
    the replica rejecting the first nonce, so the client fetches a fresh one)."""
    from ..replica import ReplicaSite

    # A browser that has just started is slow to pull the first replies, which merges their chunks:
    # one chat that is not recorded first makes the recorded chunking closer to the site's own.
    with ReplicaSite(FIXTURES[0]["site"]) as warm:
        chat = WordPressChat(warm.url, plugins=(FIXTURES[0]["site"],))
        await chat.create_async_generator("", [{"role": "user", "content": "warm-up"}]).collect()
    written = []
    for spec in FIXTURES:
        with ReplicaSite(spec["site"]) as site:
            site.config.nonce_mode = spec["nonce_mode"]
            site.config.chunk_delay = 0.05  # slow enough that each event arrives as its own chunk
            preset = PRESETS[spec["provider"]] if spec["provider"] else None
            chat: Any = preset(site.url) if preset else WordPressChat(site.url, plugins=(spec["site"],))
            result = await record_chat(
                chat, FIXTURE_MESSAGE, Path(directory) / spec["name"], provider=spec["provider"], overwrite=True
            )
        written.append(result.path)
    return written


def regenerate_fixtures(directory: str | os.PathLike[str] = "fixtures") -> list[Path]:
    """Synchronous :func:`aregenerate_fixtures` (``scraper regen-fixtures``)."""
    return asyncio.run(aregenerate_fixtures(directory))
