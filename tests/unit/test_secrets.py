"""The one rule of what is secret, as logs, messages and kept pages use it."""

from __future__ import annotations

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
