"""``python -m benchmarks.faults``: what each fault costs a caller, and whether the next chat works.

Every fault is injected on a local replica site (127.0.0.1) in this process: a page that never
answers, a page that fails once in each way a page can, a crashed renderer, a killed browser, many
first chats at once. For each, the table gives the error the caller got, the seconds until it came
(against the ``timeout`` the chat was given), and whether the next chat on the same site, in the same
process, got the whole reply once the site was fine again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from scraper import WordPressChat, get_runtime
from scraper.browser import aclose
from scraper.replica import PLUGINS, ReplicaSite, SiteConfig

__all__ = ["main"]

HELLO = [{"role": "user", "content": "Привет"}]
REPLY = "Echo: Привет | Привет, мир! 🙂"
TIMEOUT = 3.0
GOOD = {"page": "ok", "antibot": None, "failure": None, "nonce_mode": "ok"}
PAGE_FAULTS: dict[str, dict[str, Any]] = {
    "page never answers": {"page": "stall"},
    "page 500": {"page": "http_500"},
    "empty 200 page": {"page": "empty"},
    "page without its nonce": {"page": "no_nonce"},
    "page without a chat box": {"page": "no_chatbox"},
    "malformed chat box settings": {"page": "malformed"},
    "challenge that never clears": {"antibot": "js_challenge_never"},
    "block page": {"antibot": "block"},
    "chat request never answered": {"failure": "stall"},
    "chat request 500": {"failure": "http_500"},
    "nonce always rejected": {"nonce_mode": "always_reject"},
}


async def chat(site: ReplicaSite, timeout: float = TIMEOUT) -> str:
    stream = WordPressChat(site.url + "/chat/").create_async_generator("", HELLO, timeout=timeout)
    return await asyncio.wait_for(stream.collect(), timeout + 60)


async def outcome(run: Callable[[], Awaitable[Any]]) -> tuple[str, float]:
    started = time.perf_counter()
    try:
        await run()
    except Exception as exc:  # whatever came: its name is the figure
        return type(exc).__name__, time.perf_counter() - started
    return "no error", time.perf_counter() - started


async def page_fault(plugin: str, settings: dict[str, Any]) -> tuple[str, float, bool]:
    with ReplicaSite(plugin, SiteConfig(chunk_delay=0, challenge_delay=0, **settings)) as site:
        error, seconds = await outcome(lambda: chat(site))
        site.config.update(GOOD)
        site.reset()
        return error, seconds, await chat(site, timeout=30) == REPLY


async def crashed_renderer(plugin: str) -> tuple[str, float, bool]:
    with ReplicaSite(plugin, SiteConfig(chunk_delay=0.05, reply_events=200)) as site:
        await chat(site, timeout=30)
        lane = get_runtime().sites.pool(site.url + "/chat/").primary

        async def crash() -> None:
            session = await lane.context.new_cdp_session(lane.page)
            with contextlib.suppress(Exception):  # the renderer dies before it answers
                await asyncio.wait_for(session.send("Page.crash"), 5)

        async def crash_mid_stream() -> None:
            stream = WordPressChat(site.url + "/chat/").create_async_generator("", HELLO, timeout=TIMEOUT)
            async for _ in stream:
                await get_runtime().call(crash())

        error, seconds = await outcome(crash_mid_stream)
        site.config.update({"chunk_delay": 0.0, "reply_events": None})
        return error, seconds, await chat(site, timeout=30) == REPLY


async def browser_pid() -> int:
    runtime = get_runtime()

    async def pid() -> int:
        session = await (await runtime.browser()).new_browser_cdp_session()
        info = await session.send("SystemInfo.getProcessInfo")
        await session.detach()
        return next(int(p["id"]) for p in info["processInfo"] if p["type"] == "browser")

    return await runtime.call(pid())


async def killed_browser(plugin: str) -> tuple[str, float, bool]:
    with ReplicaSite(plugin, SiteConfig(chunk_delay=0.05, reply_events=200)) as site:
        await chat(site, timeout=30)

        async def kill_mid_stream() -> None:
            stream = WordPressChat(site.url + "/chat/").create_async_generator("", HELLO, timeout=TIMEOUT)
            async for _ in stream:
                os.kill(await browser_pid(), signal.SIGKILL)

        error, seconds = await outcome(kill_mid_stream)
        site.config.update({"chunk_delay": 0.0, "reply_events": None})
        return error, seconds, await chat(site, timeout=30) == REPLY


async def first_chats(plugin: str, at_once: int, repeats: int) -> tuple[str, float, bool]:
    runtime = get_runtime()
    failed = 0
    started = time.perf_counter()
    with ReplicaSite(plugin, SiteConfig(chunk_delay=0)) as site:
        for _ in range(repeats):
            site.reset()
            await runtime.call(runtime.sites.forget(site.url))
            texts = await asyncio.gather(*[chat(site, timeout=60) for _ in range(at_once)], return_exceptions=True)
            failed += sum(text != REPLY for text in texts)
    per_burst = (time.perf_counter() - started) / repeats
    return f"{failed} of {at_once * repeats} failed", per_burst, failed == 0


async def run(plugins: list[str], repeats: int) -> list[tuple[str, str, str, float, bool]]:
    rows = []
    try:
        for plugin in plugins:
            for name, settings in PAGE_FAULTS.items():
                if (plugin, name) == ("aipower", "malformed chat box settings"):
                    continue  # AI Power 2.2 keeps plain attributes: nothing to malform
                rows.append((plugin, name, *await page_fault(plugin, settings)))
            rows.append((plugin, "renderer crashed mid-stream", *await crashed_renderer(plugin)))
            rows.append((plugin, "browser killed mid-stream", *await killed_browser(plugin)))
            for at_once in (6, 50):
                rows.append(
                    (plugin, f"{at_once} first chats at once × {repeats}", *await first_chats(plugin, at_once, repeats))
                )
    finally:
        await aclose()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.faults", description=__doc__.splitlines()[0])
    parser.add_argument("--plugin", action="append", choices=PLUGINS)
    parser.add_argument("--repeats", type=int, default=5, help="cold bursts of first chats (default 5)")
    args = parser.parse_args(argv)
    rows = asyncio.run(run(args.plugin or list(PLUGINS), args.repeats))
    print(f"Faults on a replica site; chats given timeout={TIMEOUT:g} s (first-chat bursts: seconds per burst).\n")
    print("| plugin | fault | the caller got | after (s) | next chat whole |")
    print("|---|---|---|---|---|")
    for plugin, name, error, seconds, next_ok in rows:
        print(f"| {plugin} | {name} | {error} | {seconds:.1f} | {'yes' if next_ok else 'NO'} |")
    return 0 if all(row[4] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
