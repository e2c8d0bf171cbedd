"""``python -m benchmarks.bench``: what the browser costs, measured against a browser-less floor.

Each scenario runs the browser client (``AIPowerChat`` / ``AIEngineChat`` through Chromium) and the
direct client (:mod:`scraper.client._direct`: the same protocol code over aiohttp) against the same local
replica site, in the same run, and prints one markdown table: medians with their spread, the ratio
browser/direct, and the targets the browser client should meet.

The replica sites run in a child process on 127.0.0.1 (``--replica thread`` keeps them in this
one), so the server's Python does not share an interpreter lock with the clients being measured.
Every loop has a count and every chat a timeout; the whole run has a deadline too.

Needs aiohttp for the direct client: ``pip install 'wpchat-scraper[direct]'``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scraper._extras import import_extra
from scraper.browser import PER_PAGE, BrowserRuntime, aclose, find_browser, get_runtime
from scraper.client import ChatService, ChatTarget, WordPressChat
from scraper.client._direct import DirectChat
from scraper.errors import MissingExtraError, ScraperError
from scraper.plugins import TextDelta
from scraper.replica import PLUGINS, SiteConfig
from scraper.replica.upstream import DEFAULT_REPLY, reply_pieces

from ._common import BenchError, Replicas, figure, process_tree, tree_memory

__all__ = ["main"]

PROMPT = "Привет, как дела?"
LEVELS = (1, 4, 16, 64)
STREAM_EVENTS = 5000
CONCURRENT_EVENTS = 25
PACED_DELAY = 0.02  # seconds between events when the replica paces a reply like a model
FIRST_TOKEN = 0.3  # a realistic first-token latency
SAMPLE_EVERY = 0.1  # seconds between memory samples
LANE_IDLE = 3.0  # seconds an extra lane may idle before it closes, in the concurrency runs
MB = 1024 * 1024


@dataclass
class Target:
    """What the browser client should achieve: its median, or its median over the direct one, at most ``limit``."""

    text: str
    limit: float
    relative: bool

    def verdict(self, browser: Sequence[float] | None, direct: Sequence[float] | None) -> str:
        floor = statistics.median(direct) if self.relative and direct else None
        if not browser or (self.relative and not floor):
            return f"{self.text}: n/a"
        value = statistics.median(browser) / (floor or 1.0)
        return f"{self.text}: {'pass' if value <= self.limit else 'miss'}"


@dataclass
class Row:
    """One line of the table: a metric of one scenario, for both clients."""

    plugin: str
    scenario: str
    metric: str
    unit: str
    browser: list[float] | None
    direct: list[float] | None
    ratio: bool = True
    signed: bool = False
    target: Target | None = None

    def cells(self) -> list[str]:
        ratio = "—"
        if self.ratio and self.browser and self.direct:
            below = statistics.median(self.direct)
            if below > 0:
                ratio = f"{statistics.median(self.browser) / below:.2f}×"
        return [
            self.plugin,
            self.scenario,
            self.metric,
            figure(self.browser, self.unit, self.signed),
            figure(self.direct, self.unit, self.signed),
            ratio,
            self.target.verdict(self.browser, self.direct) if self.target else "",
        ]


HEADER = ["plugin", "scenario", "metric", "browser", "direct", "browser/direct", "target"]


def table(rows: Sequence[Row]) -> str:
    """The rows as one markdown table."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


# -- memory -----------------------------------------------------------------------------------------


class PeakMemory:
    """Samples this process tree's memory in a thread while a round runs, and keeps the peaks."""

    def __init__(self, exclude: set[int]) -> None:
        self.exclude = exclude
        self.pss: int | None = None
        self.rss: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-memory", daemon=True)

    def _sample(self) -> None:
        sample = tree_memory(os.getpid(), self.exclude)
        if sample is not None:
            self.pss = max(self.pss or 0, sample[0])
            self.rss = max(self.rss or 0, sample[1])

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            self._sample()

    def __enter__(self) -> PeakMemory:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sample()


