"""``scraper serve`` as a long-running local service that clients (and web pages) may misuse: bounded warm
sites, no foreign content or secrets out, half-sent requests closed, a clean stop, ``user:pass@`` sites.

Real Chromium, replica sites and small local servers, all on 127.0.0.1. Bounds are counted (warm sites,
Chromium processes), never timed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from scraper.serve import ServeConfig, bind, create_app, uvicorn_server
from tests._support import http_server, wait_until
from tests.e2e.test_serve import (
    HELLO,
    REPLY,
    ROOT,
    Served,
    descendants,
    events_of,
    serve_process,
    served_url,
    serving,
)

CANARY = "CANARY-7f3a9c-the-page-says-this"


class _Canary(BaseHTTPRequestHandler):
    """Every page an error, whose body holds the canary (title and text)."""

    def do_GET(self) -> None:
        status = 404 if "missing" in self.path else 500
        body = f"<html><head><title>{CANARY}</title></head><body><p>{CANARY}</p></body></html>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def canary() -> Iterator[str]:
    with http_server(_Canary) as url:
        yield url


def chat(served: Served, site: dict[str, Any], *, stream: bool = False, **extra: Any) -> httpx.Response:
    body = {"model": "default", "messages": HELLO, "stream": stream, "site": site, **extra}
    return httpx.post(f"{served.url}/v1/chat/completions", json=body, timeout=180)


def renderers() -> int:
    """Chromium renderer processes below this process (one or more per open page)."""
    count = 0
    for pid in descendants(os.getpid()):
        with contextlib.suppress(OSError):
            if b"--type=renderer" in Path(f"/proc/{pid}/cmdline").read_bytes():
                count += 1
    return count


# -- 1. memory ------------------------------------------------------------------------------------------


def test_thirty_pages_keep_at_most_max_sites_warm_and_idle_sites_close(aipower, monkeypatch):
    with serving(max_sites=3) as served:
        sites = served.state.service.runtime.sites
        # The server shares the process's browser, whose counts include the sites of earlier tests.
        opened, evicted = sites.opened, sites.evicted
        first = chat(served, {"url": f"{aipower.url}/chat/?page=0", "plugins": ["aipower"]})
        assert first.status_code == 200 and first.json()["choices"][0]["message"]["content"] == REPLY
        one_site = renderers()
        for page in range(1, 30):
            answer = chat(served, {"url": f"{aipower.url}/chat/?page={page}", "plugins": ["aipower"]})
            assert answer.status_code == 200, answer.text
            assert len(sites) <= 3, f"{len(sites)} warm sites after {page + 1} pages"
        assert sites.opened - opened == 30 and sites.evicted - evicted == 27
        assert renderers() <= one_site + 2 * 2, "Chromium processes for at most three pages"
        health = served.health()
        assert len(health["sites"]) == 3 and health["limits"]["max_sites"] == 3
        assert health["memory"]["processes"] >= 1 and health["memory"]["pss_mb"] > 0

        # Idle: every site closes, its first lane too, and the Chromium processes of its pages go.
        monkeypatch.setenv("SCRAPER_SITE_IDLE", "0")
        for page in (27, 28, 29):  # a chat each: released with the new idle bound
            assert chat(served, {"url": f"{aipower.url}/chat/?page={page}", "plugins": ["aipower"]}).status_code == 200
        assert wait_until(lambda: len(sites) == 0, 60), "idle sites were closed"
        assert wait_until(lambda: renderers() < one_site, 60), "their pages' processes ended"
        assert served.health()["sites"] == []


def test_more_fallback_urls_than_the_cap_are_refused_before_any_page_loads(aipower):
    with serving() as served:
        fallbacks = [f"{aipower.url}/p{i}/" for i in range(15)]
        answer = chat(served, {"url": f"{aipower.url}/nothing/", "fallback_urls": fallbacks})
        assert answer.status_code == 400 and "at most 3" in answer.json()["error"]["message"]
        assert len(served.state.service.runtime.sites) == 0 and aipower.stats.page_loads == 0


# -- 2. web pages and foreign hosts ----------------------------------------------------------------------


def test_a_cross_site_post_and_a_foreign_host_are_refused_and_no_chat_runs(aipower):
    with serving() as served:
        simple = httpx.post(
            f"{served.url}/v1/chat/completions",
            content=json.dumps({"model": "gpt-4o-mini", "messages": HELLO}),
            headers={"content-type": "text/plain", "origin": "http://evil.example"},
        )
        assert simple.status_code == 403
        rebound = httpx.post(
            f"{served.url}/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": HELLO},
            headers={"host": f"evil.example:{served.url.rsplit(':', 1)[1]}"},
        )
        assert rebound.status_code == 421
        assert aipower.stats.page_loads == 0 and served.state.served == 0 and served.state.failed == 0
        ok = httpx.post(
            f"{served.url}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HELLO}, timeout=120
        )
        assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] == REPLY


# -- 3 and 4. no foreign content, no secrets ------------------------------------------------------------


def test_no_canary_password_token_or_key_in_any_answer_log_or_file_name(canary, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SCRAPER_DEBUG_DIR", str(tmp_path))
    secrets = ("pa55word-x9", "tok-5ecret-77", "sesame-key-42")
    with caplog.at_level(logging.DEBUG), serving(api_key="sesame-key-42") as served:
        auth = {"authorization": "Bearer sesame-key-42"}
        answers = []
        for path, stream in (("/error", False), ("/error", True), ("/missing", False)):
            url = f"http://alice:pa55word-x9@{canary.removeprefix('http://')}{path}?token=tok-5ecret-77"
            body = {"model": "default", "messages": HELLO, "stream": stream, "site": {"url": url}}
            answer = httpx.post(f"{served.url}/v1/chat/completions", json=body, headers=auth, timeout=120)
            assert answer.status_code == 502, answer.text
            answers.append(answer.text + json.dumps(dict(answer.headers)))
        health = httpx.get(f"{served.url}/health", headers=auth)
        assert health.json()["sites"], "the warm sites are listed"
        answers.append(health.text)
    shown = "\n".join(answers)
    assert CANARY not in shown and "HTTP 500" in shown and "HTTP 404" in shown
    logged = "\n".join(record.getMessage() for record in caplog.records)
    files = "\n".join(str(path) for path in tmp_path.rglob("*"))
    assert files, "debug files were kept"
    for secret in secrets:
        assert secret not in shown and secret not in logged and secret not in files, secret


# -- 8. user:pass@ sites ----------------------------------------------------------------------------------


def test_a_user_pass_site_survives_a_nonce_refresh(aipower):
    with serving() as served:
        site = {"url": f"http://alice:pa55@{aipower.url.removeprefix('http://')}/chat/", "plugins": ["aipower"]}
        first = chat(served, site)
        assert first.status_code == 200 and first.json()["choices"][0]["message"]["content"] == REPLY
        loads = aipower.stats.page_loads
        aipower.expire_nonces()  # the warm page's nonce is now refused: the page is fetched again
        again = chat(served, site)
        assert again.status_code == 200, again.text
        assert again.json()["choices"][0]["message"]["content"] == REPLY
        assert aipower.stats.page_loads > loads, "the nonce was refreshed"


# -- 6. slow clients ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def bounded_server(**settings: Any) -> Iterator[str]:
    """The server as ``scraper serve`` runs it (its protocol and timeouts), in a thread."""
    sock = bind("127.0.0.1", 0)
    config = ServeConfig(port=sock.getsockname()[1], **settings)
    server = uvicorn_server(config, create_app(config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        assert wait_until(lambda: _answers(url), 30)
        yield url
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health").status_code == 200
    except httpx.HTTPError:
        return False


def _until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a generous bound: it must close)."""
    sock.settimeout(120)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_half_sent_requests_and_idle_connections_are_closed_by_the_server():
    with bounded_server(header_timeout=1, body_timeout=1, idle_timeout=1) as url:
        port = int(url.rsplit(":", 1)[1])
        headers = socket.create_connection(("127.0.0.1", port))
        headers.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
        assert _until_closed(headers).startswith(b"HTTP/1.1 408"), "headers never finished"

        body = socket.create_connection(("127.0.0.1", port))
        body.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"model": '
        )
        answer = _until_closed(body)
        assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive" in answer, "the body never finished"

        idle = socket.create_connection(("127.0.0.1", port))
        idle.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _until_closed(idle).startswith(b"HTTP/1.1 200"), "answered, then closed when idle"
        for sock in (headers, body, idle):
            sock.close()


