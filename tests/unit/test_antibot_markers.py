"""Recognising anti-bot pages from their bytes, and proxy URLs: no browser needed."""

from __future__ import annotations

import pytest

from scraper.browser import proxy_settings
from scraper.wire import detect_challenge as detect


@pytest.mark.parametrize(
    "headers,html,vendor,kind",
    [
        ({"cf-mitigated": "challenge"}, "<title>Just a moment...</title>", "Cloudflare", "challenge"),
        ({}, '<form id="challenge-form"></form><div class="cf-turnstile"></div>', "Cloudflare", "interactive"),
        ({}, "<title>Attention Required! | Cloudflare</title>", "Cloudflare", "block"),
        ({"Server": "ddos-guard"}, "<title>DDoS-Guard</title>", "DDoS-Guard", "challenge"),
        ({"X-Sucuri-ID": "11005"}, "<title>Sucuri WebSite Firewall - Access Denied</title>", "Sucuri", "block"),
        ({}, '<iframe src="/_Incapsula_Resource?CWUDNSAI=1"></iframe>', "Imperva", "challenge"),
    ],
)
def test_marker_table(headers, html, vendor, kind):
    found = detect("https://x/", headers, html)
    assert found is not None and (found.vendor, found.kind) == (vendor, kind)


def test_ordinary_pages_are_not_challenges():
    # Cloudflare injects its platform script into ordinary pages too; alone it means nothing.
    page = '<title>Blog</title><script src="/cdn-cgi/challenge-platform/scripts/jsd/main.js"></script>'
    assert detect("https://x/", {"server": "cloudflare"}, page) is None
    assert detect("https://x/", {}, '<form class="comment"><div class="cf-turnstile"></div></form>') is None


def test_proxy_settings_parse_credentials():
    assert proxy_settings("http://us%40r:p%3Ass@proxy.example:3128") == {
        "server": "http://proxy.example:3128",
        "username": "us@r",
        "password": "p:ss",
    }
    assert proxy_settings("proxy.example:8080") == {"server": "http://proxy.example:8080"}
    assert proxy_settings(None) is None
