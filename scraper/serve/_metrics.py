"""``GET /metrics``: what a fleet's monitoring reads, in Prometheus' text exposition format (version 0.0.4).

Counters and histograms live in the process (one server's own numbers; a scraper adds servers up). The
gauges (pages open, browsers up, chats in flight) are read when asked. Written by hand: the format is a
few lines of text, and a server should not need a monitoring library to be monitored.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping

__all__ = ["CONTENT_TYPE", "Histogram", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# seconds: a warm chat's first chunk comes in tens of milliseconds, a cold page load in seconds
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Mapping[str, str]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{name}="{_label(value)}"' for name, value in pairs.items()) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Histogram:
    """Observations counted into cumulative buckets, with their sum and count."""

    def __init__(self, buckets: Iterable[float] = SECONDS) -> None:
        self.bounds = tuple(sorted(buckets))
        self.counts = [0] * len(self.bounds)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        for n, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[n] += 1
                break
        self.total += value
        self.count += 1

    def lines(self, name: str) -> list[str]:
        out, running = [], 0
        for bound, count in zip(self.bounds, self.counts, strict=True):
            running += count
            out.append(f'{name}_bucket{{le="{_number(bound)}"}} {running}')
        out += [f'{name}_bucket{{le="+Inf"}} {self.count}', f"{name}_sum {_number(self.total)}"]
        return [*out, f"{name}_count {self.count}"]


class Metrics:
    """The server's counters: chats by outcome and plugin, time to first chunk, queue wait, requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.chats: dict[tuple[str, str], int] = {}  # (outcome, plugin) -> chats
        self.first_chunk = Histogram()
        self.queue_wait = Histogram()

    def chat_ended(self, outcome: str, plugin: str) -> None:
        """One chat ended: ``served`` (to its last byte), ``failed`` (an error) or ``left`` (its client went)."""
        with self._lock:
            self.chats[(outcome, plugin)] = self.chats.get((outcome, plugin), 0) + 1

    def first_chunk_after(self, seconds: float) -> None:
        with self._lock:
            self.first_chunk.observe(seconds)

    def queued_for(self, seconds: float) -> None:
        with self._lock:
            self.queue_wait.observe(seconds)

    def render(self, gauges: Mapping[str, tuple[str, float]]) -> str:
        """The exposition text; ``gauges`` maps a metric name to its help and current value."""
        out: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            out.extend((f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"))

        with self._lock:
            family("scraper_chats_total", "counter", "Chats ended, by outcome (served, failed, left) and plugin.")
            for (outcome, plugin), count in sorted(self.chats.items()):
                out.append(f"scraper_chats_total{_labels({'outcome': outcome, 'plugin': plugin})} {count}")
            family("scraper_first_chunk_seconds", "histogram", "Seconds from a chat's start to its first text.")
            out += self.first_chunk.lines("scraper_first_chunk_seconds")
            family("scraper_queue_wait_seconds", "histogram", "Seconds a chat waited for a free slot.")
            out += self.queue_wait.lines("scraper_queue_wait_seconds")
        for name, (help_text, value) in gauges.items():
            family(name, "gauge", help_text)
            out.append(f"{name} {_number(value)}")
        return "\n".join(out) + "\n"
