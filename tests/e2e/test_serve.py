"""``scraper serve`` against replica sites in real Chromium, through OpenAI's own SDK, LangChain and raw HTTP;
``scraper chat`` through a running server; the in-process ``Client`` / ``AsyncClient`` façade.

The server runs on a free 127.0.0.1 port in a thread of the test process (the replica sites and the
server's counters are at hand), or as a ``scraper serve`` process where its life as a program is tested.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from langchain_openai import ChatOpenAI
from openai import OpenAI

from scraper import AsyncClient, ChatgptFree, ChatService, Client, ModelNotSupportedError
from scraper.replica import ReplicaSite
from scraper.serve import ServeConfig, ServerState, bind, create_app
from tests._support import cli, echo, raw_request, wait_for, wait_until

ROOT = Path(__file__).resolve().parents[2]
MESSAGE = "Привет, как дела?"
HELLO = [{"role": "user", "content": MESSAGE}]
REPLY = echo("Привет, как дела?")


@dataclass
class Served:
    """A server running in a thread of this process."""

    url: str
    state: ServerState

    def client(self, api_key: str = "unused") -> OpenAI:
        return OpenAI(base_url=f"{self.url}/v1", api_key=api_key, max_retries=0)

    def health(self, api_key: str | None = None) -> dict[str, Any] | None:
        request = urllib.request.Request(f"{self.url}/health")
        if api_key:
            request.add_header("Authorization", f"Bearer {api_key}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except OSError:
            return None


@contextlib.contextmanager
def serving(service: ChatService | None = None, **settings: Any) -> Iterator[Served]:
    """The app on a free loopback port, served by uvicorn in a thread; ready once /health answers. ``service``
    is the chat service to use instead of the one the settings make."""
    sock = bind("127.0.0.1", 0)
    app = create_app(ServeConfig(port=sock.getsockname()[1], **settings), service)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=10))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    served = Served(f"http://127.0.0.1:{sock.getsockname()[1]}", app.state.scraper)
    try:
        assert wait_until(lambda: served.health() is not None, 30), "the server never answered /health"
        yield served
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@pytest.fixture
def server(aipower: ReplicaSite, aiengine: ReplicaSite) -> Iterator[Served]:
    """A server whose presets point at the replica sites, with the AI Power replica also as site `blog`."""
    with serving(sites={"blog": aipower.url}) as served:
        yield served


def events_of(response: httpx.Response) -> list[str]:
    """The ``data`` of each server-sent event of a response."""
    return [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]


def stream_text(chunks: list[Any]) -> str:
    return "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)


def free_port_url() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/"


# -- answers ----------------------------------------------------------------------------------------------


def test_a_streamed_reply_is_the_exact_text_in_openai_chunks(server, aipower):
    chunks = list(server.client().chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True))
    assert stream_text(chunks) == REPLY
    assert len({chunk.id for chunk in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(chunk.choices[0].delta.role is None for chunk in chunks[1:])
    assert [chunk.choices[0].finish_reason for chunk in chunks] == [None] * (len(chunks) - 1) + ["stop"]
    assert {chunk.model for chunk in chunks} == {"gpt-4o-mini-2024-07-18"}
    assert server.state.served == 1 and wait_until(lambda: aipower.stats.streams_completed == 1)

    with httpx.stream(
        "POST", f"{server.url}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HELLO, "stream": True}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        data = events_of(response)
    assert data[-1] == "[DONE]"
    assert "".join(json.loads(d)["choices"][0]["delta"].get("content", "") for d in data[:-1]) == REPLY


def test_a_whole_reply_and_its_usage_when_the_site_reports_it(server):
    client = server.client()
    four = client.chat.completions.create(model="gpt-4", messages=HELLO)
    assert four.object == "chat.completion" and four.model == "gpt-4"
    assert four.choices[0].message.content == REPLY and four.choices[0].message.role == "assistant"
    assert four.choices[0].finish_reason == "stop"
    assert four.usage is not None and four.usage.total_tokens == four.usage.prompt_tokens + four.usage.completion_tokens
    assert four.usage.completion_tokens > 0
    mini = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert mini.choices[0].message.content == REPLY and mini.usage is None, "AI Power's stream has no usage"
    streamed = list(client.chat.completions.create(model="gpt-4", messages=HELLO, stream=True))
    assert streamed[-1].usage is not None and streamed[-1].usage.total_tokens == four.usage.total_tokens


def test_models_are_the_presets_the_sites_and_their_bots(aipower, aiengine):
    with serving(sites={"blog": aipower.url, "gone": free_port_url()}) as served:
        client = served.client()
        models = {model.id: model.owned_by for model in client.models.list()}
        assert models == {
            "gpt-4o-mini-2024-07-18": "chatgptfree",
            "gpt-4o-mini": "chatgptfree",
            "gpt-4": "chatgpt4online",
            "blog": "blog",
            "blog/shortcode": "blog",
            "gone": "gone",  # its page cannot be read: listed by name alone
        }
        for model in ("blog", "blog/shortcode"):
            reply = client.chat.completions.create(model=model, messages=HELLO)
            assert reply.choices[0].message.content == REPLY and reply.model == model


def test_several_chats_at_once_each_get_their_own_reply(server, aipower):
    messages = [f"Вопрос {i} 🙂" for i in range(6)]
    client = server.client()

    def ask(message: str) -> str:
        return stream_text(
            list(
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": message}], stream=True
                )
            )
        )

    with ThreadPoolExecutor(len(messages)) as pool:
        replies = list(pool.map(ask, messages))
    assert replies == [echo(message) for message in messages]
    assert server.state.served == len(messages)
    assert wait_until(lambda: aipower.stats.streams_completed == len(messages))


def test_langchain_streams_through_the_server(server):
    chat = ChatOpenAI(base_url=f"{server.url}/v1", api_key="unused", model="gpt-4o-mini", max_retries=0)
    assert "".join(str(chunk.content) for chunk in chat.stream(MESSAGE)) == REPLY


def test_the_readme_example_works_as_written(server):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## `scraper serve`") :]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(snippet.strip().splitlines()) == 3 and "http://127.0.0.1:1337/v1" in snippet
    result = subprocess.run(
        [sys.executable, "-c", snippet.replace("http://127.0.0.1:1337", server.url)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == REPLY + "\n"


def test_health_shows_the_browser_the_warm_sites_and_the_chats(server, aipower):
    server.client().chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert wait_until(lambda: server.health()["chats"]["in_flight"] == 0), "the slot is given back after the end"
    health = server.health()
    assert health["status"] == "ok" and health["service"] == "scraper"
    assert health["browser"]["connected"] is True and health["browser"]["version"]
    [site] = [site for site in health["sites"] if site["page_url"] == ChatgptFree.page_url()]
    assert site["lanes"][0]["loaded"] is True and site["lanes"][0]["page_loads"] == 1 and site["busy"] == 0
    assert health["chats"] == {"in_flight": 0, "waiting": 0, "served": 1, "failed": 0, "max_concurrency": 16}


# -- errors -----------------------------------------------------------------------------------------------


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert "Traceback" not in response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code"} and error["message"]
    return error


def test_malformed_requests_are_400(server):
    url = f"{server.url}/v1/chat/completions"
    bad_json = httpx.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert bad_json.status_code == 400 and error_of(bad_json)["code"] == "ConfigError"
    too_big = httpx.post(url, content=b"x" * (ServeConfig.max_body + 1), headers={"content-type": "application/json"})
    assert too_big.status_code == 400 and "larger than" in error_of(too_big)["message"]
    with pytest.raises(openai.BadRequestError, match="messages") as info:
        server.client().chat.completions.create(model="gpt-4o-mini", messages=[])
    assert info.value.status_code == 400 and info.value.code == "ConfigError"
    assert server.state.served == 0


def test_an_unknown_model_or_path_is_404(server):
    with pytest.raises(openai.NotFoundError, match="No model 'gpt-5'") as info:
        server.client().chat.completions.create(model="gpt-5", messages=HELLO)
    assert info.value.code == "ModelNotSupportedError" and info.value.type == "invalid_request_error"
    nowhere = httpx.get(f"{server.url}/v1/nowhere")
    assert nowhere.status_code == 404 and error_of(nowhere)["type"] == "invalid_request_error"


def test_a_site_error_is_502(server, aipower, aiengine):
    aiengine.config.failure = "upstream_error"  # the plugin reports it before any text
    aipower.config.failure = "error_object"  # some text, then the plugin's error
    client = server.client()
    with pytest.raises(openai.InternalServerError) as whole:
        client.chat.completions.create(model="gpt-4", messages=HELLO)
    with pytest.raises(openai.InternalServerError) as streamed:
        list(client.chat.completions.create(model="gpt-4", messages=HELLO, stream=True))
    with pytest.raises(openai.InternalServerError) as collected:
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    for info in (whole, streamed, collected):
        assert info.value.status_code == 502 and info.value.code == "SiteError"
        assert "Lab forced upstream error" in info.value.message or "API key" in info.value.message
    assert server.state.failed == 3


def test_a_stream_cut_after_text_ends_with_an_error_not_a_finish(server, aipower):
    aipower.config.failure = "cut_stream"
    received: list[Any] = []
    with pytest.raises(openai.APIError, match="the stream was cut") as info:
        for chunk in server.client().chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True):
            received.append(chunk)
    assert stream_text(received) and REPLY.startswith(stream_text(received)) and stream_text(received) != REPLY
    assert all(chunk.choices[0].finish_reason is None for chunk in received), "never a normal finish"
    assert info.value.body["code"] == "StreamError"

    body = {"model": "gpt-4o-mini", "messages": HELLO, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body) as response:
        data = events_of(response)
    assert response.status_code == 200 and data[-1] == "[DONE]"
    assert json.loads(data[-2])["error"]["code"] == "StreamError" and json.loads(data[-2])["error"]["type"]


def test_a_check_that_does_not_clear_is_503(server, aipower):
    aipower.config.antibot = "js_challenge_never"
    with pytest.raises(openai.InternalServerError, match="did not clear") as info:
        server.client().chat.completions.create(model="gpt-4o-mini", messages=HELLO, extra_body={"timeout": 2})
    assert info.value.status_code == 503 and info.value.code == "ChallengeError"


def test_a_site_that_does_not_answer_is_504(server, aipower):
    aipower.config.failure = "stall"
    with pytest.raises(openai.APIStatusError) as info:
        list(
            server.client().chat.completions.create(
                model="gpt-4o-mini", messages=HELLO, stream=True, extra_body={"timeout": 1}
            )
        )
    assert info.value.status_code == 504 and info.value.code == "ScraperTimeoutError"


def test_the_api_key_is_checked(aipower):
    with serving(api_key="sesame") as served:
        for key in ("unused", "sesame-not"):
            with pytest.raises(openai.AuthenticationError) as info:
                served.client(key).chat.completions.create(model="gpt-4o-mini", messages=HELLO)
            assert info.value.status_code == 401 and info.value.code == "AuthenticationError"
        with pytest.raises(openai.AuthenticationError):
            served.client().models.list()
        reply = served.client("sesame").chat.completions.create(model="gpt-4o-mini", messages=HELLO)
        assert reply.choices[0].message.content == REPLY
        assert "chats" not in served.health(), "only that it is up, without the key"
        assert served.health("sesame")["chats"]["served"] == 1


def test_serving_beyond_loopback_without_a_key_is_refused():
    result = subprocess.run(
        [sys.executable, "-m", "scraper", "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert "Refusing to listen on 0.0.0.0 without an API key" in result.stderr
    assert "--api-key" in result.stderr and "--insecure" in result.stderr and "Traceback" not in result.stderr


# -- leaving, waiting, stopping ---------------------------------------------------------------------------


def raw_chat(url: str, body: dict[str, Any]) -> socket.socket:
    """A chat request sent on a bare socket, whose answer nobody reads: closing it is the client leaving."""
    sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    payload = json.dumps(body).encode()
    sock.sendall(raw_request("POST", "/v1/chat/completions", payload, {"Content-Type": "application/json"}))
    return sock


def test_a_client_that_leaves_mid_stream_cancels_the_chat(server, aipower):
    aipower.config.reply_events = 400
    aipower.config.chunk_delay = 0.05  # 20 s of reply
    body = {"model": "gpt-4o-mini", "messages": HELLO, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body) as response:
        first = next(line for line in response.iter_lines() if line.startswith("data: "))
        assert json.loads(first[6:])["choices"][0]["delta"]["content"] == "w0 "
        assert server.state.slots.in_flight == 1
    assert wait_until(lambda: aipower.stats.streams_aborted == 1), "the site saw its stream aborted"
    assert aipower.stats.active_streams == 0 and aipower.stats.streams_completed == 0
    assert wait_until(lambda: server.health()["chats"]["in_flight"] == 0), "the slot is free again"


def test_a_client_that_leaves_before_any_text_cancels_the_chat(server, aipower):
    aipower.config.first_delay = 3600  # headers, then silence
    sock = raw_chat(server.url, {"model": "gpt-4o-mini", "messages": HELLO, "stream": True})
    assert wait_until(lambda: aipower.stats.active_streams == 1, 60)
    sock.close()
    assert wait_until(lambda: aipower.stats.streams_aborted == 1)
    assert wait_until(lambda: server.state.slots.in_flight == 0)
    aipower.config.first_delay = 0
    reply = server.client().chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert reply.choices[0].message.content == REPLY, "the next chat works"


def test_over_the_bound_a_request_waits_for_a_slot_then_gets_429(aipower):
    with serving(max_concurrency=1, queue_timeout=0.3) as served:
        aipower.config.first_delay = 3600
        holder = raw_chat(served.url, {"model": "gpt-4o-mini", "messages": HELLO, "stream": True})
        assert wait_until(lambda: aipower.stats.active_streams == 1, 60)
        with pytest.raises(openai.RateLimitError, match="--max-concurrency") as info:
            served.client().chat.completions.create(model="gpt-4o-mini", messages=HELLO)
        assert info.value.status_code == 429 and info.value.code == "BusyError"
        holder.close()
        assert wait_until(lambda: served.state.slots.in_flight == 0)
        aipower.config.first_delay = 0
        reply = served.client().chat.completions.create(model="gpt-4o-mini", messages=HELLO)
        assert reply.choices[0].message.content == REPLY


def test_a_request_beyond_the_bound_is_served_when_a_slot_frees(aipower):
    with serving(max_concurrency=1, queue_timeout=60) as served:
        aipower.config.first_delay = 3600
        holder = raw_chat(served.url, {"model": "gpt-4o-mini", "messages": HELLO, "stream": True})
        assert wait_until(lambda: aipower.stats.active_streams == 1, 60)
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(
                served.client().chat.completions.create,
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "B"}],
            )
            assert wait_until(lambda: served.state.slots.waiting == 1)
            aipower.config.first_delay = 0
            holder.close()
            assert waiting.result(60).choices[0].message.content == echo("B")


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``."""
    rows = subprocess.run(["ps", "-eo", "pid=,ppid=,stat="], capture_output=True, text=True).stdout.split("\n")
    children: dict[int, list[int]] = {}
    for row in filter(None, (r.split() for r in rows)):
        if "Z" not in row[2]:
            children.setdefault(int(row[1]), []).append(int(row[0]))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    out = subprocess.run(["ps", "-eo", "pid=,stat="], capture_output=True, text=True).stdout
    return {int(pid) for pid, stat in (line.split() for line in out.splitlines()) if "Z" not in stat} & pids


