"""Helpers the test modules share: waiting on a condition, talking to a local server over plain HTTP,
the replica's echo reply, finding the Chromium processes a program left behind, a private
redis-server, and browser servers (``scraper browser-server``, ``playwright run-server``)."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "RedisServer",
    "Reply",
    "abandon_stream",
    "browser_server",
    "chats",
    "cli",
    "echo",
    "free_port",
    "http_server",
    "interrupt",
    "interruptible",
    "marked_chromium_pids",
    "playwright_server",
    "proc_stat",
    "raw_request",
    "redis_server_or_skip",
    "request",
    "send",
    "wait_for",
    "wait_until",
]

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``scraper ARGS`` in a process of its own, run from the repository root; its output as text."""
    return subprocess.run(
        [sys.executable, "-m", "scraper", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONIOENCODING": "utf-8", **(env or {})},
    )


def chat_and_inspect(url: str, plugin: str, message: str, reply: str) -> dict[str, Any]:
    """``scraper chat`` on ``url`` answers ``reply``; then what ``scraper inspect --json`` finds there
    (the page's one plugin)."""
    result = cli("chat", "--url", url, "--plugin", plugin, message)
    assert (result.returncode, result.stdout.strip()) == (0, reply), result.stderr
    result = cli("inspect", url, "--json")
    assert result.returncode == 0, result.stderr
    [found] = json.loads(result.stdout)["plugins"]
    assert found["plugin"] == plugin
    return found  # type: ignore[no-any-return]


@contextlib.contextmanager
def own_session(command: list[str], **popen: Any) -> Iterator[subprocess.Popen[str]]:
    """``command`` in a session of its own; at the end its whole process group is ended (a launcher's
    children, such as a browser server's driver or a browser's helpers, go with it)."""
    process = subprocess.Popen(command, start_new_session=True, text=True, **popen)
    try:
        yield process
    finally:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(wait)
                break
        with contextlib.suppress(ProcessLookupError):  # a child that outlived the launcher (a Node driver)
            os.killpg(process.pid, signal.SIGKILL)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()


def _deliverable_sigint() -> None:
    # A child inherits an ignored SIGINT (pytest started in the background, as `cmd &` without job
    # control does) and then rightly keeps ignoring it: the interrupt a test sends must be deliverable.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def interruptible(command: list[str], **popen: Any) -> subprocess.Popen[str]:
    """``command`` (a Python program) started so that :func:`interrupt` can stop it, or say why not."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "PYTHONFAULTHANDLER": "1", **popen.pop("env", {})}
    return subprocess.Popen(command, text=True, cwd=ROOT, env=env, preexec_fn=_deliverable_sigint, **popen)


def interrupt(process: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """Send SIGINT (Ctrl-C) and wait for the exit; its stdout and stderr. A process still running after
    ``timeout`` fails the test with its signal state and every thread's Python stack."""
    process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        status = Path(f"/proc/{process.pid}/status").read_text()
        signals = " ".join(line for line in status.splitlines() if line.startswith("Sig"))
        process.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: the stacks go to stderr
        _, err = process.communicate(timeout=30)
        raise AssertionError(f"still running {timeout:g} s after SIGINT ({signals}):\n{err}") from None


@contextlib.contextmanager
def browser_server(*flags: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``scraper browser-server`` in a session of its own, and the endpoint it prints."""
    process = subprocess.Popen(
        [sys.executable, "-m", "scraper", "browser-server", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        endpoint = process.stdout.readline().strip() if process.stdout else ""
        assert endpoint.startswith("ws://127.0.0.1:"), (endpoint, process.stderr.read() if process.stderr else "")
        yield process, endpoint
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            assert process.wait(60) == 0
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()


@contextlib.contextmanager
def playwright_server(
    port: int | None = None, path: str = "/", env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A real ``python -m playwright run-server`` on loopback (``--unsafe`` lets the client name the
    Chromium to launch), in a session of its own; its endpoint. Given a port, it takes that one (a
    server started again where it was); ``path`` is the endpoint's path."""
    port = port or free_port()
    command = [sys.executable, "-m", "playwright", "run-server", "--port", str(port), "--host", "127.0.0.1"]
    command += ["--path", path, "--unsafe"]
    environment = {**os.environ, **(env or {})}
    with own_session(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=environment) as process:
        line = process.stdout.readline() if process.stdout else ""
        assert "Listening on" in line, line
        yield process, f"ws://127.0.0.1:{port}{path}"


def chats(site: Any) -> list[Any]:
    """The chat requests a replica site received (either plugin's endpoint)."""
    return [r for r in site.log if r.path.endswith(("admin-ajax.php", "/chats/submit"))]


def abandon_stream(site: Any, request: bytes) -> None:
    """Send a chat request by hand, and close the connection once its stream runs: the site must count
    the stream aborted, not completed, and hold none open."""
    sock = socket.create_connection(("127.0.0.1", site.port), timeout=5)
    sock.sendall(request)
    assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK")
    assert wait_until(lambda: site.stats.active_streams == 1)
    sock.close()
    assert wait_until(lambda: site.stats.streams_aborted == 1)
    assert site.stats.active_streams == 0 and site.stats.streams_completed == 0


# For the pytest runs the tests start: two installed plugins that cost seconds at every start
# (LangSmith's, which comes with LangChain, and Hypothesis's) and that those runs never use.
UNUSED_PYTEST_PLUGINS = "-p no:langsmith_plugin -p no:hypothesispytest"


def soak_factor() -> int:
    """How many times over a test that repeats a race runs it: 1, or ``SCRAPER_SOAK`` (``make soak``)."""
    return max(1, int(os.environ.get("SCRAPER_SOAK", "1")))


def echo(message: str) -> str:
    """What the replica sites answer to ``message`` (their model echoes the prompt, then a fixed tail)."""
    return f"Echo: {message} | Привет, мир! 🙂"


class HasPort(Protocol):
    port: int


@dataclass
class Reply:
    """An HTTP answer as received: status, headers in order, the body, and (raw sockets) each read."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    reads: list[bytes] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def names(self) -> list[str]:
        return [k for k, _ in self.headers]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None, *, host: str = "127.0.0.1"
) -> bytes:
    """A request as the bytes on the wire, for a test that writes it on a bare socket: ``Content-Length``
    with a body and on any method but GET, then ``headers`` in their order."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    sent = {"Content-Length": str(len(body))} if method != "GET" or body else {}
    lines += [f"{name}: {value}" for name, value in {**sent, **(headers or {})}.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def send(site: HasPort, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Reply:
    """One request written by hand on a socket; read until the server closes, keeping every read as it came
    (header order and byte layout stay visible)."""
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as sock:
        sock.sendall(raw_request(method, path, body, headers, host=f"127.0.0.1:{site.port}"))
        reads = []
        while chunk := sock.recv(65536):
            reads.append(chunk)
    head, _, payload = b"".join(reads).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("utf-8").split("\r\n")
    assert status_line.startswith("HTTP/1.1 "), status_line
    parsed = [(name, value) for name, _, value in (line.partition(": ") for line in header_lines)]
    return Reply(int(status_line.split()[1]), parsed, payload, reads)


def request(
    site: HasPort, method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None
) -> Reply:
    """One request through ``http.client`` (a decoded body), read to the close."""
    connection = http.client.HTTPConnection("127.0.0.1", site.port, timeout=10)
    try:
        connection.request(method, path, body=body if method != "GET" else None, headers=headers or {})
        response = connection.getresponse()
        return Reply(response.status, response.getheaders(), response.read())
    finally:
        connection.close()


def proc_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first, then the parent's pid); None
    once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text("utf-8").rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def marked_chromium_pids(marker: str) -> set[int]:
    """Live Chromium processes started by a program run with ``SCRAPER_TEST_RUN=<marker>`` in its
    environment (every process it starts inherits it): what that program may have left behind, whatever
    else runs on the machine."""
    found = set()
    needle = f"SCRAPER_TEST_RUN={marker}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            comm = Path(f"/proc/{entry}/comm").read_text("utf-8").strip()
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        stat = proc_stat(int(entry))
        if "chrom" in comm and stat is not None and stat[0] != "Z" and needle in environ.split(b"\0"):
            found.add(int(entry))
    return found


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Block until ``condition`` holds (a server-side effect lands a moment after the client acts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll until ``condition`` holds (server-side effects arrive a moment after the client acts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


@contextlib.contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A plain HTTP server on a free loopback port, in a thread; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    """A loopback TCP port nothing listens on now (for a server that cannot bind port 0 itself)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


NO_REDIS = "no redis-server here (apt-get install redis-server; `make setup` does it as root)"


@contextlib.contextmanager
def redis_server_or_skip(password: str | None = None) -> Iterator[RedisServer]:
    """A private redis-server for the block, killed after it; the test skips where none is installed."""
    import pytest

    if shutil.which("redis-server") is None:
        pytest.skip(NO_REDIS)
    server = RedisServer(password).start()
    try:
        yield server
    finally:
        server.stop()


class RedisServer:
    """A private ``redis-server`` on 127.0.0.1 (no snapshot, no append-only file): :meth:`start` waits for
    its PING, :meth:`stop` kills it; started again it takes the same port, as a restarted Redis does."""

    def __init__(self, password: str | None = None) -> None:
        self.port = free_port()
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{f':{self.password}@' if self.password else ''}127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        """Whether it answers PING (with AUTH first when it has a password)."""
        auth = f"AUTH {self.password}\r\n".encode() if self.password else b""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(auth + b"PING\r\n")
                got = b""
                while b"+PONG" not in got and b"-" not in got and (chunk := sock.recv(64)):
                    got += chunk
                return b"+PONG" in got
        except OSError:
            return False

    def start(self) -> RedisServer:
        locked = ["--requirepass", self.password] if self.password else []
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                *locked,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_until(lambda: self.ping() or self.process is None or self.process.poll() is not None, 10)
        assert self.ping(), f"redis-server did not answer on port {self.port} (exit {self.process.poll()})"
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None
