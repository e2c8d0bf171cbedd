"""``python -m benchmarks.serve``: what going through ``scraper serve`` costs, and what it saves the command line.

In one run, against a replica AI Power site (in a child process, on 127.0.0.1, no delay of its own):

* warm time to first chunk through a running ``scraper serve`` (raw HTTP, and OpenAI's SDK when it is
  installed), next to the same chat through the Python API in this process;
* ``scraper chat`` from its start to the first chunk on its stdout: cold (``--no-server``: it launches its
  own Chromium) and through the warm server.

Each figure is the median ± half the interquartile range of ``--runs`` runs, after one untimed run.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
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


class Server:
    """A ``scraper serve`` process on a free loopback port."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scraper", "serve", "--port", "0"], stderr=subprocess.PIPE, text=True, env=env
        )
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
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def through_http(url: str) -> float:
    """Seconds from sending a streamed chat request to its first text, the reply read to the end."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    connection.connect()
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body go in two writes
    message = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": MESSAGE}], "stream": True}
    body = json.dumps(message).encode("utf-8")  # bytes: sent with the headers in one write
    started = time.perf_counter()
    connection.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    decoder, first, parts = SSEDecoder(), None, []
    while piece := response.read1(65536):
        for event in decoder.feed(piece):
            if event.data != "[DONE]":
                content = json.loads(event.data)["choices"][0]["delta"].get("content")
                if content:
                    first = first or time.perf_counter() - started
                    parts.append(content)
    connection.close()
    return checked("".join(parts), first, "scraper serve (HTTP)")


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per figure (default 7)")
    parser.add_argument("--json", metavar="PATH", help="also write the samples as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
