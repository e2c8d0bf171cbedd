"""The Kognetiks replica page works for a person in Chromium (pytest-playwright's own ``page`` fixture):
its script asks for a nonce first, as the plugin's does, and shows the answer, a refused nonce, the rate
limit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from scraper.replica import ReplicaSite, SiteConfig
from tests._support import echo

REPLY = echo("Привет")
AJAX = "/wp-admin/admin-ajax.php"


@pytest.fixture
def site(request: pytest.FixtureRequest) -> Iterator[ReplicaSite]:
    with ReplicaSite("kognetiks", SiteConfig(chunk_delay=0.005, page=getattr(request, "param", "ok"))) as replica:
        yield replica


def actions(site: ReplicaSite) -> list[tuple[str, int]]:
    return [(r.form["action"], r.status) for r in site.log if r.path == AJAX and r.form]


def say(page: Page, text: str) -> None:
    page.locator("#chatbot-chatgpt-message").fill(text)
    page.locator("#chatbot-chatgpt-message").press("Enter")


def test_the_embedded_box_answers_a_person(page: Page, site: ReplicaSite) -> None:
    page.goto(site.url + "/")
    assert page.evaluate("window.kchat_settings.chatbot_message_nonce === undefined"), "the live config has none"
    say(page, "Привет")
    expect(page.locator(".chatbot-bot-text").last).to_have_text(REPLY)
    assert actions(site) == [("chatbot_chatgpt_refresh_nonce", 200), ("chatbot_chatgpt_send_message", 200)]
    say(page, "Hello world")
    expect(page.locator(".chatbot-bot-text")).to_have_count(2)
    link = page.locator(".chatbot-bot-text").last.locator("a")
    expect(link).to_have_text("Hello world!")  # the learnings block, as the plugin shows it
    assert actions(site)[-1] == ("chatbot_chatgpt_send_message", 200), "the nonce is kept for the next message"


@pytest.mark.parametrize("site", ["widget"], indirect=True)
def test_the_floating_box_opens_and_answers(page: Page, site: ReplicaSite) -> None:
    page.goto(site.url + "/")
    box = page.locator("#chatbot-chatgpt")
    expect(box).to_be_hidden()
    page.locator("#chatgpt-open-btn").click()
    expect(box).to_be_visible()
    say(page, "Привет")
    expect(page.locator(".chatbot-bot-text").last).to_have_text(REPLY)


def test_a_refused_nonce_is_refreshed_and_the_rate_limit_shown(page: Page, site: ReplicaSite) -> None:
    page.goto(site.url + "/")
    say(page, "Привет")
    expect(page.locator(".chatbot-bot-text")).to_have_count(1)
    site.expire_nonces()
    say(page, "Привет")
    expect(page.locator(".chatbot-bot-text")).to_have_count(2)
    assert [status for action, status in actions(site) if action == "chatbot_chatgpt_send_message"] == [200, 403, 200]
    site.config.rate_limit = 0
    say(page, "Привет")
    expect(page.locator(".chatbot-error-text").last).to_have_text(
        "Rate limit exceeded. Please wait before sending another message."
    )
