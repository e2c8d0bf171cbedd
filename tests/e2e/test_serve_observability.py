"""``scraper serve``'s observability: ``/metrics`` read by Prometheus' own parser, a request id on every
response, and JSON log lines that carry it (against replica sites in real Chromium)."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from prometheus_client.parser import text_string_to_metric_families

from scraper.state import MemoryRateLimiter
from tests.e2e.test_serve import HELLO, REPLY, free_port_url, serve_process, served_url, serving


def metrics(url: str, key: str | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics``, parsed by prometheus_client, by name and labels."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    response = httpx.get(f"{url}/metrics", headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def chat(url: str, key: str | None = None, **extra: object) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    body = {"model": "gpt-4o-mini", "messages": HELLO} | extra
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=120)


def test_metrics_count_chats_by_outcome_and_plugin_and_time_the_first_chunk(aipower):
    with serving(api_key="metrics-key-5150") as served:
        assert httpx.get(f"{served.url}/metrics").status_code == 401, "behind the API key"
        foreign = httpx.get(
            f"{served.url}/metrics",
            headers={"authorization": "Bearer metrics-key-5150", "origin": "https://evil.example"},
        )
        assert foreign.status_code == 403, "behind the same checks as every route"
        before = metrics(served.url, "metrics-key-5150")
        assert before[("scraper_first_chunk_seconds_count", ())] == 0
        for stream in (False, True):
            response = chat(served.url, "metrics-key-5150", stream=stream)
            assert response.status_code == 200 and (
                stream or response.json()["choices"][0]["message"]["content"] == REPLY
            )
        nobody = {"url": free_port_url(), "plugins": ["aipower"]}
        missing = chat(served.url, "metrics-key-5150", site=nobody, model="default")
        assert missing.status_code >= 500, missing.text  # nothing listens there: the chat ran and failed
        after = metrics(served.url, "metrics-key-5150")
    served_key = ("scraper_chats_total", (("outcome", "served"), ("plugin", "aipower")))
    assert after.get(served_key, 0) - before.get(served_key, 0) == 2, after
    failed = sum(
        v for (name, labels), v in after.items() if name == "scraper_chats_total" and ("outcome", "failed") in labels
    )
    assert failed == 1, after
    assert after[("scraper_first_chunk_seconds_count", ())] == 2
    assert after[("scraper_first_chunk_seconds_bucket", (("le", "+Inf"),))] == 2
    assert after[("scraper_first_chunk_seconds_sum", ())] > 0
    assert after[("scraper_queue_wait_seconds_count", ())] == 3
    assert after[("scraper_browsers_up", ())] == 1
    assert after[("scraper_pages_open", ())] >= 1
    assert after[("scraper_chats_in_flight", ())] == 0


def test_every_response_has_a_request_id_and_a_given_one_is_kept(aipower):
    with serving() as served:
        ids = set()
        for response in (
            httpx.get(f"{served.url}/health"),
            httpx.get(f"{served.url}/health", headers={"origin": "https://evil.example"}),  # refused by the checks
            httpx.get(f"{served.url}/nowhere"),
            chat(served.url),
        ):
            ids.add(response.headers["x-request-id"])
        assert len(ids) == 4 and all(len(i) == 32 for i in ids)
        mine = uuid.uuid4().hex
        assert httpx.get(f"{served.url}/health", headers={"x-request-id": mine}).headers["x-request-id"] == mine
        odd = httpx.get(f"{served.url}/health", headers={"x-request-id": "a b\tc"}).headers["x-request-id"]
        assert odd != "a b\tc" and len(odd) == 32, "an id that is not a plain token is replaced"


def test_json_logs_are_one_object_a_line_with_the_request_id_and_no_secret(aipower):
    key = "json-log-key-8086"
    process = serve_process("--log-format", "json", "--api-key", key, "-v")
    try:
        url = served_url(process)
        response = chat(url, key, stream=True)
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        refused = httpx.get(f"{url}/v1/models", headers={"authorization": "Bearer wrong-key-1234"})
        assert refused.status_code == 401
        process.terminate()
        assert process.wait(60) == 0
        lines = [line for line in process.stderr.read().splitlines() if line.strip()]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    records = [json.loads(line) for line in lines]  # every line parses: none is plain text
    assert all({"time", "level", "logger", "message", "request_id"} <= set(r) for r in records)
    mine = [r for r in records if r["request_id"] == request_id]
    assert any(r.get("path") == "/v1/chat/completions" and r.get("status") == 200 for r in mine), mine
    assert any(r.get("path") == "/v1/models" and r.get("status") == 401 for r in records)
    text = "\n".join(lines)
    assert key not in text and "wrong-key-1234" not in text
    assert records[-1]["message"] == "scraper serve: stopped"


def test_a_chat_beyond_the_site_rate_waits_for_the_window_within_the_queue_timeout(aipower):
    with serving(site_rate=1, queue_timeout=30) as served:
        waits: list[float] = []

        class Recorded(MemoryRateLimiter):
            def take(self, site: str) -> float:
                waits.append(super().take(site))
                return waits[-1]

        served.state.budget = Recorded(1, window=1.0)  # the same budget on a window a test can wait out
        with ThreadPoolExecutor(2) as workers:
            answers = list(workers.map(lambda _: chat(served.url), range(2)))
        after = metrics(served.url)
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert [a.json()["choices"][0]["message"]["content"] for a in answers] == [REPLY] * 2
    assert waits[0] == 0 and waits[-1] == 0 and waits.count(0) == 2, "each chat took from the budget once"
    assert 0 < sum(waits) <= 1.0 + 1e-6, "the other waited, no longer than the window"
    waited = max(float(a.headers["x-scraper-queue-ms"]) for a in answers)
    assert waited >= 1000 * max(waits) - 1, "its wait is its queue time"
    assert after[("scraper_queue_wait_seconds_count", ())] == 2 and after[("scraper_queue_wait_seconds_sum", ())] > 0
