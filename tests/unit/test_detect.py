"""Detection: which plugins and bots a page has, on the chat boxes the real plugins print."""

from __future__ import annotations

from pathlib import Path

import pytest

from scraper.client._service import bot_for_model
from scraper.errors import BotNotFoundError, PageError
from scraper.plugins import PLUGINS, Bot, all_bots, choose_bot, detect
from scraper.wire import Document

PAGES = Path(__file__).resolve().parents[2] / "fixtures" / "pages"


def page(*names: str) -> Document:
    return Document("\n".join((PAGES / f"{name}_chatbot_element.html").read_text("utf-8") for name in names))


def test_aipkit_inline_and_popup_bots():
    [found] = detect([page("aipkit")])
    assert found.plugin.name == "aipkit"
    assert [(b.id, b.name, b.plugin) for b in found.bots] == [
        ("4", "Customer Support", "aipkit"),
        ("5", "Lab Bot 2", "aipkit"),
    ]
    popup = found.bots[1]
    assert "aipkit_popup_wrapper" in popup.attrs["class"], "a popup bot's data-config is on its wrapper"
    assert "aipkit_chat_container" in found.markers


def test_ai_power_legacy_and_ai_engine_bots():
    [legacy] = detect([page("aipower")])
    assert legacy.plugin.name == "aipower" and [(b.id, b.plugin) for b in legacy.bots] == [("shortcode", "aipower")]
    [engine] = detect([page("aiengine")])
    assert engine.plugin.name == "aiengine" and [(b.id, b.plugin) for b in engine.bots] == [("default", "aiengine")]


def test_a_page_with_several_plugins_lists_every_bot_in_page_order():
    found = detect([page("aiengine", "aipkit", "aipower")])
    assert {d.plugin.name for d in found} == {"aiengine", "aipkit", "aipower"}
    assert [b.plugin for b in all_bots(found)] == ["aiengine", "aipkit", "aipkit", "aipower"]
    assert choose_bot(found, None, "http://x/", PLUGINS).plugin == "aiengine", "the first bot on the page"
    assert choose_bot(found, "lab bot 2", "http://x/", PLUGINS).id == "5", "by name, any case"
    assert choose_bot(found, 4, "http://x/", PLUGINS).name == "Customer Support", "by id"
    with pytest.raises(BotNotFoundError, match=r"4 'Customer Support' \(aipkit\)"):
        choose_bot(found, "nobody", "http://x/", PLUGINS)


def test_a_page_with_markers_but_no_chat_box_says_what_was_missing():
    doc = Document('<script>var wpaicgParams = {"ajax_url": "/wp-admin/admin-ajax.php"};</script>')
    found = detect([doc])
    assert [d.plugin.name for d in found] == ["aipower"] and found[0].bots == []
    with pytest.raises(PageError, match=r"the page has AI Power markers \(wpaicgParams\) but no chat box"):
        choose_bot(found, None, "http://x/", PLUGINS)


def test_plugin_versions_come_from_asset_urls():
    html = "<script src='/wp-content/plugins/gpt3-ai-content-generator/dist/js/public-main.bundle.js?ver=2.4.71'>"
    assert PLUGINS[1].version(html) == "2.4.71"


def test_a_stylesheets_cache_buster_is_not_the_plugin_version():
    # As chatgptfree.ai serves it: a stylesheet of the plugin stamped with a time, before the scripts.
    plugin = "/wp-content/plugins/gpt3-ai-content-generator"
    html = (
        f"<link rel='stylesheet' href='{plugin}/dist/css/public-main.bundle.css?ver=1787344627' media='all' />"
        f"<script src='{plugin}/dist/js/public-main.bundle.js?ver=2.4.71' id='aipkit-public-main-js'></script>"
    )
    assert PLUGINS[1].version(html) == "2.4.71"
    assert PLUGINS[1].version(html.split("<script")[0]) is None, "a timestamp alone is no version"


def test_a_model_picks_the_bot_named_so_or_configured_with_it():
    support = Bot("7", "Support", "aipkit", {"data-config": '{"botId": 7, "model": "gpt-4o-mini"}'})
    sales = Bot("8", "GPT-4 Sales", "aipkit", {"data-config": '{"botId": 8, "model": "gpt-4"}'})
    assert bot_for_model([support, sales], "gpt-4 sales") is sales
    assert bot_for_model([support, sales], "gpt-4o-mini") is support
    assert bot_for_model([support, sales], "claude-3") is None, "no bot says: the page's default answers"
