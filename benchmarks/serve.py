"""``python -m benchmarks.serve``: what going through ``scraper serve`` costs, and what it saves the command line.

In one run, against a replica AI Power site (in a child process, on 127.0.0.1, no delay of its own):

* warm time to first chunk through a running ``scraper serve`` (raw HTTP, and OpenAI's SDK when it is
  installed), next to the same chat through the Python API in this process;
* ``scraper chat`` from its start to the first chunk on its stdout: cold (``--no-server``: it launches its
  own Chromium) and through the warm server.

Each figure is the median ± half the interquartile range of ``--runs`` runs, after one untimed run.

``--clients N`` measures the server under load instead: N clients at once, each sending ``--requests``
streamed chats one after the other to one warm site, with the server's defaults. It prints p50/p95/p99
of the time to first chunk, of the wait for a chat slot (the server's ``x-scraper-queue-ms``) and of the
chat itself (the difference), the throughput, the failures, and the server's memory (PSS of its whole
process tree, from ``/health``) before, under and after the load.

``--browsers 1,2,3`` (with ``--clients``) measures a pool of browsers: for each size it starts that many
``scraper browser-server`` processes and one ``scraper serve --browser ...`` over them (each browser with
a capacity of its share of the clients, so one site's chats spill over to the other browsers), and prints
chats/s and the time to first chunk (p50, p99) per pool size.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import math
import os
import platform
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks._common import BenchError, Replicas, figure
from scraper.browser import aclose, find_browser
from scraper.client import PRESET_SITES, ChatgptFree
from scraper.wire import SSEDecoder

__all__ = ["main"]

MESSAGE = "Привет, как дела?"
REPLY = f"Echo: {MESSAGE} | Привет, мир! 🙂"
ROOT = Path(__file__).resolve().parent.parent
URL_ENV = PRESET_SITES["chatgptfree"].url_env


def terminate(process: subprocess.Popen[str], seconds: float) -> None:
    """Stop a child the polite way, and for good when it does not stop within ``seconds``."""
    process.terminate()
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Server:
    """A ``scraper serve`` process on a free loopback port."""

    def __init__(self, env: dict[str, str], *flags: str) -> None:
        command = [sys.executable, "-m", "scraper", "serve", "--port", "0", *flags]
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
        assert self.process.stderr is not None
        found = None
        for line in self.process.stderr:  # its first words say where it listens
            found = re.search(r"(http://127\.0\.0\.1:\d+)/v1", line)
            if found:
                break
        if found is None:
            self.stop()
            raise BenchError("scraper serve did not start")
        self.url = found.group(1)
        threading.Thread(target=self.process.stderr.read, daemon=True).start()  # never let its pipe fill up
        deadline = time.monotonic() + 30
        while not self._healthy():
            if time.monotonic() > deadline:
                self.stop()
                raise BenchError("scraper serve did not answer /health within 30 s")
            time.sleep(0.05)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=5) as response:
                return json.loads(response.read()).get("service") == "scraper"
        except OSError:
            return False

    def stop(self) -> None:
        terminate(self.process, 30)


def through_http(url: str) -> float:
    """Seconds from sending a streamed chat request to its first text, the reply read to the end."""
    return streamed(url)[0]


def streamed(url: str, timeout: float = 60) -> tuple[float, float]:
    """One streamed chat: seconds to its first text, and seconds it waited for a slot (server's figure)."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    connection.connect()
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body go in two writes
    message = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": MESSAGE}], "stream": True}
    body = json.dumps(message).encode("utf-8")  # bytes: sent with the headers in one write
    started = time.perf_counter()
    connection.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    if response.status != 200:
        raise BenchError(f"scraper serve answered {response.status}: {response.read(300)!r}")
    queued = float(response.getheader("x-scraper-queue-ms") or 0) / 1000
    decoder, first, parts = SSEDecoder(), None, []
    while piece := response.read1(65536):
        for event in decoder.feed(piece):
            if event.data != "[DONE]":
                content = json.loads(event.data)["choices"][0]["delta"].get("content")
                if content:
                    first = first or time.perf_counter() - started
                    parts.append(content)
    connection.close()
    return checked("".join(parts), first, "scraper serve (HTTP)"), queued


def through_sdk(url: str) -> Callable[[], float] | None:
    """The same through OpenAI's SDK (its client made once), or None when it is not installed."""
    try:
        from openai import OpenAI
    except ImportError:
        return None
    client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)

    def once() -> float:
        started = time.perf_counter()
        first, parts = None, []
        for chunk in client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": MESSAGE}], stream=True
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                first = first or time.perf_counter() - started
                parts.append(chunk.choices[0].delta.content)
        return checked("".join(parts), first, "scraper serve (OpenAI SDK)")

    return once


def through_python() -> float:
    """The same chat through the Python API of this process (its own browser, warm after the first run)."""

    async def once() -> float:
        started = time.perf_counter()
        first, parts = None, []
        async for chunk in ChatgptFree.create_async_generator("gpt-4o-mini", [{"role": "user", "content": MESSAGE}]):
            first = first or time.perf_counter() - started
            parts.append(chunk)
        return checked("".join(parts), first, "Python API")

    return asyncio.run(once())


