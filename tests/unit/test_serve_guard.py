"""``scraper serve``'s checks before any browser work: who may call (Origin, Host, Content-Type) and what a
request may hold (size, nesting, Unicode, numbers). The app runs in-process without its lifespan, so no
browser starts: every answer here comes from the checks alone."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from scraper.serve import ServeConfig, create_app
from scraper.serve._validate import MAX_DEPTH, parse_json

URL = "/v1/chat/completions"
HELLO = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture
def app() -> Any:
    app = create_app(ServeConfig(port=80))
    runtime = app.state.scraper.service.runtime  # the process's shared browser: other tests may have used it
    app.state.before = (runtime.launches, runtime.sites.opened)
    return app


@pytest.fixture
def client(app: Any) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1:80")


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


def ran_nothing(app: Any) -> None:
    state = app.state.scraper
    assert state.served == 0 and state.failed == 0 and state.slots.in_flight == 0
    runtime = state.service.runtime
    assert (runtime.launches, runtime.sites.opened) == app.state.before, "no browser work"


def test_a_cross_origin_text_plain_post_is_refused_and_runs_no_chat(app, client):
    answer = client.post(
        URL, content=json.dumps(HELLO), headers={"content-type": "text/plain", "origin": "http://evil.example"}
    )
    assert error_of(answer, 403)["code"] == "origin_not_allowed"
    from_a_page = client.post(URL, json=HELLO, headers={"sec-fetch-site": "cross-site"})
    assert error_of(from_a_page, 403)["type"] == "permission_error"
    ran_nothing(app)


def test_a_body_that_is_not_json_typed_is_415(app, client):
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        headers = {"content-type": kind} if kind else {}
        answer = client.post(URL, content=json.dumps(HELLO).encode(), headers=headers)
        assert error_of(answer, 415)["code"] == "unsupported_media_type", kind
    ran_nothing(app)


def test_a_foreign_host_is_421(app, client):
    for host in ("evil.example", "evil.example:80", "127.0.0.1:81", "attacker.localhost.example"):
        answer = client.get("/health", headers={"host": host})
        assert error_of(answer, 421)["code"] == "misdirected_request", host
    for host in ("127.0.0.1:80", "localhost:80", "[::1]:80", "127.0.0.1"):
        assert client.get("/health", headers={"host": host}).status_code == 200, host


def test_allowed_origins_and_hosts_pass_with_cors():
    app = create_app(ServeConfig(port=80, allow_origins=("http://localhost:3000",), allow_hosts=("box.lan",)))
    client = TestClient(app, base_url="http://127.0.0.1:80")
    answer = client.get("/health", headers={"origin": "http://localhost:3000", "host": "box.lan"})
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "http://localhost:3000"
    preflight = client.options(URL, headers={"origin": "http://localhost:3000"})
    assert preflight.status_code == 204 and "content-type" in preflight.headers["access-control-allow-headers"]
    assert client.get("/health", headers={"origin": "http://other.example"}).status_code == 403


@pytest.mark.parametrize(
    "body,says",
    [
        (b"[" * 100_000 + b"]" * 100_000, "deeper than"),
        (b'{"model": "x", "messages": [{"role": "user", "content": "\\ud800"}]}', "not valid Unicode"),
        (b'{"model": "x", "messages": [{"role": "user", "content": "hi"}], "timeout": 1e308}', "`timeout`"),
        (b'{"model": "x", "messages": [{"role": "user", "content": "hi"}], "timeout": NaN}', "NaN"),
        (b'{"model": "x", "messages": [{"role": "user", "content": "hi"}], "n": true}', "`n`"),
        (b'{"model": "x", "messages": [{"role": "user", "content": "hi"}], "stream": 1}', "`stream`"),
        (b'{"model": "x", "messages": [{"role": "user", "content": "hi"}], "temperature": 9}', "`temperature`"),
        (b'{"model": "x", "messages": [{"role": "user", "content": "hi"}], "max_tokens": true}', "`max_tokens`"),
        (b'{"model": "x", "messages": [{"role": "user", "content": null}]}', "content is missing"),
        (b'{"model": "x", "messages": [{"role": "user"}]}', "content is missing"),
        (b'{"model": "x", "messages": [{"role": "user", "content": "  "}]}', "no text"),
        (b'{"model": "x", "messages": "hi"}', "messages"),
        (b"\xff\xfe{}", "UTF-8"),
        (b"{not json", "not valid JSON"),
    ],
)
def test_each_malformed_request_is_a_400_in_openais_shape(app, client, body, says):
    answer = client.post(URL, content=body, headers={"content-type": "application/json"})
    error = error_of(answer, 400)
    assert says in error["message"] and error["type"] == "invalid_request_error" and "Traceback" not in answer.text
    ran_nothing(app)


def test_fallback_urls_are_capped(app, client):
    site = {"url": "http://127.0.0.1:9/chat/", "fallback_urls": [f"http://127.0.0.1:9/p{i}/" for i in range(15)]}
    answer = client.post(URL, json={**HELLO, "site": site})
    assert "at most 3" in error_of(answer, 400)["message"]
    ran_nothing(app)


def test_depth_is_counted_outside_strings_only():
    deep = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse_json(deep.encode()) is not None
    text = json.dumps({"content": "[" * 10_000}).encode()  # brackets in a string are text
    assert parse_json(text) == {"content": "[" * 10_000}
    escaped = json.dumps({"content": '\\"[[[' * 50}).encode()
    assert parse_json(escaped)["content"].count("[") == 150