async def settle(exclude: set[int], timeout: float = 10.0) -> None:
    """Wait until every process this one started has exited: a cold start starts from nothing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tree = process_tree(os.getpid(), exclude)
        if tree is None:
            await asyncio.sleep(0.5)
            return
        if len(tree) <= 1:
            return
        await asyncio.sleep(0.05)


# -- one chat ---------------------------------------------------------------------------------------


@dataclass
class Run:
    """One chat as the caller saw it: seconds to the first chunk and to the end, and the text."""

    ttfb: float
    total: float
    text: str
    chunks: int


async def consume(chunks: AsyncIterator[str], started: float) -> Run:
    """Read a reply to its end, noting when the first chunk came; always closes the stream."""
    first: float | None = None
    parts: list[str] = []
    try:
        async for chunk in chunks:
            if first is None:
                first = time.perf_counter()
            parts.append(chunk)
    finally:
        closer = getattr(chunks, "aclose", None)
        if closer is not None:
            await closer()
    end = time.perf_counter()
    return Run((first or end) - started, end - started, "".join(parts), len(parts))


def expected_reply(events: int | None) -> str:
    """What the replica answers PROMPT with, from the replica's own reply logic."""
    if events is None:
        return DEFAULT_REPLY.format(message=PROMPT)
    return "".join(reply_pieces(SiteConfig(reply_events=events), PROMPT))


def checked(run: Run, expected: str, who: str) -> Run:
    """A run whose text is not the reply measured the wrong thing: stop rather than print it."""
    if run.text != expected:
        raise BenchError(f"{who} got {len(run.text)} characters, not the {len(expected)} of the reply")
    return run


class Clients:
    """Both clients of one site, warm between chats: one browser chat class, one aiohttp client."""

    def __init__(self, plugin: str, url: str, timeout: float, max_pages: int) -> None:
        self.plugin = plugin
        self.url = url
        self.timeout = timeout
        self.max_pages = max_pages  # 0: enough lanes for every chat at once
        self.browser_chat = WordPressChat(url, plugins=(plugin,))
        self.direct_chat = DirectChat(url + "/", plugins=(plugin,), timeout=timeout)
        self.events: int | None = None

    def pages_for(self, at_once: int) -> int | None:
        """The ``max_pages`` to ask for, or None where the session has no lanes to bound."""
        return self.max_pages or max(1, math.ceil(at_once / PER_PAGE))

    async def browser(self, at_once: int = 1) -> Run:
        started = time.perf_counter()
        options: dict[str, Any] = {}
        pages = self.pages_for(at_once)
        if pages is not None:
            options["max_pages"] = pages
        stream = self.browser_chat.create_async_generator(
            "", [{"role": "user", "content": PROMPT}], timeout=self.timeout, **options
        )
        run = await asyncio.wait_for(consume(stream, started), self.timeout)
        return checked(run, expected_reply(self.events), "the browser client")

    async def direct(self, at_once: int = 1) -> Run:
        started = time.perf_counter()
        run = await asyncio.wait_for(consume(self.direct_chat.stream(PROMPT), started), self.timeout)
        return checked(run, expected_reply(self.events), "the direct client")

    def client(self, name: str) -> Callable[[int], Awaitable[Run]]:
        return self.browser if name == "browser" else self.direct

    async def aclose(self) -> None:
        await self.direct_chat.aclose()


async def paired(clients: Clients, repeat: int) -> tuple[list[Run], list[Run]]:
    """``repeat`` chats with each client, alternating which goes first so neither always follows the other."""
    browser: list[Run] = []
    direct: list[Run] = []
    for index in range(repeat):
        if index % 2:
            direct.append(await clients.direct())
            browser.append(await clients.browser())
        else:
            browser.append(await clients.browser())
            direct.append(await clients.direct())
    return browser, direct


def ms(runs: Sequence[Run], what: str) -> list[float]:
    return [getattr(run, what) * 1000 for run in runs]


# -- the scenarios ----------------------------------------------------------------------------------


@dataclass
class Context:
    """What every scenario needs: the sites, the counts, and where the notes go."""

    replicas: Replicas
    repeat: int
    timeout: float
    max_pages: int
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


