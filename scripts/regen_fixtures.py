#!/usr/bin/env python3
"""Record the cassettes shipped in fixtures/ again, against fresh local replica sites (repository upkeep).

.venv/bin/python scripts/regen_fixtures.py [--dir fixtures]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any, TypedDict

from scraper.cassettes import record_chat
from scraper.client import PRESETS, WordPressChat
from scraper.replica import ReplicaSite

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
    """Synchronous :func:`aregenerate_fixtures`."""
    return asyncio.run(aregenerate_fixtures(directory))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="fixtures", help="where the shipped cassettes live")
    args = parser.parse_args(argv)
    for path in regenerate_fixtures(args.dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
