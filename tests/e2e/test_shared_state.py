"""Two ``scraper serve`` processes sharing one Redis (``SCRAPER_STATE``), as behind a load balancer: a
conversation whose turns alternate between them stays one site conversation; an anti-bot check cleared by
one is not met again by the other; a Redis that goes away gives typed 503s, and both recover when it is
back. The Redis has a password, which no log line and no /health answer shows."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from scraper.replica import ReplicaSite
from tests._support import RedisServer, chats, echo, marked_chromium_pids, redis_server_or_skip, wait_until
from tests.e2e.test_conversations import check_native, check_turn, request_log
from tests.e2e.test_serve import descendants, serve_process, served_url

PASSWORD = "redis-pass-7f3a9c"


@dataclass
class Pair:
    """Two servers on one Redis; ``logs`` holds what each wrote once they stopped."""

    urls: list[str]
    logs: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen] = field(default_factory=list)

    def chat(self, n: int, messages: list[dict[str, str]]) -> str:
        client = OpenAI(base_url=f"{self.urls[n]}/v1", api_key="unused", max_retries=0)
        return client.chat.completions.create(model="blog", messages=messages).choices[0].message.content or ""

    def health(self, n: int) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.urls[n]}/health", timeout=30) as response:
            return dict(json.loads(response.read()))

    def post(self, n: int, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.urls[n]}{path}", json=body, timeout=120)

    def respond(self, n: int, message: str, previous: str | None = None) -> httpx.Response:
        """One ``/v1/responses`` turn on server ``n`` (going on from ``previous``)."""
        return self.post(n, "/v1/responses", {"model": "blog", "input": message, "previous_response_id": previous})


@contextlib.contextmanager
def two_servers(
    redis: RedisServer, site: ReplicaSite, tmp_path: Path, *flags: str, env: dict[str, str] | None = None
) -> Iterator[Pair]:
    """Two ``scraper serve`` processes offering ``site`` as model ``blog``, their state in ``redis`` (each
    with a folder of its own for what is not shared), stopped with SIGTERM at the end; ``flags`` and
    ``env`` go to both. ``pair.processes`` are the programs."""
    processes: list[subprocess.Popen] = []
    pair = Pair([], processes=processes)
    try:
        for n in range(2):
            own = {
                **(env or {}),
                "SCRAPER_STATE": redis.url,
                "SCRAPER_PROFILE_DIR": str(tmp_path / f"profiles-{n}"),
                "XDG_DATA_HOME": str(tmp_path / f"data-{n}"),
            }
            processes.append(serve_process("--site", f"blog={site.url}", "-v", *flags, env=own))
            pair.urls.append(served_url(processes[-1]))
        yield pair
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            pair.logs.append(process.stderr.read() if process.stderr else "")


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server_or_skip(PASSWORD) as server:
        yield server


@pytest.mark.parametrize("plugin", ["aipkit", "aiengine", "mxchat"])
def test_turns_alternating_between_two_servers_stay_one_site_conversation(plugin, redis, tmp_path):
    with ReplicaSite(plugin) as site:
        site.config.chunk_delay = 0.002
        messages: list[dict[str, str]] = []
        with two_servers(redis, site, tmp_path) as pair:
            for k in range(1, 5):
                message = f"turn {k} on server {(k - 1) % 2}"
                messages.append({"role": "user", "content": message})
                text = pair.chat((k - 1) % 2, messages)
                check_turn(site, k, message, text)  # the model saw every earlier turn, natively
                messages.append({"role": "assistant", "content": text})
        check_native(site, messages[:-1])  # one site conversation (ids, chatId, session) all along
    for log in pair.logs:
        assert "Traceback" not in log and PASSWORD not in log


def test_a_check_cleared_by_one_server_is_not_met_by_the_other(redis, tmp_path):
    with ReplicaSite("aipower") as site:
        site.config.antibot = "js_challenge"
        site.config.challenge_delay = 0.3
        with two_servers(redis, site, tmp_path) as pair:
            hello = [{"role": "user", "content": "hello"}]
            assert pair.chat(0, hello) == echo("hello")
            served, issued = site.stats.challenges_served, site.stats.clearances_issued
            assert served >= 1 and issued == 1, "the first server met the check and cleared it"
            assert pair.chat(1, hello) == echo("hello")
            assert site.stats.challenges_served == served, "the second server used the shared clearance"
            assert site.stats.clearances_issued == issued
            clearance = site.clearance_for(chats(site)[-1].headers["user-agent"])
            assert clearance not in json.dumps(pair.health(1))
    for log in pair.logs:
        assert PASSWORD not in log and clearance not in log


def test_a_redis_that_goes_away_gives_typed_503s_and_both_servers_recover(redis, tmp_path):
    with ReplicaSite("aipkit") as site, two_servers(redis, site, tmp_path) as pair:
        first = [{"role": "user", "content": "one"}]
        answer = {"role": "assistant", "content": pair.chat(0, first)}
        assert answer["content"] == echo("one")
        health = pair.health(0)
        assert health["state"]["up"] is True and PASSWORD not in json.dumps(health)
        assert health["state"]["url"].endswith(f"127.0.0.1:{redis.port}/0")

        redis.stop()
        chats = len(site.stats.model_inputs)
        for n in (0, 1):
            for messages in (first, [*first, answer, {"role": "user", "content": "two"}]):
                reply = httpx.post(
                    f"{pair.urls[n]}/v1/chat/completions", json={"model": "blog", "messages": messages}, timeout=60
                )
                assert reply.status_code == 503, reply.text
                error = reply.json()["error"]
                assert error["type"] == "server_error" and error["code"] == "StateUnavailableError"
                assert PASSWORD not in reply.text and "does not answer" in error["message"]
            assert pair.health(n)["state"]["up"] is False
        assert len(site.stats.model_inputs) == chats, "nothing reached the site while the state was away"

        redis.start()  # back on the same port, empty: each server connects again by itself
        for n in (0, 1):
            assert pair.health(n)["state"]["up"] is True
            assert pair.chat(n, [{"role": "user", "content": f"back {n}"}]) == echo(f"back {n}")
    for log in pair.logs:
        assert PASSWORD not in log and "Traceback" not in log


def test_a_site_rate_is_one_budget_for_both_servers(redis, tmp_path):
    with ReplicaSite("aipower") as site, ReplicaSite("aipower") as other:
        flags = ("--site", f"other={other.url}", "--site-rate", "3", "--queue-timeout", "1")
        with two_servers(redis, site, tmp_path, *flags) as pair:
            hello = [{"role": "user", "content": "hello"}]
            assert [pair.chat(n, hello) for n in (0, 1, 0)] == [echo("hello")] * 3
            for n in (1, 0):  # the fourth within the minute, on either server: refused before the browser
                refused = pair.post(n, "/v1/chat/completions", {"model": "blog", "messages": hello})
                assert refused.status_code == 429, refused.text
                error = refused.json()["error"]
                assert (error["type"], error["code"]) == ("rate_limit_error", "SiteBudgetError")
                assert "--site-rate" in error["message"]
                assert 1 <= int(refused.headers["retry-after"]) <= 60
            assert len(chats(site)) == 3, "the refused chats never reached the site"
            answer = pair.post(1, "/v1/chat/completions", {"model": "other", "messages": hello})
            assert answer.status_code == 200, "another site has its own budget"
            assert answer.json()["choices"][0]["message"]["content"] == echo("hello")
    for log in pair.logs:
        assert "Traceback" not in log and PASSWORD not in log


def test_a_conversations_turns_on_two_servers_run_one_after_the_other(redis, tmp_path):
    marker = f"lock-{tmp_path.name}"
    with ReplicaSite("aipkit") as site:
        site.config.chunk_delay = 0.002
        env = {"SCRAPER_LOCK_TTL": "1", "SCRAPER_TEST_RUN": marker}
        try:
            with two_servers(redis, site, tmp_path, env=env) as pair:
                first = pair.respond(0, "one")
                assert first.status_code == 200, first.text
                conversation = first.headers["x-scraper-conversation"]
                assert pair.respond(1, "warm").status_code == 200, "the second server's page is warm"

                # Two turns going on from the same response, one per server, while the first one streams.
                site.config.reply_events, site.config.chunk_delay = 150, 0.05
                before = site.stats.streams_started
                with ThreadPoolExecutor(2) as workers:
                    one = workers.submit(pair.respond, 0, "two", first.json()["id"])
                    assert wait_until(lambda: site.stats.active_streams == 1, 60), "the first turn streams"
                    other = workers.submit(pair.respond, 1, "three", first.json()["id"])
                    assert wait_until(lambda: pair.health(1)["chats"]["in_flight"] == 1, 30)
                    assert site.stats.streams_started == before + 1, "the second waits for the first to end"
                    answers = [one.result(), other.result()]
                assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
                assert site.stats.peak_streams == 1, "the turns never ran at once"
                assert {a.headers["x-scraper-conversation"] for a in answers} == {conversation}
                ids = [(r["query"]["session_id"], r["query"]["conversation_uuid"]) for r in request_log(site)]
                assert len(ids) == 4 and ids[0] == ids[2] == ids[3] != ids[1], "one site conversation"
                assert [m[-1]["content"] for m in site.stats.model_inputs[2:]] == ["two", "three"]
                assert len(site.stats.model_inputs[3]) == 2 * 3, "the third turn followed the second"

                # The server running a turn dies: its lock expires, and the next turn goes on elsewhere.
                site.config.reply_events = 2000
                dying = ThreadPoolExecutor(1)
                dying.submit(pair.respond, 0, "four", first.json()["id"])
                assert wait_until(lambda: site.stats.active_streams == 1, 60)
                lock = redis_client(redis)
                assert lock.exists(f"scraper:lock:{conversation}"), "the turn holds the conversation's lock"
                pair.processes[0].kill()
                pair.processes[0].wait(30)
                end_chromium(marker, pair.processes[1].pid)
                dying.shutdown()
                site.config.reply_events, site.config.chunk_delay = None, 0.002
                last = pair.respond(1, "five", first.json()["id"])
                assert last.status_code == 200, last.text
                assert last.json()["output"][0]["content"][0]["text"] == echo("five")
                assert last.headers["x-scraper-conversation"] == conversation
                lock.close()
        finally:
            end_chromium(marker)
    assert "Traceback" not in pair.logs[1]


def redis_client(server: RedisServer) -> Any:
    """A plain Redis client of the test's own, to look at keys."""
    import redis

    return redis.Redis.from_url(server.url, decode_responses=True)


def end_chromium(marker: str, keep_below: int | None = None) -> None:
    """Kill the Chromium processes a killed server left behind (those of ``keep_below`` stay)."""
    kept = descendants(keep_below) if keep_below is not None else set()
    for pid in marked_chromium_pids(marker) - kept:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