async def cold_browser(plugin: str, url: str, timeout: float) -> tuple[float, Run, str]:
    """A new BrowserRuntime to the first chunk; also when the page had loaded. The runtime is closed after."""
    started = time.perf_counter()
    runtime = BrowserRuntime()
    target = ChatTarget(url + "/", (plugin,))
    marks: dict[str, Any] = {}

    async def flow() -> AsyncIterator[str]:
        lane = runtime.sites.pool(target.page_url).primary
        await lane.ready(timeout)  # what the chat does first; done here to time it apart
        marks["page"] = time.perf_counter()
        marks["version"] = (await runtime.browser()).version
        async for event in ChatService(runtime).chat(target, PROMPT, timeout=timeout):
            if isinstance(event, TextDelta):
                yield event.text

    try:
        run = await asyncio.wait_for(consume(runtime.iterate(flow()), started), timeout)
    finally:
        await runtime.aclose()
    return marks["page"] - started, checked(run, expected_reply(None), "the browser client"), marks["version"]


async def cold_direct(plugin: str, url: str, timeout: float) -> tuple[float, Run]:
    """A new aiohttp client, the page GET, and the first chunk."""
    started = time.perf_counter()
    chat = DirectChat(url + "/", plugins=(plugin,), timeout=timeout)
    try:
        await asyncio.wait_for(chat.open(), timeout)
        page = time.perf_counter()
        run = await asyncio.wait_for(consume(chat.stream(PROMPT), started), timeout)
    finally:
        await chat.aclose()
    return page - started, checked(run, expected_reply(None), "the direct client")


async def scenario_cold(ctx: Context, plugin: str) -> list[Row]:
    url = ctx.replicas.urls[plugin]
    ctx.replicas.configure(plugin, first_delay=0.0, chunk_delay=0.0)
    pages: dict[str, list[float]] = {"browser": [], "direct": []}
    firsts: dict[str, list[float]] = {"browser": [], "direct": []}
    if not ctx.meta.get("chromium"):
        # Once per process, untimed: what the first use of Playwright and aiohttp costs, whatever the runtime.
        ctx.meta["chromium"] = (await cold_browser(plugin, url, ctx.timeout))[2]
        await cold_direct(plugin, url, ctx.timeout)
    for _ in range(ctx.repeat):
        await settle(ctx.replicas.pids)
        page, run, _ = await cold_browser(plugin, url, ctx.timeout)
        pages["browser"].append(page * 1000)
        firsts["browser"].append(run.ttfb * 1000)
        await settle(ctx.replicas.pids)
        page, run = await cold_direct(plugin, url, ctx.timeout)
        pages["direct"].append(page * 1000)
        firsts["direct"].append(run.ttfb * 1000)
    scenario = "cold (new runtime / new client)"
    return [
        Row(plugin, scenario, "launch + page load (direct: page GET)", "ms", pages["browser"], pages["direct"]),
        Row(plugin, scenario, "first chunk", "ms", firsts["browser"], firsts["direct"]),
    ]


async def scenario_warm(ctx: Context, clients: Clients) -> list[Row]:
    plugin = clients.plugin
    ctx.replicas.configure(plugin, first_delay=FIRST_TOKEN, chunk_delay=PACED_DELAY)
    await paired(clients, 1)  # the first chat loads the page; the ones measured are the next
    browser, direct = await paired(clients, ctx.repeat)
    paced = f"warm, first token {FIRST_TOKEN * 1000:.0f} ms, {PACED_DELAY * 1000:.0f} ms/event"
    rows = [
        Row(plugin, paced, "time to first chunk", "ms", ms(browser, "ttfb"), ms(direct, "ttfb"),
            target=Target("≤ 1.3× direct", 1.3, relative=True)),
        Row(plugin, paced, "total", "ms", ms(browser, "total"), ms(direct, "total")),
    ]  # fmt: skip
    ctx.replicas.configure(plugin, first_delay=0.0, chunk_delay=0.0)  # nothing for the overhead to hide behind
    browser, direct = await paired(clients, ctx.repeat)
    overhead = [(b.ttfb - d.ttfb) * 1000 for b, d in zip(browser, direct, strict=True)]
    bare = "warm, no server delay"
    rows += [
        Row(plugin, bare, "time to first chunk", "ms", ms(browser, "ttfb"), ms(direct, "ttfb")),
        Row(plugin, bare, "first-chunk overhead (browser − direct)", "ms", overhead, [], ratio=False, signed=True),
    ]
    return rows


