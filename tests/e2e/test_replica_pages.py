"""The replica pages work for a person in a browser (pytest-playwright's own ``page`` fixture).

These are what ``--headed`` shows: a chat box that answers, fed by the same endpoints the client uses.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from scraper.replica import ReplicaSite
from tests._support import echo

REPLY = echo("Привет")


@pytest.fixture
def site(request: pytest.FixtureRequest) -> Iterator[ReplicaSite]:
    with ReplicaSite(request.param) as replica:
        replica.config.chunk_delay = 0.005
        yield replica


@pytest.mark.parametrize("site", ["aipower"], indirect=True)
def test_aipower_chat_box_answers_a_person(page: Page, site: ReplicaSite) -> None:
    page.goto(site.url + "/")
    page.locator(".wpaicg-chat-shortcode-typing").fill("Привет")
    page.locator(".wpaicg-chat-shortcode-send").click()
    expect(page.locator(".wpaicg-ai-message .wpaicg-chat-message").last).to_have_text(REPLY)
    [chat] = [r for r in site.log if r.path.endswith("admin-ajax.php")]
    assert chat.form["_wpnonce"] == site.nonce and chat.form["post_id"] == "4"
    # AI Power leaves its values in the DOM.
    expect(page.locator(".wpaicg-chat-shortcode")).to_have_attribute("data-nonce", site.nonce)


@pytest.mark.parametrize("site", ["aiengine"], indirect=True)
def test_aiengine_chat_box_answers_a_person_and_hides_its_values(page: Page, site: ReplicaSite) -> None:
    page.goto(site.url + "/")
    container = page.locator(".mwai-chatbot-container")
    expect(container).to_have_attribute("data-mwai-initialized", "true")
    assert container.get_attribute("data-system") is None, "the script removes data-system, like AI Engine"
    page.locator(".mwai-input textarea").fill("Привет")
    page.locator(".mwai-input-submit").click()
    expect(page.locator(".mwai-reply.mwai-ai .mwai-text").last).to_have_text(REPLY)
    paths = [r.path for r in site.log]
    assert "/wp-json/mwai/v1/start_session" in paths and "/wp-json/mwai-ui/v1/chats/submit" in paths


@pytest.mark.parametrize("site", ["aiengine"], indirect=True)
def test_aiengine_1x_chat_box_answers_a_person_through_mwai_bot(page: Page, site: ReplicaSite) -> None:
    site.config.page = "v1_endpoint"
    page.goto(site.url + "/")
    page.locator(".mwai-input textarea").fill("Привет")
    page.locator(".mwai-input-submit").click()
    expect(page.locator(".mwai-reply.mwai-ai .mwai-text").last).to_have_text(REPLY)
    [chat] = [r for r in site.log if r.path == "/wp-json/mwai-bot/v1/chat"]
    assert chat.status == 200 and chat.json["chatId"] == "default" and chat.headers["x-wp-nonce"] == site.nonce
    assert "/wp-json/mwai/v1/start_session" not in [r.path for r in site.log]
