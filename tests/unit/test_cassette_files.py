"""Cassettes without a browser: scrubbing a hand-made flow, matching requests, the format's errors."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest

from scraper.browser import FlowRecorder
from scraper.cassettes import MISMATCH_STATUS, Cassette, ReplayServer, chunk_bytes, from_flow
from scraper.errors import CassetteError
from tests._support import request

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"


def test_scrubbing_a_hand_made_flow_keeps_chunk_cuts_and_shapes():

    origin = "https://chat.example.net"
    recorder = FlowRecorder()
    recorder.page(
        origin + "/chat/",
        200,
        [("Content-Type", "text/html; charset=windows-1251"), ("Set-Cookie", "wp_sess=s3ss10nV4lue; Secure")],
        '<a href="mailto:boss@example.net">mail</a> <a href="/x?_wpnonce=abc123def4&amp;y=1">x</a> '
        '<script>var p = {"ajax_url":"https:\\/\\/chat.example.net\\/wp-admin\\/admin-ajax.php"};</script>'
        "served to 203.0.113.7 and 2001:db8::7 via 127.0.0.1",
    )
    exchange = recorder.exchange(
        "POST",
        origin + "/wp-admin/admin-ajax.php",
        [("Content-Type", "application/x-www-form-urlencoded"), ("Authorization", "Bearer tok-SECRET-42")],
        "_wpnonce=abc123def4&message=hi",
    )
    exchange.status = 200
    exchange.response_headers = [("Date", "Mon, 01 Jan 2024 00:00:00 GMT"), ("X-Seen-From", "203.0.113.7")]
    exchange.chunks = [(0.01, b'data: {"nonce": "abc1'), (0.02, b'23def4"}\n\ndata: "\xd0'), (0.03, b'\x9f"\n\n')]
    cassette = from_flow(recorder, origin=origin, name="hand-made")

    page = cassette.pages[0]
    assert page.path == "/chat/" and cassette.meta["recorded_against"] == "live site"
    assert 'href="mailto:EMAIL_1"' in page.html and "_wpnonce=NONCE_1&amp;" in page.html
    assert "{{origin_json}}\\/wp-admin" in page.html
    assert "served to IP_1 and IP_2 via 127.0.0.1" in page.html
    assert ["Set-Cookie", "wp_sess=SESSION_1; Secure"] in page.headers
    assert ["Content-Type", "text/html; charset=UTF-8"] in page.headers, "the HTML is stored as UTF-8"
    [stored] = cassette.exchanges
    assert stored["request"]["headers"]["authorization"] == "AUTH_1"
    assert stored["request"]["form"] == [["_wpnonce", "NONCE_1"], ["message", "hi"]]
    assert stored["response"]["headers"] == [["X-Seen-From", "IP_1"]], "Date is dropped"
    chunks = stored["response"]["chunks"]
    assert [c["t"] for c in chunks] == [0.01, 0.02, 0.03]
    assert chunks[0] == {"t": 0.01, "text": 'data: {"nonce": "NONCE_1'}, "a value cut by a chunk moves whole"
    assert "b64" in chunks[1] and chunk_bytes(chunks[1]) == b'"}\n\ndata: "\xd0', "cut inside a character"
    assert b"".join(chunk_bytes(c) for c in chunks).decode() == 'data: {"nonce": "NONCE_1"}\n\ndata: "П"\n\n'
    assert cassette.meta["placeholders"] == [
        "{{origin_json}}",
        "NONCE_1",
        "SESSION_1",
        "AUTH_1",
        "AUTH_2",
        "EMAIL_1",
        "IP_1",
        "IP_2",
    ]


def _post(server: ReplayServer, fields: list[tuple[str, str]]) -> tuple[int, str]:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    reply = request(server, "POST", "/wp-admin/admin-ajax.php", body=urlencode(fields).encode(), headers=form)
    return reply.status, reply.text


def _recorded_form(cassette: Cassette, index: int, server: ReplayServer, **changes: str) -> list[tuple[str, str]]:
    form = []
    for name, value in cassette.exchanges[index - 1]["request"]["form"]:
        value = changes.get(name, value)
        form.append((name, value.replace("{{origin}}", server.url).replace("{{any}}", "1234")))
    return form


def test_a_wrong_nonce_gets_the_recorded_rejection_only_if_one_was_recorded():
    hello = Cassette.load(FIXTURES / "aipower-legacy-hello")
    with ReplayServer(hello, speed=0) as server:
        status, body = _post(server, _recorded_form(hello, 1, server, _wpnonce="NONCE_9"))
        assert status == MISMATCH_STATUS
        assert "form field '_wpnonce': recorded 'NONCE_1' != received 'NONCE_9'" in body
        status, body = _post(server, _recorded_form(hello, 1, server, chat_id="5678", wpaicg_chat_client_id="other"))
        assert status == 200 and "data: [DONE]" in body, "chat_id and the client id are made up per request"
        status, body = _post(server, _recorded_form(hello, 1, server))
        assert status == MISMATCH_STATUS and "already replayed" in body

    refresh = Cassette.load(FIXTURES / "aipower-legacy-nonce-refresh")
    with ReplayServer(refresh, speed=0) as server:
        status, body = _post(server, _recorded_form(refresh, 1, server))
        assert (status, body) == (403, "The link you followed has expired.")


def test_replay_speed_must_not_be_negative():
    with pytest.raises(ValueError, match="speed"):
        ReplayServer(FIXTURES / "aipower-legacy-hello", speed=-1)


def test_loading_a_folder_that_is_not_a_cassette_says_what_to_do(tmp_path):

    with pytest.raises(CassetteError, match="scraper record"):
        Cassette.load(tmp_path)