async def scenario_stream(ctx: Context, clients: Clients) -> list[Row]:
    plugin = clients.plugin
    ctx.replicas.configure(plugin, first_delay=0.0, chunk_delay=0.0, reply_events=STREAM_EVENTS)
    clients.events = STREAM_EVENTS
    try:
        await paired(clients, 1)
        browser, direct = await paired(clients, ctx.repeat)
    finally:
        clients.events = None
    scenario = f"{STREAM_EVENTS}-event stream"
    return [
        Row(plugin, scenario, "total", "ms", ms(browser, "total"), ms(direct, "total"),
            target=Target("≤ 1.3× direct", 1.3, relative=True)),
        Row(plugin, scenario, "events per second", "ev/s", [STREAM_EVENTS / r.total for r in browser],
            [STREAM_EVENTS / r.total for r in direct]),
    ]  # fmt: skip


async def burst(clients: Clients, name: str, at_once: int, timeout: float) -> float:
    """``at_once`` chats started together; seconds until the last one ended."""
    chat = clients.client(name)
    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(chat(at_once) for _ in range(at_once))), timeout)
    return time.perf_counter() - started


def pairwise(how: Callable[[float, float], float], table: dict[int, list[float]], a: int, b: int) -> list[float] | None:
    """``how`` of round i at level ``a`` and round i at level ``b``, for every round (None if unmeasured)."""
    if not table.get(a) or not table.get(b):
        return None
    return [how(x, y) for x, y in zip(table[a], table[b], strict=True)]


def lanes_open() -> int:
    """Browser lanes (pages) open across every site of the default runtime."""
    return sum(len(pool.lanes) for pool in get_runtime().sites)


async def after_burst(exclude: set[int], timeout: float) -> float | None:
    """PSS (MB) once the lanes a burst opened have closed for idleness and their processes have exited."""
    deadline = time.monotonic() + timeout
    while lanes_open() > 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    count, steady = -1, 0
    while steady < 10 and time.monotonic() < deadline:  # a second without a process coming or going
        tree = process_tree(os.getpid(), exclude)
        if tree is None:
            return None
        steady = steady + 1 if len(tree) == count else 0
        count = len(tree)
        await asyncio.sleep(0.1)
    sample = tree_memory(os.getpid(), exclude)
    return sample[0] / MB if sample else None