def served_url(process: subprocess.Popen) -> str:
    """The address a ``scraper serve --port 0`` process says it listens on (its first words on stderr)."""
    for line in process.stderr:
        found = re.search(r"(http://127\.0\.0\.1:\d+)/v1", line)
        if found:
            return found.group(1)
    raise AssertionError(f"scraper serve ended without saying where it listens (exit {process.wait()})")


def serve_process(*flags: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``scraper serve --port 0`` as a program of its own (read where it listens with :func:`served_url`)."""
    return subprocess.Popen(
        [sys.executable, "-m", "scraper", "serve", "--port", "0", *flags],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONIOENCODING": "utf-8", **(env or {})},
    )


def test_sigterm_ends_streams_closes_chromium_and_leaves_no_process(aipower):
    process = serve_process()
    try:
        url = served_url(process)
        client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        assert client.chat.completions.create(model="gpt-4o-mini", messages=HELLO).choices[0].message.content == REPLY
        aipower.config.reply_events = 2000
        aipower.config.chunk_delay = 0.05  # far longer than the grace period
        with httpx.stream(
            "POST", f"{url}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HELLO, "stream": True}
        ) as response:
            assert next(response.iter_lines()).startswith("data: ")
            below = descendants(process.pid)
            assert below, "Chromium runs below the server"
            process.send_signal(signal.SIGTERM)
            assert process.wait(60) == 0
        assert wait_until(lambda: not alive(below)), "a process outlived the server"
        assert wait_until(lambda: aipower.stats.streams_aborted == 1), "the open stream was cancelled"
        rest = process.stderr.read()
        assert "scraper serve: stopped" in rest and "Traceback" not in rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# -- scraper chat through a running server ----------------------------------------------------------------


def chat_via(server_url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``scraper chat ARGS`` with a running server at ``server_url``."""
    return cli("chat", *args, env={"SCRAPER_SERVER": server_url, **(env or {})})


def test_scraper_chat_goes_through_a_running_server(server, aipower):
    result = chat_via(server.url, MESSAGE)
    assert result.returncode == 0, result.stderr
    assert result.stdout == REPLY + "\n"
    assert "through the scraper server" in result.stderr
    assert server.state.served == 1 and wait_until(lambda: aipower.stats.streams_completed == 1)

    result = chat_via(server.url, "--plugin", "aipower", "--url", aipower.url, MESSAGE)
    assert (result.returncode, result.stdout) == (0, REPLY + "\n")
    assert server.state.served == 2

    local = chat_via(server.url, "--no-server", MESSAGE)
    assert (local.returncode, local.stdout) == (0, REPLY + "\n")
    assert "loading" in local.stderr and "through the scraper server" not in local.stderr
    assert server.state.served == 2, "--no-server chats in a browser of its own"
    assert wait_until(lambda: aipower.stats.streams_completed == 3)


def test_the_command_lines_environment_decides_the_site(server, aipower):
    with ReplicaSite("aipower") as other:
        result = chat_via(server.url, MESSAGE, env={"SCRAPER_CHATGPTFREE_URL": other.url})
        assert (result.returncode, result.stdout) == (0, REPLY + "\n")
        assert wait_until(lambda: other.stats.streams_completed == 1) and aipower.stats.chat_requests == 0
    assert server.state.served == 1


def test_errors_through_the_server_print_as_without_it(server, aipower):
    def error_lines(result: subprocess.CompletedProcess) -> list[str]:
        assert result.returncode == 1 and result.stdout == ""
        return [line for line in result.stderr.splitlines() if line.startswith("scraper: error:")]

    through = error_lines(chat_via(server.url, "--model", "gpt-5", MESSAGE))
    assert through == error_lines(chat_via(server.url, "--no-server", "--model", "gpt-5", MESSAGE))
    assert through == [
        "scraper: error: ModelNotSupportedError: ChatgptFree does not offer model 'gpt-5'; it offers: "
        "gpt-4o-mini-2024-07-18, gpt-4o-mini."
    ]
    aipower.config.failure = "token_limit"
    [line] = error_lines(chat_via(server.url, MESSAGE))
    assert line.startswith("scraper: error: SiteError: ")
    assert server.state.failed == 1, "one chat failed (an unknown model never becomes a chat)"


# -- the façade -------------------------------------------------------------------------------------------


def test_client_answers_whole_and_streamed(aipower, aiengine):
    client = Client(sites={"blog": aipower.url})
    reply = client.chat.completions.create(model="gpt-4", messages=HELLO)
    assert reply.choices[0].message.content == REPLY and reply.model == "gpt-4" and reply.object == "chat.completion"
    assert reply.usage is not None and reply.usage.total_tokens > 0
    with client.chat.completions.create(model="blog", messages=HELLO, stream=True) as stream:
        chunks = list(stream)
    assert stream_text(chunks) == REPLY and chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[0].choices[0].delta.role == "assistant" and len({chunk.id for chunk in chunks}) == 1
    with pytest.raises(ModelNotSupportedError):
        client.chat.completions.create(model="gpt-5", messages=HELLO)


def test_closing_a_client_stream_early_aborts_the_chat(aipower):
    """Closed at once, not when the garbage collector finds the generators it stopped reading."""
    aipower.config.reply_events = 400
    aipower.config.chunk_delay = 0.05
    gc.disable()
    try:
        with Client().chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True) as stream:
            assert next(stream).choices[0].delta.content == "w0 "
        assert wait_until(lambda: aipower.stats.streams_aborted == 1)
    finally:
        gc.enable()