def command_line(env: dict[str, str], *flags: str) -> float:
    """Seconds from starting ``scraper chat`` to the first byte of the reply on its stdout."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "scraper", "chat", *flags, MESSAGE],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert process.stdout is not None
    head = process.stdout.read(1)
    first = time.perf_counter() - started
    rest = process.stdout.read()
    if process.wait(120) != 0:
        raise BenchError(f"scraper chat {' '.join(flags)} failed")
    return checked((head + rest).decode("utf-8").rstrip("\n"), first, f"scraper chat {' '.join(flags)}")


def checked(text: str, first: float | None, who: str) -> float:
    if text != REPLY or first is None:
        raise BenchError(f"{who} replied {text!r}, not {REPLY!r}")
    return first


def measure(runs: int, once: Callable[[], float]) -> list[float]:
    """``runs`` timings in milliseconds, after one untimed run."""
    once()
    return [once() * 1000 for _ in range(runs)]


def percentile(samples: Sequence[float], share: float) -> float:
    """The ``share`` (0..1) percentile of ``samples``, nearest rank."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def memory(url: str) -> dict[str, float | None]:
    with urllib.request.urlopen(f"{url}/health", timeout=60) as response:
        return json.loads(response.read()).get("memory") or {}


def settled(url: str, timeout: float = 120) -> tuple[dict[str, float | None], float]:
    """The memory once the burst's extra lanes have closed (each site down to its first lane), and the
    seconds that took (``SCRAPER_LANE_IDLE``, 30 s by default)."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        with urllib.request.urlopen(f"{url}/health", timeout=60) as response:
            health = json.loads(response.read())
        if all(len(site["lanes"]) <= 1 for site in health.get("sites", [])):
            break
        time.sleep(1.0)
    return memory(url), time.perf_counter() - began


def under_load(url: str, clients: int, requests: int) -> dict[str, object]:
    """``clients`` threads at once, ``requests`` streamed chats each; every sample and every failure."""
    first: list[float] = []
    queued: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    peak: list[dict[str, float | None]] = []

    def client() -> None:
        start.wait()
        for _ in range(requests):
            try:
                seconds, waited = streamed(url, timeout=300)
            except Exception as exc:  # a failure is a figure of its own
                with lock:
                    failures.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            with lock:
                first.append(seconds * 1000)
                queued.append(waited * 1000)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    while any(thread.is_alive() for thread in threads):
        threads[0].join(1.0)
        if len(first) * 2 >= clients * requests and not peak:
            peak.append(memory(url))  # halfway through: the memory under load
    elapsed = time.perf_counter() - began
    return {"first": first, "queued": queued, "failures": failures, "seconds": elapsed, "peak": peak}


def load_main(args: argparse.Namespace) -> int:
    """The ``--clients`` run."""
    with Replicas(["aipower"], "process") as replicas:
        replicas.configure("aipower", chunk_delay=0.0, first_delay=0.0)
        env = {**os.environ, URL_ENV: replicas.urls["aipower"], "PYTHONIOENCODING": "utf-8", "SCRAPER_SERVER": "off"}
        server = Server(env)
        try:
            through_http(server.url)  # warm: the browser is up and the site's page loaded
            before = memory(server.url)
            result = under_load(server.url, args.clients, args.requests)
            after = memory(server.url)
            idle, waited = settled(server.url)
        finally:
            server.stop()
    first, queued = result["first"], result["queued"]
    assert isinstance(first, list) and isinstance(queued, list) and isinstance(result["failures"], list)
    chat = [f - q for f, q in zip(first, queued, strict=True)]
    total = args.clients * args.requests
    seconds = float(result["seconds"])  # type: ignore[arg-type]
    print(
        f"scraper serve under load: {args.clients} clients x {args.requests} streamed chats, one warm replica "
        f"AI Power site on 127.0.0.1 (no delay), server defaults, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}\n"
    )
    print("| figure | p50 | p95 | p99 |\n|---|---|---|---|")
    for name, samples in (
        ("time to first chunk", first),
        ("  of it: waiting for a slot", queued),
        ("  of it: the chat", chat),
    ):
        cells = " | ".join(f"{percentile(samples, p):.0f} ms" if samples else "—" for p in (0.5, 0.95, 0.99))
        print(f"| {name} | {cells} |")
    print(
        f"\nsucceeded {len(first)}/{total}, failed {len(result['failures'])}; {seconds:.1f} s in all, "
        f"throughput {len(first) / seconds:.1f} chats/s"
    )
    peak = result["peak"][0] if result["peak"] else {}  # type: ignore[index]
    print(
        f"memory (PSS of the server's process tree): {before.get('pss_mb')} MB warm, {peak.get('pss_mb')} MB "
        f"under load, {after.get('pss_mb')} MB right after, {idle.get('pss_mb')} MB once idle lanes closed "
        f"({waited:.0f} s later); processes {before.get('processes')} / {peak.get('processes')} / "
        f"{after.get('processes')} / {idle.get('processes')}"
    )
    for failure in sorted(set(result["failures"]))[:5]:  # type: ignore[call-overload]
        print(f"  failure: {failure}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({**result, "chat": chat, "before": before, "after": after, "idle": idle}, indent=1)
        )
    return 0 if not result["failures"] else 1


class BrowserServer:
    """A ``scraper browser-server`` process on a free loopback port, and the endpoint it prints."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scraper", "browser-server", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        self.endpoint = self.process.stdout.readline().strip()
        if not self.endpoint.startswith("ws://"):
            self.stop()
            raise BenchError("scraper browser-server did not start")

    def stop(self) -> None:
        terminate(self.process, 60)