# -- 7. stopping, and the key out of ps ----------------------------------------------------------------------


def test_sigterm_mid_stream_gives_each_stream_an_error_then_done_and_a_clean_log(aipower, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("file-key-31337\n")
    process = serve_process("--api-key-file", str(key_file))
    try:
        url = served_url(process)
        assert b"file-key-31337" not in Path(f"/proc/{process.pid}/cmdline").read_bytes(), "the key is not in ps"
        auth = {"authorization": "Bearer file-key-31337"}
        assert httpx.get(f"{url}/v1/models", headers=auth, timeout=120).status_code == 200
        assert httpx.get(f"{url}/v1/models").status_code == 401
        aipower.config.reply_events = 4000
        aipower.config.chunk_delay = 0.05  # far longer than the grace period
        body = {"model": "gpt-4o-mini", "messages": HELLO, "stream": True}
        with contextlib.ExitStack() as stack:
            streams = [
                stack.enter_context(
                    httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers=auth, timeout=120)
                )
                for _ in range(3)
            ]
            lines = [s.iter_lines() for s in streams]
            for each in lines:
                assert next(line for line in each if line.startswith("data: "))
            process.send_signal(signal.SIGTERM)
            for response, each in zip(streams, lines, strict=True):
                rest = [line[6:] for line in each if line.startswith("data: ")]
                assert rest[-1] == "[DONE]", "the stream ends with [DONE]"
                assert json.loads(rest[-2])["error"]["message"].startswith("The server is shutting down"), rest[-2]
                assert response.status_code == 200
        assert process.wait(60) == 0
        log = process.stderr.read()
        assert "Traceback" not in log and "Exception in ASGI" not in log and "scraper serve: stopped" in log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_streamed_reply_still_works_through_the_checks(aipower):
    with serving() as served:
        body = {"model": "gpt-4o-mini", "messages": HELLO, "stream": True}
        with httpx.stream("POST", f"{served.url}/v1/chat/completions", json=body) as response:
            data = events_of(response)
        assert data[-1] == "[DONE]"
        text = "".join(json.loads(d)["choices"][0]["delta"].get("content") or "" for d in data[:-1])
        assert text == REPLY


def test_the_load_benchmark_prints_percentiles_queue_wait_and_throughput():
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.serve", "--clients", "3", "--requests", "1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| figure | p50 | p95 | p99 |" in result.stdout and "waiting for a slot" in result.stdout
    assert "succeeded 3/3, failed 0" in result.stdout and "chats/s" in result.stdout and "PSS" in result.stdout