async def test_async_client_answers_whole_and_streamed(aipower, aiengine):
    client = AsyncClient()
    reply = await client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert reply.choices[0].message.content == REPLY and reply.usage is None
    stream = await client.chat.completions.create(
        messages=HELLO, stream=True, site={"url": aiengine.url, "plugins": ["aiengine"]}
    )
    async with stream:
        chunks = [chunk async for chunk in stream]
    assert stream_text(chunks) == REPLY and chunks[-1].usage is not None
    assert chunks[0].model == "default"
    assert await wait_for(lambda: aiengine.stats.streams_completed == 1)


# -- the benchmark ----------------------------------------------------------------------------------------


def test_the_serve_benchmark_measures_every_figure(tmp_path):
    samples_path = tmp_path / "serve.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.serve", "--runs", "1", "--json", str(samples_path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert result.returncode == 0, result.stderr
    samples = json.loads(samples_path.read_text())
    assert list(samples) == [
        "warm: through scraper serve, raw HTTP",
        "warm: through scraper serve, OpenAI SDK",
        "warm: Python API in process",
        "scraper chat: cold (--no-server)",
        "scraper chat: through a warm server",
    ]
    for name, values in samples.items():
        assert len(values) == 1 and all(value > 0 for value in values), name
        assert f"| {name} | " in result.stdout
