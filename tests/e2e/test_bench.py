"""The benchmark runs end to end, and its floor speaks the same protocols as the browser client.

No assertion here is about speed: these tests check that every figure is measured and sane, and
that the direct client returns exactly the reply the browser client returns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scraper import AIEngineChat, AIPowerChat
from scraper.client._direct import DirectChat
from tests._support import echo

ROOT = Path(__file__).resolve().parents[2]
MESSAGE = "Привет, как дела?"
REPLY = echo(MESSAGE)
METRICS = [
    "launch + page load (direct: page GET)",
    "first chunk",
    "time to first chunk",
    "total",
    "first-chunk overhead (browser − direct)",
    "events per second",
    "1 at once: wall",
    "4 at once: wall",
    "16 at once: wall",
    "64 at once: wall",
    "1 at once: peak PSS",
    "4 at once: peak PSS",
    "16 at once: peak PSS",
    "64 at once: peak PSS",
    "wall(16) / wall(1)",
    "memory per extra chat: (peak PSS 64 − peak PSS 1) / 63",
    "memory per extra chat in summed RSS (shared pages counted once per process)",
    "PSS after the 64-chat burst, idle lanes closed",
]


def module(*args: str) -> subprocess.CompletedProcess:
    """``python ARGS`` from the project's root, bounded."""
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )


def test_quick_bench_prints_every_row_with_sane_numbers(tmp_path):
    raw_path, table_path = tmp_path / "bench.json", tmp_path / "bench.md"
    command = [
        "-m",
        "benchmarks.bench",
        "--quick",
        "--repeat",
        "1",
        "--json",
        str(raw_path),
        "--markdown",
        str(table_path),
    ]
    result = module(*command)
    assert result.returncode == 0, result.stderr
    printed = result.stdout
    assert table_path.read_text(encoding="utf-8") == printed
    lines = [line for line in printed.splitlines() if line.startswith("| aipower |")]
    for metric in METRICS:
        assert any(f"| {metric} |" in line for line in lines), f"no row for {metric!r} in:\n{printed}"
    assert printed.count("≤ 1.3× direct:") == 2 and "≤ 20 MB:" in printed

    rows = json.loads(raw_path.read_text(encoding="utf-8"))["rows"]
    assert {row["metric"] for row in rows} >= set(METRICS)
    linux = os.path.isdir("/proc/self")
    for row in rows:
        metric = row["metric"]
        for client in ("browser", "direct"):
            samples = row[client]
            if metric.startswith("first-chunk overhead"):  # a difference of two timings: any sign, browser column
                assert samples if client == "browser" else samples == []
                assert all(abs(value) < 60_000 for value in samples)
            elif "RSS" in metric or "PSS" in metric or "memory" in metric:
                if not linux:
                    assert samples is None
                elif "per extra chat" in metric:  # a difference of two peaks: may be about zero
                    assert samples and all(abs(value) < 10_000 for value in samples)
                else:
                    assert samples and all(value > 0 for value in samples), (metric, client, samples)
            else:
                assert samples and all(value > 0 for value in samples), (metric, client, samples)


@pytest.mark.parametrize("plugin,chat_class", [("aipower", AIPowerChat), ("aiengine", AIEngineChat)])
async def test_direct_client_yields_what_the_browser_client_yields(plugin, chat_class, request):
    replica = request.getfixturevalue(plugin)  # the replica site fixture of that name
    browser_chunks = [
        chunk
        async for chunk in chat_class(replica.url).create_async_generator("", [{"role": "user", "content": MESSAGE}])
    ]
    async with DirectChat(replica.url + "/", plugins=(plugin,)) as direct:
        direct_chunks = [chunk async for chunk in direct.stream(MESSAGE)]
        again = await direct.collect(MESSAGE)  # warm: the page is not fetched again
        assert direct.site is not None and direct.site.page_loads == 1
    assert "".join(browser_chunks) == "".join(direct_chunks) == again == REPLY
    assert all(direct_chunks)


def test_transfer_bench_times_every_way_and_checks_what_each_read():
    ways = [
        "direct (aiohttp)",
        "read in the page only",
        "current transport",
        "pull base64",
        "pull toBase64, one ahead",
        "CDP Fetch + IO.read",
        "byte channel (WebSocket)",
        "byte channel, batched",
    ]
    result = module("-m", "benchmarks.transfer", "--repeat", "1", "--events", "300", "--only", ";".join(ways))
    assert result.returncode == 0, result.stderr
    for way in ways:
        assert any(line.startswith(way) and line.rstrip().endswith("×") for line in result.stdout.splitlines()), (
            way,
            result.stdout,
        )


def test_warm_site_bench_prints_the_memory_of_one_more_site():
    default = "default: address bar popups off"
    result = module("-m", "benchmarks.sites", "--sites", "2", "--repeat", "1", "--setting", default)
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith(f"| {default} |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    one, two = (float(cell.split()[0].replace("\u2009", "")) for cell in cells[1:3])
    assert 0 < one < two, row  # a second warm site holds memory of its own
    assert cells[4].split(" / ")[0].isdigit(), row


def test_warm_site_bench_measures_closed_pages_and_blocked_heavy_pages():
    idle, blocked = "idle: page closed, context kept", "heavy page, images/fonts/media blocked"
    command = ["-m", "benchmarks.sites", "--sites", "2", "--repeat", "1", "--setting", idle, "--setting", blocked]
    result = module(*command)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for name in (idle, blocked):
        assert any(line.startswith(f"| {name} |") for line in lines), result.stdout
    reload = next(line for line in lines if line.startswith("| page closed: loaded again on demand |"))
    assert float(reload.split("|")[2].split()[0].replace("\u2009", "")) > 0, reload
    aborted = next(line for line in lines if line.startswith(f"{blocked}:"))
    assert int(aborted.split(": ")[1].split()[0]) >= 2 * 6, aborted  # the 6 images of each page hold its load event