async def scenario_concurrency(ctx: Context, clients: Clients) -> list[Row]:
    plugin = clients.plugin
    ctx.replicas.configure(plugin, first_delay=0.0, chunk_delay=PACED_DELAY, reply_events=CONCURRENT_EVENTS)
    clients.events = CONCURRENT_EVENTS
    names = ("direct", "browser")
    walls: dict[str, dict[int, list[float]]] = {name: {} for name in names}
    pss: dict[str, dict[int, list[float]]] = {name: {} for name in names}
    rss: dict[str, dict[int, list[float]]] = {name: {} for name in names}
    settled: dict[str, list[float]] = {name: [] for name in names}
    if clients.pages_for(1) is None:
        ctx.note("max_pages is not available in this version: the browser client ran with its defaults.")
    elif ctx.max_pages:
        ctx.note(f"Concurrency: the browser client ran with max_pages={ctx.max_pages} at every level.")
    else:
        ctx.note("Concurrency: the browser client ran with enough lanes for every chat at once (max_pages=ceil(n/6)).")
    ctx.note(
        f"After the burst: PSS once the lanes beyond the first closed (SCRAPER_LANE_IDLE={LANE_IDLE:g} s here, "
        "30 s by default) and their processes exited."
    )
    idle_before = os.environ.get("SCRAPER_LANE_IDLE")
    os.environ["SCRAPER_LANE_IDLE"] = str(LANE_IDLE)
    try:
        # No browser while the direct client is measured, so its memory is its own; then a fresh one.
        await aclose()
        await settle(ctx.replicas.pids)
        for name in names:
            for level in LEVELS:
                # The first burst opens what a burst of this size needs (connections, lanes); then measure.
                await burst(clients, name, level, ctx.timeout * 2)
                for _ in range(ctx.repeat):
                    with PeakMemory(ctx.replicas.pids) as peak:
                        wall = await burst(clients, name, level, ctx.timeout * 2)
                    walls[name].setdefault(level, []).append(wall * 1000)
                    if peak.pss is not None and peak.rss is not None:
                        pss[name].setdefault(level, []).append(peak.pss / MB)
                        rss[name].setdefault(level, []).append(peak.rss / MB)
            left = await after_burst(ctx.replicas.pids, LANE_IDLE + 30)
            if left is not None:
                settled[name].append(left)
    finally:
        clients.events = None
        if idle_before is None:
            os.environ.pop("SCRAPER_LANE_IDLE", None)
        else:
            os.environ["SCRAPER_LANE_IDLE"] = idle_before
        await aclose()
    scenario = f"concurrency ({CONCURRENT_EVENTS} events, {PACED_DELAY * 1000:.0f} ms apart)"
    rows = [
        Row(plugin, scenario, f"{level} at once: wall", "ms", walls["browser"][level], walls["direct"][level])
        for level in LEVELS
    ]
    rows += [
        Row(plugin, scenario, f"{level} at once: peak PSS", "MB", pss["browser"].get(level), pss["direct"].get(level))
        for level in LEVELS
    ]
    low, high = LEVELS[0], LEVELS[-1]
    extra = high - low

    def ratio(x: float, y: float) -> float:
        return x / y

    def per_chat(x: float, y: float) -> float:
        return (x - y) / extra

    rows += [
        Row(plugin, scenario, f"wall(16) / wall({low})", "x", pairwise(ratio, walls["browser"], 16, low),
            pairwise(ratio, walls["direct"], 16, low), ratio=False, target=Target("≤ 1.5×", 1.5, relative=False)),
        Row(plugin, scenario, f"memory per extra chat: (peak PSS {high} − peak PSS {low}) / {extra}", "MB",
            pairwise(per_chat, pss["browser"], high, low), pairwise(per_chat, pss["direct"], high, low),
            ratio=False, target=Target("≤ 20 MB", 20.0, relative=False)),
        Row(plugin, scenario, "memory per extra chat in summed RSS (shared pages counted once per process)", "MB",
            pairwise(per_chat, rss["browser"], high, low), pairwise(per_chat, rss["direct"], high, low),
            ratio=False),
        Row(plugin, scenario, f"PSS after the {high}-chat burst, idle lanes closed", "MB",
            settled["browser"] or None, settled["direct"] or None),
    ]  # fmt: skip
    return rows


async def bench_plugin(ctx: Context, plugin: str) -> list[Row]:
    rows = await scenario_cold(ctx, plugin)
    clients = Clients(plugin, ctx.replicas.urls[plugin], ctx.timeout, ctx.max_pages)
    try:
        rows += await scenario_warm(ctx, clients)
        rows += await scenario_stream(ctx, clients)
        rows += await scenario_concurrency(ctx, clients)
    finally:
        await clients.aclose()
        await aclose()
    return rows


