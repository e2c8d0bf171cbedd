"""``python -m benchmarks.sites``: what one more warm site costs, by Chromium's process settings.

A warm site is a browser context and its page, kept loaded for the next chat. This script launches a
new browser per round for each setting, chats once on one site, notes the memory (PSS summed over
Python and every process it started, the replica sites left out) and the process count, then chats
once on each of the other sites and notes them again: the difference divided by the extra sites is
what one more warm site costs. Every chat must return the expected reply, so a setting that breaks
the chat fails here instead of printing a figure.

The sites are the replica plugins on their own ports, then the same pages under another query string
(each page URL is a warm site of its own, with its own context and page).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence

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
SETTINGS: dict[str, tuple[list[str], bool]] = {  # name: (extra switches, the package's lean launch)
    "the driver's switches alone (before)": ([], False),
    "default: address bar popups off": ([], True),
    "--renderer-process-limit=1": (["--renderer-process-limit=1"], True),
    "--process-per-site": (["--process-per-site"], True),
    "site isolation off": (NO_ISOLATION, True),
    "site isolation off + --renderer-process-limit=1": ([*NO_ISOLATION, "--renderer-process-limit=1"], True),
}


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


async def round_of(
    setting: tuple[list[str], bool], sites: list[tuple[str, str]], exclude: set[int], timeout: float
) -> dict[str, float]:
    args, lean = setting
    os.environ["SCRAPER_LEAN_BROWSER"] = "1" if lean else "0"
    runtime = BrowserRuntime({"args": list(args)})
    try:
        await chat(runtime, sites[0][1], sites[0][0], timeout)
        one, one_count = await steady(exclude)
        for plugin, url in sites[1:]:
            await chat(runtime, url, plugin, timeout)
        many, many_count = await steady(exclude)
    finally:
        await runtime.aclose()
    extra = len(sites) - 1
    return {
        "pss 1": one,
        f"pss {len(sites)}": many,
        "per site": (many - one) / extra,
        "processes 1": one_count,
        f"processes {len(sites)}": many_count,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sites", description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=6, help="warm sites at the end of a round (default 6)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per setting (default 3)")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--setting", action="append", choices=list(SETTINGS), help="settings to run (default: all)")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
