"""``python -m benchmarks.sites``: what one more warm site costs, by Chromium's process settings.

A warm site is a browser context and its page, kept loaded for the next chat. This script launches a
new browser per round for each setting, chats once on one site, notes the memory (PSS summed over
Python and every process it started, the replica sites left out) and the process count, then chats
once on each of the other sites and notes them again: the difference divided by the extra sites is
what one more warm site costs. Every chat must return the expected reply, so a setting that breaks
the chat fails here instead of printing a figure.

The sites are the replica plugins on their own ports, then the same pages under another query string
(each page URL is a warm site of its own, with its own context and page).

Three settings change what a warm site holds rather than how Chromium runs it:

* ``idle: page closed, context kept``: after its chat every site's page is closed, its context (and
  cookies) kept; the round then times one chat on such a site (the page is loaded again on demand)
  and one more on the same site, now warm.
* ``heavy page``: the replica pages carry images, a web font, a video and an audio element (page
  mode "heavy"), all loaded.
* ``heavy page, images/fonts/media blocked``: the same, with ``context.route`` aborting every request
  whose resource type is image, font or media (the round fails unless some were aborted).
* ``plain page, the same route (nothing to block)``: the route on the usual pages: what routing
  itself costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from scraper.browser import BrowserRuntime
from scraper.client import ChatService, ChatTarget
from scraper.plugins import TextDelta
from scraper.replica import PLUGINS

from ._common import BenchError, Replicas, figure, process_tree, tree_memory
from .bench import PROMPT, expected_reply

__all__ = ["main"]

MB = 1024 * 1024
# The package's launch switches the address bar's hidden popups off (one renderer less per warm site);
# SCRAPER_LEAN_BROWSER=0 launches as the driver does, for the row before. A setting's own
# --disable-features is merged with the driver's list and the package's (Chromium takes only the last).
NO_ISOLATION = ["--disable-site-isolation-trials", "--disable-features=IsolateOrigins,site-per-process"]
# name: (extra switches, the package's lean launch, what the round does besides: "", "idle", "heavy", "blocked",
# "routed")
SETTINGS: dict[str, tuple[list[str], bool, str]] = {
    "the driver's switches alone (before)": ([], False, ""),
    "default: address bar popups off": ([], True, ""),
    "--renderer-process-limit=1": (["--renderer-process-limit=1"], True, ""),
    "--process-per-site": (["--process-per-site"], True, ""),
    "site isolation off": (NO_ISOLATION, True, ""),
    "site isolation off + --renderer-process-limit=1": ([*NO_ISOLATION, "--renderer-process-limit=1"], True, ""),
    "idle: page closed, context kept": ([], True, "idle"),
    "heavy page": ([], True, "heavy"),
    "heavy page, images/fonts/media blocked": ([], True, "blocked"),
    "plain page, the same route (nothing to block)": ([], True, "routed"),
}
BLOCKED_TYPES = frozenset({"image", "font", "media"})


async def steady(exclude: set[int], timeout: float = 10.0) -> tuple[float, int]:
    """PSS (MB) and process count once no process has come or gone for a second."""
    deadline = time.monotonic() + timeout
    count, still = -1, 0
    while still < 10 and time.monotonic() < deadline:
        tree = process_tree(os.getpid(), exclude) or []
        still = still + 1 if len(tree) == count else 0
        count = len(tree)
        await asyncio.sleep(0.1)
    sample = tree_memory(os.getpid(), exclude)
    if sample is None:
        raise BenchError("no /proc: PSS cannot be measured here")
    return sample[0] / MB, count


async def chat(runtime: BrowserRuntime, page_url: str, plugin: str, timeout: float) -> None:
    """One chat on the site (which stays warm after it); the reply must be the expected one."""

    async def flow() -> str:
        parts = []
        async for event in ChatService(runtime).chat(ChatTarget(page_url, (plugin,)), PROMPT, timeout=timeout):
            if isinstance(event, TextDelta):
                parts.append(event.text)
        return "".join(parts)

    text = await asyncio.wait_for(runtime.call(flow()), timeout)
    if text != expected_reply(None):
        raise BenchError(f"{page_url}: the chat replied {text[:80]!r}, not the expected reply")


async def timed_chat(runtime: BrowserRuntime, page_url: str, plugin: str, timeout: float) -> float:
    """One chat, in milliseconds."""
    started = time.perf_counter()
    await chat(runtime, page_url, plugin, timeout)
    return (time.perf_counter() - started) * 1000


async def close_pages(runtime: BrowserRuntime) -> None:
    """Every site's page closed, its context (cookies, storage) kept: the next chat loads the page again."""

    async def close() -> None:
        for pool in runtime.sites:
            for lane in pool.lanes:
                if lane.page is not None and not lane.page.is_closed():
                    await lane.page.close()

    await runtime.call(close())