# -- the command ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench",
        description="Benchmark the browser client against a direct aiohttp client on local replica sites.",
    )
    parser.add_argument("--repeat", type=int, default=None, help="runs per figure (default 7; 2 with --quick)")
    parser.add_argument("--plugin", choices=[*PLUGINS, "both"], default="aipower", help="which site (default aipower)")
    parser.add_argument("--quick", action="store_true", help="a smoke test: 2 runs per figure, well under a minute")
    parser.add_argument("--json", metavar="PATH", help="also write the raw numbers as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="also write the table to a file")
    parser.add_argument(
        "--replica",
        choices=["process", "thread"],
        default="process",
        help="serve the replica sites from a child process (default) or from threads of this one",
    )
    parser.add_argument(
        "--max-pages", type=int, default=0, help="browser lanes per site in the concurrency runs (0: one per 6 chats)"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds one chat may take (default 60)")
    return parser


async def run(args: argparse.Namespace) -> tuple[list[Row], Context]:
    import playwright.async_api  # noqa: F401  imported up front so a cold run times the launch, not the import

    plugins = list(PLUGINS) if args.plugin == "both" else [args.plugin]
    with Replicas(plugins, args.replica) as replicas:
        ctx = Context(replicas, args.repeat, args.timeout, args.max_pages)
        rows: list[Row] = []
        for plugin in plugins:
            rows += await bench_plugin(ctx, plugin)
    return rows, ctx


def report(rows: Sequence[Row], ctx: Context, args: argparse.Namespace, seconds: float) -> str:
    where = ctx.meta.get("browser_path", "?")
    head = (
        f"scraper bench: {args.repeat} runs per figure, replica sites in a {args.replica} on 127.0.0.1, "
        f"Chromium {ctx.meta.get('chromium', '?')} ({where}), Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {seconds:.0f} s"
    )
    legend = [
        "Figures are the median ± half the interquartile range; browser/direct divides the medians.",
        "Cold: a new BrowserRuntime (or aiohttp client) per run, after one untimed run of each, so the "
        "one-time imports of the process are left out; launch + page load is part of the first chunk.",
        "Peak PSS: this process plus every process it started (Playwright's driver, Chromium), sampled every "
        f"{SAMPLE_EVERY * 1000:.0f} ms from /proc/PID/smaps_rollup; a page shared by n processes counts 1/n in each."
        + ("" if os.path.isdir("/proc/self") else " n/a: needs Linux /proc."),
        *ctx.notes,
    ]
    return "\n".join([head, "", table(rows), "", *legend]) + "\n"


def raw(rows: Sequence[Row], ctx: Context, args: argparse.Namespace, seconds: float) -> dict[str, Any]:
    return {
        "meta": {
            **ctx.meta,
            "repeat": args.repeat,
            "plugins": args.plugin,
            "replica": args.replica,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "seconds": seconds,
            "prompt": PROMPT,
            "notes": ctx.notes,
        },
        "rows": [{**asdict(row), "cells": dict(zip(HEADER, row.cells(), strict=True))} for row in rows],
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.repeat is None:
        args.repeat = 2 if args.quick else 7
    if args.repeat < 1:
        print("python -m benchmarks.bench: --repeat must be at least 1", file=sys.stderr)
        return 2
    try:
        import_extra("aiohttp", "direct")
    except MissingExtraError as exc:
        print(f"python -m benchmarks.bench: {exc}", file=sys.stderr)
        return 2
    try:
        browser_path = find_browser().path
    except ScraperError as exc:
        print(f"python -m benchmarks.bench: {exc}", file=sys.stderr)
        return 1
    # A deadline for the whole run: a few minutes by default, well under one with --quick.
    deadline = 240.0 if args.quick else 1200.0
    started = time.perf_counter()
    try:
        rows, ctx = asyncio.run(asyncio.wait_for(run(args), deadline * (2 if args.plugin == "both" else 1)))
    except (BenchError, ScraperError, asyncio.TimeoutError) as exc:
        what = "the run took longer than its deadline" if isinstance(exc, asyncio.TimeoutError) else str(exc)
        print(f"python -m benchmarks.bench: error: {type(exc).__name__}: {what}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    seconds = time.perf_counter() - started
    ctx.meta["browser_path"] = browser_path
    text = report(rows, ctx, args, seconds)
    print(text, end="")
    if args.markdown:
        Path(args.markdown).write_text(text, encoding="utf-8")
    if args.json:
        Path(args.json).write_text(json.dumps(raw(rows, ctx, args, seconds), ensure_ascii=False, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