def pool_main(args: argparse.Namespace) -> int:
    """The ``--browsers`` run: the same load on pools of each size."""
    sizes = [int(size) for size in args.browsers.split(",") if size.strip()]
    rows: list[tuple[int, dict[str, object]]] = []
    with Replicas(["aipower"], "process") as replicas:
        replicas.configure("aipower", chunk_delay=0.0, first_delay=0.0)
        env = {**os.environ, URL_ENV: replicas.urls["aipower"], "PYTHONIOENCODING": "utf-8", "SCRAPER_SERVER": "off"}
        for size in sizes:
            browsers: list[BrowserServer] = []
            server: Server | None = None
            try:
                browsers = [BrowserServer() for _ in range(size)]
                share = math.ceil(args.clients / size)
                flags = [f"{b.endpoint}?capacity={share}" if size > 1 else b.endpoint for b in browsers]
                server = Server(env, *(flag for endpoint in flags for flag in ("--browser", endpoint)))
                under_load(server.url, args.clients, 1)  # warm: the site's page loaded in every browser it spills to
                rows.append((size, under_load(server.url, args.clients, args.requests)))
            finally:
                if server is not None:
                    server.stop()
                for browser in browsers:
                    browser.stop()
    print(
        f"scraper serve over a pool of browser servers: {args.clients} clients x {args.requests} streamed chats, "
        f"one replica AI Power site on 127.0.0.1 (no delay), {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}\n"
    )
    print("| browsers | chats/s | first chunk p50 | first chunk p99 | failed |\n|---|---|---|---|---|")
    failed = 0
    for size, result in rows:
        first, failures = result["first"], result["failures"]
        assert isinstance(first, list) and isinstance(failures, list)
        failed += len(failures)
        rate = len(first) / float(result["seconds"])  # type: ignore[arg-type]
        cells = " | ".join(f"{percentile(first, p):.0f} ms" if first else "—" for p in (0.5, 0.99))
        print(f"| {size} | {rate:.1f} | {cells} | {len(failures)} |")
    if args.json:
        Path(args.json).write_text(json.dumps({size: result for size, result in rows}, indent=1))
    return 0 if not failed else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per figure (default 7)")
    parser.add_argument("--clients", type=int, metavar="N", help="instead: N concurrent streaming clients (load)")
    parser.add_argument("--requests", type=int, default=3, help="with --clients: chats per client (default 3)")
    parser.add_argument(
        "--browsers", metavar="1,2,3", help="the load (--clients, default 8) on pools of that many browser servers"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the samples as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.browsers:
        args.clients = args.clients or 8
        return pool_main(args)
    if args.clients:
        return load_main(args)
    started = time.perf_counter()
    rows: list[tuple[str, list[float] | None]] = []
    with Replicas(["aipower"], "process") as replicas:
        replicas.configure("aipower", chunk_delay=0.0, first_delay=0.0)
        env = {**os.environ, URL_ENV: replicas.urls["aipower"], "PYTHONIOENCODING": "utf-8"}
        os.environ[URL_ENV] = replicas.urls["aipower"]
        server = Server({**env, "SCRAPER_SERVER": "off"})
        try:
            sdk = through_sdk(server.url)
            rows.append(("warm: through scraper serve, raw HTTP", measure(args.runs, lambda: through_http(server.url))))
            rows.append(("warm: through scraper serve, OpenAI SDK", measure(args.runs, sdk) if sdk else None))
            rows.append(("warm: Python API in process", measure(args.runs, through_python)))
            asyncio.run(aclose())
            cold = measure(args.runs, lambda: command_line(env, "--no-server"))
            rows.append(("scraper chat: cold (--no-server)", cold))
            served = {**env, "SCRAPER_SERVER": server.url}
            rows.append(("scraper chat: through a warm server", measure(args.runs, lambda: command_line(served))))
        finally:
            server.stop()
    seconds = time.perf_counter() - started
    print(
        f"scraper serve bench: {args.runs} runs per figure, replica AI Power site in a process on 127.0.0.1 "
        f"(no delay), Chromium {find_browser().path}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{seconds:.0f} s\n"
    )
    print("| figure | time to first chunk |\n|---|---|")
    for name, samples in rows:
        print(f"| {name} | {figure(samples, 'ms')} |")
    print("\nMedian ± half the interquartile range, after one untimed run. scraper chat: from its start to the")
    print("first byte of the reply on its stdout (Python's start and imports included).")
    if args.json:
        Path(args.json).write_text(json.dumps({name: samples for name, samples in rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
