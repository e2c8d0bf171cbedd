"""Two ``scraper serve`` processes sharing one Redis (``SCRAPER_STATE``), as behind a load balancer: a
conversation whose turns alternate between them stays one site conversation; an anti-bot check cleared by
one is not met again by the other; a Redis that goes away gives typed 503s, and both recover when it is
back. The Redis has a password, which no log line and no /health answer shows."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from scraper.replica import ReplicaSite
from tests._support import RedisServer, chats, echo, redis_server_or_skip
from tests.e2e.test_conversations import check_native, check_turn
from tests.e2e.test_serve import serve_process, served_url

PASSWORD = "redis-pass-7f3a9c"


@dataclass
class Pair:
    """Two servers on one Redis; ``logs`` holds what each wrote once they stopped."""

    urls: list[str]
    logs: list[str] = field(default_factory=list)

    def chat(self, n: int, messages: list[dict[str, str]]) -> str:
        client = OpenAI(base_url=f"{self.urls[n]}/v1", api_key="unused", max_retries=0)
        return client.chat.completions.create(model="blog", messages=messages).choices[0].message.content or ""

    def health(self, n: int) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.urls[n]}/health", timeout=30) as response:
            return dict(json.loads(response.read()))


@contextlib.contextmanager
def two_servers(redis: RedisServer, site: ReplicaSite, tmp_path: Path) -> Iterator[Pair]:
    """Two ``scraper serve`` processes offering ``site`` as model ``blog``, their state in ``redis`` (each
    with a folder of its own for what is not shared), stopped with SIGTERM at the end."""
    processes: list[subprocess.Popen] = []
    pair = Pair([])
    try:
        for n in range(2):
            own = {
                "SCRAPER_STATE": redis.url,
                "SCRAPER_PROFILE_DIR": str(tmp_path / f"profiles-{n}"),
                "XDG_DATA_HOME": str(tmp_path / f"data-{n}"),
            }
            processes.append(serve_process("--site", f"blog={site.url}", "-v", env=own))
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
