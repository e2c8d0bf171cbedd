"""A pool of three ``python -m playwright run-server`` processes behind one server (the pool names this
machine's Chromium to them): chats spread over them with each site kept on one browser; a browser killed
mid-run loses no chat that had not started its reply (the rest go on), and rejoins once it is back on its
port; ``POST /admin/browsers`` changes the pool. The Python clients chat over a pool of ``scraper
browser-server`` processes the same way."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from scraper import AsyncClient, Client
from scraper.browser import BrowserPool, find_browser
from scraper.cassettes.pytest_plugin import run_in_own_loop
from scraper.client._service import PooledChatService
from scraper.replica import ReplicaSite
from tests._support import (
    browser_server,
    chats,
    echo,
    free_port,
    marked_chromium_pids,
    playwright_server,
    wait_until,
)
from tests.e2e.test_serve import serving

SITES = 6
LONG = 40  # pieces of a reply that is still streaming when its browser is killed


@pytest.fixture
def sites() -> Iterator[list[ReplicaSite]]:
    with contextlib.ExitStack() as stack:
        made = [stack.enter_context(ReplicaSite("aipower")) for _ in range(SITES)]
        for site in made:
            site.config.chunk_delay = 0.005
        yield made


def ask(url: str, model: str, message: str, started: threading.Event | None = None) -> tuple[str, str | None]:
    """One streamed chat: its text, and the error code its stream ended with (None: it finished)."""
    body = {"model": model, "messages": [{"role": "user", "content": message}], "stream": True}
    text, error = "", None
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=180) as response:
        if response.status_code != 200:
            return "", json.loads(response.read())["error"]["code"]
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[len("data: ") :])
            if "error" in event:
                error = event["error"]["code"]
                continue
            text += event["choices"][0]["delta"].get("content") or ""
            if text and started is not None:
                started.set()
    return text, error


def test_a_pool_of_three_browsers_spreads_sites_survives_a_lost_browser_and_takes_it_back(sites, tmp_path):
    ports = [free_port() for _ in range(3)]
    marker = {"SCRAPER_TEST_RUN": f"pool-{tmp_path.name}"}  # the Chromiums the browser servers launch
    with contextlib.ExitStack() as stack:
        stack.callback(end_marked, marker["SCRAPER_TEST_RUN"])
        servers = [stack.enter_context(playwright_server(port, "/pool", marker)) for port in ports]
        endpoints = [endpoint for _, endpoint in servers]
        models = {f"s{n}": site.url for n, site in enumerate(sites)}
        pool = BrowserPool(endpoints, {"executable_path": find_browser().path})
        served = stack.enter_context(serving(PooledChatService(pool), sites=models))
        url = served.url

        # 12 chats, two per site, at once: every reply exact, each site on one browser (one page load).
        questions = [(f"s{n % SITES}", f"first {n}") for n in range(2 * SITES)]
        with ThreadPoolExecutor(len(questions)) as workers:
            answers = list(workers.map(lambda q: ask(url, *q), questions))
        assert answers == [(echo(message), None) for _, message in questions]
        assert [site.stats.page_loads for site in sites] == [1] * SITES, "a site's chats stay on one browser"
        holders = {n: [m for m in pool if any(key.startswith(s.url) for key in m.sites)] for n, s in enumerate(sites)}
        assert all(len(held) == 1 for held in holders.values()), holders
        assert all(member.sites for member in pool), "new sites went to the least loaded browsers"

        # A browser dies while replies stream: its started chats end with the typed error, every other
        # chat (on the other browsers, or not started yet) is answered exactly.
        victim = holders[0][0]
        victim_sites = {n for n, held in holders.items() if held[0] is victim}
        process = servers[endpoints.index(victim.url)][0]
        for site in sites:
            site.config.chunk_delay = 0.05
            site.config.reply_events = LONG
        started = [threading.Event() for _ in range(SITES)]
        with ThreadPoolExecutor(2 * SITES + 1) as workers:
            streaming = [workers.submit(ask, url, f"s{n}", f"during {n}", started[n]) for n in range(SITES)]
            assert all(event.wait(120) for event in started), "every reply started"
            # One more chat on the doomed browser, whose site holds back its first chunk: it is sent,
            # and has said nothing when its browser dies.
            held = sites[0]
            held.config.reply_events, held.config.first_delay = None, 3.0
            asked = len(chats(held))
            holding = workers.submit(ask, url, "s0", "held back")
            assert wait_until(lambda: len(chats(held)) > asked, 60), "the held chat reached its site"
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)
            for site in sites:
                site.config.chunk_delay, site.config.reply_events, site.config.first_delay = 0.005, None, 0.0
            after = [workers.submit(ask, url, f"s{n}", f"after {n}") for n in range(SITES)]
            during = [future.result() for future in streaming]
            late = [future.result() for future in after]
            assert holding.result() == (echo("held back"), None), "a chat that had said nothing starts again"
        assert late == [(echo(f"after {n}"), None) for n in range(SITES)], "no chat that had not started is lost"
        whole = "".join(f"w{i} " for i in range(LONG))
        for n, (text, error) in enumerate(during):
            if n in victim_sites:
                assert error is not None and error.startswith("Browser"), (n, text, error)
                assert whole.startswith(text) and text != whole, "what was sent was the reply's start"
            else:
                assert (text, error) == (whole, None)
        assert not victim.up and pool.up == 2
        down = next(b for b in served.health()["browsers"] if b["browser"] == victim.where)
        assert not down["up"] and down["last_error"] and "/pool" not in json.dumps(down)

        # Back on its port, it rejoins; every chat is still exact.
        back = endpoints.index(victim.url)
        servers[back] = stack.enter_context(playwright_server(ports[back], "/pool", marker))
        assert wait_until(lambda: pool.up == 3, 120), "the browser rejoined"
        assert pool.rejoined == 1 and all(b["up"] for b in served.health()["browsers"])
        assert "scraper_browsers_up 3" in httpx.get(f"{url}/metrics", timeout=60).text
        with ThreadPoolExecutor(SITES) as workers:
            last = list(workers.map(lambda n: ask(url, f"s{n}", f"again {n}"), range(SITES)))
        assert last == [(echo(f"again {n}"), None) for n in range(SITES)]

        # The pool is changed without a restart: one browser leaves, then comes back.
        changed = httpx.post(f"{url}/admin/browsers", json={"browsers": endpoints[:2]}, timeout=60)
        assert changed.status_code == 200, changed.text
        assert len(served.health()["browsers"]) == 2 and len(pool) == 2
        answer = ask(url, "s0", "two left")
        assert answer == (echo("two left"), None)
        changed = httpx.post(f"{url}/admin/browsers", json={"browsers": endpoints}, timeout=60)
        assert [b["browser"] for b in changed.json()["browsers"]] == [f"ws://127.0.0.1:{port}" for port in ports]
        refused = httpx.post(f"{url}/admin/browsers", json={"browsers": ["nowhere"]}, timeout=60)
        assert refused.status_code == 400 and len(pool) == 3


def end_marked(marker: str) -> None:
    """Kill what a killed browser server's Chromium left behind (it runs in a process group of its own)."""
    for pid in marked_chromium_pids(marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_the_python_clients_chat_over_a_pool_of_browser_servers(sites):
    with browser_server("--port", "0") as (_, one), browser_server("--port", "0") as (_, two):
        pool = BrowserPool([one, two])
        models = {"a": sites[0].url, "b": sites[1].url}
        try:
            client = Client(sites=models, browser=pool)
            assert isinstance(client.service, PooledChatService) and client.service.pool is pool
            for n, model in enumerate("abab"):
                reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": f"m{n}"}])
                assert reply.choices[0].message.content == echo(f"m{n}")
            with client.chat.completions.create(
                model="a", messages=[{"role": "user", "content": "streamed"}], stream=True
            ) as stream:
                assert "".join(chunk.choices[0].delta.content or "" for chunk in stream) == echo("streamed")
            held = [[s for s in sites[:2] if any(key.startswith(s.url) for key in m.sites)] for m in pool]
            assert sorted(len(h) for h in held) == [1, 1] and held[0] != held[1], "each browser has one site"
            assert [site.stats.page_loads for site in sites[:2]] == [1, 1]
        finally:
            pool.close()

        async def chat_async() -> list[str | None]:
            async with AsyncClient(sites=models, browser=[one, two]) as client:  # URLs: a pool of its own
                assert isinstance(client.service, PooledChatService) and len(client.service.pool) == 2
                replies = await asyncio.gather(
                    *(
                        client.chat.completions.create(model=m, messages=[{"role": "user", "content": f"x{m}"}])
                        for m in "ab"
                    )
                )
                assert all(member.sites for member in client.service.pool), "both browsers were used"
            assert len(client.service.pool) == 0, "closing the client closed the pool it made"
            return [r.choices[0].message.content for r in replies]

        assert run_in_own_loop(chat_async()) == [echo("xa"), echo("xb")]
