"""What the benchmarks share: their error, robust figures (median ±half-IQR) and the replica sites they
measure against (in this process, or in a child process of their own so the memory figures leave them out).

``python -m benchmarks._common aipower,aiengine`` is that child: it serves the sites until stdin closes.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scraper.replica import PLUGINS, ReplicaSite, SiteConfig

__all__ = [
    "BenchError",
    "Replicas",
    "digits",
    "figure",
    "number",
    "process_tree",
    "serve_replicas",
    "spread",
    "tree_cpu",
    "tree_memory",
]

REPLICA_LIFETIME = 3600.0  # a replica child never outlives this, whatever happens to its parent


class BenchError(RuntimeError):
    """The bench could not measure what it meant to (a wrong reply, a site that would not start)."""


# -- numbers ----------------------------------------------------------------------------------------


def spread(samples: Sequence[float]) -> tuple[float, float]:
    """Median and half the interquartile range: robust to the odd slow run a busy machine makes."""
    if len(samples) < 2:
        return float(samples[0]), 0.0
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return statistics.median(samples), (q3 - q1) / 2


def digits(value: float, unit: str) -> str:
    """A figure without its unit, rounded to what the measurement can tell (and never "-0")."""
    decimals = {"MB": 1, "ev/s": 0, "x": 2}.get(unit, 1 if abs(value) < 10 else 0)
    value = round(value, decimals) + 0.0  # adding 0.0 turns -0.0 into 0.0
    return f"{value:,.{decimals}f}".replace(",", "\u2009")  # thin space between thousands


def number(value: float, unit: str) -> str:
    """A figure with its unit."""
    return digits(value, unit) + ("×" if unit == "x" else f" {unit}")


def figure(samples: Sequence[float] | None, unit: str, signed: bool = False) -> str:
    """``median ±half-IQR`` for a table cell."""
    if samples is None:
        return "n/a"
    if not samples:
        return "—"
    middle, half = spread(samples)
    sign = "+" if signed and round(middle, 1) > 0 else ""
    return f"{sign}{number(middle, unit)} ±{digits(half, unit)}"


# -- the client's processes ------------------------------------------------------------------------


def process_tree(root: int, exclude: set[int]) -> list[int] | None:
    """``root`` and its descendants (Chromium runs under Playwright's driver), or None without /proc."""
    if not os.path.isdir("/proc/self"):
        return None
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if fields[0] != b"Z":  # a zombie has exited already: it holds no memory
            children.setdefault(int(fields[1]), []).append(int(name))
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        if pid not in exclude:
            tree.append(pid)
            stack.extend(children.get(pid, ()))
    return tree


def tree_memory(root: int, exclude: set[int]) -> tuple[int, int] | None:
    """PSS and VmRSS, summed over the process tree, in bytes (None without /proc).

    PSS (proportional set size, from ``/proc/PID/smaps_rollup``) divides every page among the
    processes that map it, so the sum is what the tree really holds: every Chromium process maps the
    same executable and shared memory, which summed VmRSS counts once per process.
    """
    tree = process_tree(root, exclude)
    if tree is None:
        return None
    pss = rss = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
                for line in rollup:
                    if line.startswith(b"Pss:"):
                        pss += int(line.split()[1]) * 1024
                    elif line.startswith(b"Rss:"):
                        rss += int(line.split()[1]) * 1024
        except OSError:
            pass  # exited meanwhile
    return pss, rss


def tree_cpu(root: int, exclude: set[int]) -> float | None:
    """CPU seconds (user + system) the process tree has used so far (None without /proc).

    On a shared machine wall time says as much about the neighbours as about the code; the CPU time
    the client's own processes spent (Python, Playwright's driver, Chromium) is steadier."""
    tree = process_tree(root, exclude)
    if tree is None:
        return None
    ticks = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError):
            pass  # exited meanwhile
    return ticks / os.sysconf("SC_CLK_TCK")


# -- the replica sites ------------------------------------------------------------------------------


class Replicas:
    """The replica sites the bench talks to: URLs, and their settings changed between rounds."""

    def __init__(self, plugins: Sequence[str], mode: str) -> None:
        self.plugins = list(plugins)
        self.mode = mode
        self.urls: dict[str, str] = {}
        self._sites: dict[str, ReplicaSite] = {}
        self._child: subprocess.Popen[str] | None = None

    @property
    def pids(self) -> set[int]:
        """Processes that are the site, not the client: left out of the memory figures."""
        return {self._child.pid} if self._child is not None else set()

    def start(self, timeout: float = 30) -> Replicas:
        if self.mode == "thread":
            for plugin in self.plugins:
                self._sites[plugin] = ReplicaSite(plugin).start()
                self.urls[plugin] = self._sites[plugin].url
            return self
        root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self._child = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._common", ",".join(self.plugins)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        lines: queue.Queue[str] = queue.Queue()
        out = self._child.stdout
        assert out is not None
        threading.Thread(target=lambda: [lines.put(line) for line in out], daemon=True).start()
        deadline = time.monotonic() + timeout
        while len(self.urls) < len(self.plugins):
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise BenchError(f"the replica sites did not start within {timeout:g} s") from None
            plugin, _, url = line.strip().partition(" ")
            if plugin in self.plugins:
                self.urls[plugin] = url
        return self

    def configure(self, plugin: str, **fields: Any) -> None:
        """Change a site's settings (the rest keep their defaults): pacing, reply length, streaming."""
        values = {**SiteConfig().to_dict(), **fields}
        if self.mode == "thread":
            self._sites[plugin].config.update(values)
            return
        request = urllib.request.Request(
            self.urls[plugin] + "/__replica__/config",
            data=json.dumps(values).encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def stop(self) -> None:
        for site in self._sites.values():
            site.stop()
        self._sites.clear()
        child, self._child = self._child, None
        if child is None:
            return
        with contextlib.suppress(OSError):
            if child.stdin is not None:
                child.stdin.close()  # the child's cue to stop
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.terminate()
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)

    def __enter__(self) -> Replicas:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve_replicas(plugins: Sequence[str]) -> int:
    """The child's side: serve the sites until stdin closes (the bench ended or died) or SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    sites = [ReplicaSite(plugin) for plugin in plugins]
    try:
        for site in sites:
            site.start()
            print(site.plugin, site.url, flush=True)
        deadline = time.monotonic() + REPLICA_LIFETIME
        while not stop.wait(0.5) and time.monotonic() < deadline:
            pass
    finally:
        for site in sites:
            site.stop()
    return 0


if __name__ == "__main__":
    sys.exit(serve_replicas([p for p in sys.argv[1].split(",") if p in PLUGINS]))