class Blocker:
    """A route on a site's context that aborts what a chat never needs (images, fonts, media)."""

    def __init__(self) -> None:
        self.aborted = 0

    async def __call__(self, route: Any) -> None:
        if route.request.resource_type in BLOCKED_TYPES:
            self.aborted += 1
            await route.abort()
        else:
            await route.fallback()

    async def install(self, runtime: BrowserRuntime, page_url: str, timeout: float) -> None:
        """On the context the chat on ``page_url`` will use, before its page loads."""

        async def add() -> None:
            context = await runtime.sites.pool(page_url).primary.ensure_context(timeout)
            await context.route("**/*", self)

        await runtime.call(add())


async def round_of(
    setting: tuple[list[str], bool, str], sites: list[tuple[str, str]], exclude: set[int], timeout: float
) -> dict[str, float]:
    args, lean, mode = setting
    os.environ["SCRAPER_LEAN_BROWSER"] = "1" if lean else "0"
    runtime = BrowserRuntime({"args": list(args)})
    blocker = Blocker()
    figures: dict[str, float] = {}
    try:
        for index, (plugin, url) in enumerate(sites):
            if mode in ("blocked", "routed"):
                await blocker.install(runtime, url, timeout)
            await chat(runtime, url, plugin, timeout)
            if index == 0 or index == len(sites) - 1:
                if mode == "idle":
                    await close_pages(runtime)
                pss, count = await steady(exclude)
                figures["pss 1" if index == 0 else f"pss {len(sites)}"] = pss
                figures["processes 1" if index == 0 else f"processes {len(sites)}"] = count
        if mode == "idle":  # the cost of the lighter state: the page loads again for the next chat
            figures["reload chat"] = await timed_chat(runtime, sites[0][1], sites[0][0], timeout)
            figures["warm chat"] = await timed_chat(runtime, sites[0][1], sites[0][0], timeout)
    finally:
        await runtime.aclose()
    if mode == "blocked" and not blocker.aborted:
        raise BenchError("nothing was blocked: the route was not on the contexts the chats used")
    figures["blocked"] = blocker.aborted
    figures["per site"] = (figures[f"pss {len(sites)}"] - figures["pss 1"]) / (len(sites) - 1)
    return figures


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sites", description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=6, help="warm sites at the end of a round (default 6)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per setting (default 3)")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--setting", action="append", choices=list(SETTINGS), help="settings to run (default: all)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    options = parser.parse_args(argv)
    if options.sites < 2:
        parser.error("--sites must be at least 2")
    names = options.setting or list(SETTINGS)
    with Replicas(list(PLUGINS), "process") as replicas:
        for plugin in PLUGINS:
            replicas.configure(plugin, first_delay=0.0, chunk_delay=0.0, rate_limit=1_000_000)
        sites = [(plugin, f"{replicas.urls[plugin]}/") for plugin in PLUGINS]
        sites = [(p, u if i < len(PLUGINS) else f"{u}?site={i}") for i, (p, u) in enumerate(sites * options.sites)]
        sites = sites[: options.sites]
        results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        for _ in range(options.repeat):  # round after round of every setting: a busy spell hits them all alike
            for name in names:
                heavy = SETTINGS[name][2] in ("heavy", "blocked")
                for plugin in PLUGINS:
                    replicas.configure(
                        plugin, first_delay=0.0, chunk_delay=0.0, rate_limit=1_000_000, page="heavy" if heavy else "ok"
                    )
                results[name].append(asyncio.run(round_of(SETTINGS[name], sites, replicas.pids, options.timeout)))
    n = options.sites
    print(f"{options.repeat} rounds per setting, 1 then {n} warm sites; PSS in MB (median ±half IQR)")
    print(f"| setting | PSS, 1 site | PSS, {n} sites | per extra warm site | processes, 1 / {n} sites |")
    print("|---|---|---|---|---|")
    for name, rounds in results.items():

        def column(key: str, rounds: list[dict[str, float]] = rounds) -> list[float]:
            return [r[key] for r in rounds]

        counts = f"{int(column('processes 1')[-1])} / {int(column(f'processes {n}')[-1])}"
        print(
            f"| {name} | {figure(column('pss 1'), 'MB')} | {figure(column(f'pss {n}'), 'MB')} "
            f"| {figure(column('per site'), 'MB')} | {counts} |"
        )
    idle = [name for name in results if SETTINGS[name][2] == "idle"]
    for name in idle:
        rounds = results[name]
        print(f"\n{name}: one chat on a site, ms (median ±half IQR over {len(rounds)} rounds)")
        print("| chat | time |\n|---|---|")
        print(f"| page closed: loaded again on demand | {figure([r['reload chat'] for r in rounds], 'ms')} |")
        print(f"| page kept (warm) | {figure([r['warm chat'] for r in rounds], 'ms')} |")
    for name in results:
        if SETTINGS[name][2] == "blocked":
            aborted = statistics.median(r["blocked"] for r in results[name])
            print(f"\n{name}: {aborted:.0f} requests aborted per round (median), every chat replied as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
