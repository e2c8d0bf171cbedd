"""Recording a real chat as a cassette."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..browser import BrowserOptions, get_runtime, origin_of
from ..client import BROWSER_KEYS
from ..errors import CassetteError
from ._build import from_flow
from ._format import CASSETTE_FILE, Cassette

__all__ = ["RecordedChat", "record_chat"]


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
