"""The one rule of what is secret, as logs, messages and kept pages use it."""

from __future__ import annotations

import json
import logging

from scraper.wire import RedactingFilter, redact, redact_url, remember, scrub_page, secret_kind, shorten


def test_secret_places_by_name():
    for key in ("_wpnonce", "_ajax_nonce", "X-WP-Nonce", "restNonce", "sessionId", "session_id", "mwai_session_id"):
        assert secret_kind(key) in ("NONCE", "SESSION"), key
    assert secret_kind("wpaicg_chat_client_id") == "CLIENT" and secret_kind("Authorization") == "AUTH"
    for key in ("message", "bot_id", "post_id", "action", "conversation_uuid", "aipkit_getChatNonceAction"):
        assert secret_kind(key) is None, key


def test_redact_hides_values_in_secret_places_and_passwords_in_urls():
    line = (
        "GET http://127.0.0.1:8/wp-admin/admin-ajax.php?action=aipkit_frontend_chat_stream&_ajax_nonce=2820766433"
        ' and {"restNonce": "abcdef1234"} via http://alice:s3cret@proxy.example:3128'
    )
    shown = redact(line)
    assert "2820766433" not in shown and "abcdef1234" not in shown and "s3cret" not in shown
    assert "action=aipkit_frontend_chat_stream" in shown and "alice" in shown
    assert redact_url("http://alice:s3cret@proxy.example:3128/x") == "http://alice:***@proxy.example:3128/x"
    assert redact_url("https://example.org/chat/") == "https://example.org/chat/"


def test_values_seen_once_are_hidden_everywhere_later(caplog):
    remember({"nonce": "f00dfeed42", "post_id": "261"})
    logger = logging.getLogger("scraper.test")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="scraper.test"):
        logger.info("sent %s for post %s", "f00dfeed42", "261")
    assert caplog.records[-1].getMessage() == "sent [secret] for post 261"


def test_a_page_from_a_failed_read_is_scrubbed_by_the_same_rule():
    page = (
        '<div class="wpaicg-chat-shortcode" data-nonce="9a8b7c6d5e" data-post-id="4"></div>'
        '<script>var wpaicgParams = {"search_nonce":"9a8b7c6d5e"};</script>'
        "<div data-config='{&quot;nonce&quot;:&quot;2820766433&quot;,&quot;botId&quot;:4}'></div>"
    )
    scrubbed = scrub_page(page, "http://127.0.0.1:8080", cookies=["cookie-value-1"])
    assert "9a8b7c6d5e" not in scrubbed and "2820766433" not in scrubbed
    assert 'data-nonce="NONCE_1"' in scrubbed and 'data-post-id="4"' in scrubbed


def test_shorten_is_enough_to_compare_not_to_use():
    assert shorten("2820766433") == "28…33 (10 chars)" and shorten("abc") == "…"


def test_urls_lose_passwords_and_secret_query_values_everywhere_they_are_shown():
    from scraper.errors import StreamError
    from scraper.serve._errors import error_body

    url = "http://alice:pa55word@127.0.0.1:8080/chat/?token=tok-123456&page=2"
    assert redact_url(url) == "http://alice:***@127.0.0.1:8080/chat/?token=[secret]&page=2"
    stream = (
        "http://127.0.0.1:8080/wp-admin/admin-ajax.php?action=aipkit_frontend_chat_stream"
        "&_ajax_nonce=9f8e7d6c5b&cache_key=aipkit_chat_stream_abcdef&session_id=0a1b2c3d4e5f&bot_id=7"
    )
    status, body = error_body(StreamError(f"The stream of {stream} broke; also tried {url}."))
    shown = json.dumps(body)
    for secret in ("pa55word", "tok-123456", "9f8e7d6c5b", "aipkit_chat_stream_abcdef", "0a1b2c3d4e5f"):
        assert secret not in shown, secret
    assert status == 502 and "bot_id=7" in shown and "page=2" in shown and "alice" in shown


def test_remembered_secrets_are_bounded_and_matched_by_one_pattern_rebuilt_in_batches():
    from scraper.wire._secrets import KnownSecrets

    known = KnownSecrets(limit=100, batch=10)
    for i in range(9):
        known.add([f"value-{i:04d}"])
    assert known.rebuilds == 0, "a few new values do not recompile the matcher"
    assert known.hide("a value-0003 here", "[x]") == "a [x] here", "new values are hidden before any rebuild"
    for i in range(9, 1000):
        known.add([f"value-{i:04d}"])
    assert len(known) == 100, "the oldest values are forgotten beyond the bound"
    assert known.rebuilds <= 100, "one rebuild per batch, not per value"
    assert known.hide("value-0999 value-0950", "[x]") == "[x] [x]"
    known.add(["value-0900"])  # seen again: now the most recent
    known.add([f"fresh-{i:04d}" for i in range(99)])
    assert "value-0900" in known and "value-0901" not in known
