"""The replica's anti-bot fronts: Cloudflare's challenges and block page, DDoS-Guard, Sucuri, Incapsula.

First over plain HTTP (``http.client``, no browser), where every status, header and marker is visible
and the clearance flow can be walked by hand; then in Chromium (pytest-playwright's ``page``), where
the JS challenge must clear by itself and the click challenge only for real input.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from scraper.replica import ANTIBOT_MODES, ReplicaSite, SiteConfig
from tests import _support as support
from tests._support import Reply, echo

UA_A = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
UA_B = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0"
NO_STORE = "private, max-age=0, no-store, no-cache, must-revalidate, post-check=0, pre-check=0"
ORCHESTRATE = "/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1"
CHAT_BOX = ".wpaicg-chat-shortcode"
WIDGET_TITLE = "Widget containing a Cloudflare security challenge"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def request(
    site: ReplicaSite,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    ua: str = UA_A,
    cookie: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One request with a given User-Agent (and cookie), read to the close."""
    sent = {"User-Agent": ua, **(headers or {})}
    if cookie:
        sent["Cookie"] = cookie
    return support.request(site, method, path, body=body, headers=sent)


def chat(site: ReplicaSite, *, ua: str = UA_A, cookie: str | None = None) -> Reply:
    """A valid chat request to either plugin (only the front can stop it)."""
    if site.plugin == "aipower":
        form = {"_wpnonce": site.nonce, "post_id": "4", "action": "wpaicg_chat_shortcode_message", "message": "hi"}
        return request(
            site, "POST", "/wp-admin/admin-ajax.php", body=urlencode(form).encode(), ua=ua, cookie=cookie, headers=FORM
        )
    jar = "; ".join(c for c in ("mwai_session_id=s1", cookie) if c)
    payload = json.dumps({"session": "s1", "newMessage": "hi", "stream": True}).encode()
    headers = {"Content-Type": "application/json", "X-WP-Nonce": site.nonce}
    return request(site, "POST", "/wp-json/mwai-ui/v1/chats/submit", body=payload, ua=ua, cookie=jar, headers=headers)


def ray_and_hash(page: Reply) -> tuple[str, str]:
    """The challenge's Ray ID and hash, from ``window._cf_chl_opt``."""
    found = re.search(r"cRay:'([0-9a-f]{16})',.*?cHash:'([0-9a-f]+)'", page.text)
    assert found, page.text[:300]
    return found.group(1), found.group(2)


def script_settings(site: ReplicaSite, ray: str, ua: str = UA_A) -> dict[str, Any]:
    """What the challenge script served for ``ray`` will do."""
    script = request(site, "GET", f"{ORCHESTRATE}?ray={ray}", ua=ua)
    assert script.status == 200 and script.header("Content-Type").startswith("application/javascript")
    return json.loads(re.search(r"var settings = (\{.*?\});", script.text).group(1))


def solve(site: ReplicaSite, page: Reply, ua: str = UA_A) -> Reply:
    """Do what the challenge script does: post to the flow endpoint (sites here take no time to clear)."""
    ray, _ = ray_and_hash(page)
    settings = script_settings(site, ray, ua)
    assert settings["solve"] is True and settings["delayMs"] == 0
    return request(site, "POST", settings["flow"], body=f"v_{ray}=x".encode(), ua=ua, headers=FORM)


def assert_interstitial(answer: Reply, path: str = "/") -> None:
    """Cloudflare's "Just a moment..." page, headers and markers."""
    assert answer.status == 403
    assert answer.header("cf-mitigated") == "challenge"
    assert answer.header("Server") == "cloudflare"
    assert re.fullmatch(r"[0-9a-f]{16}-LAX", answer.header("CF-RAY"))
    assert answer.header("Content-Type") == "text/html; charset=UTF-8"
    assert answer.header("Cache-Control") == NO_STORE
    assert answer.header("Connection") == "close"
    assert answer.header("X-Powered-By") is None  # the edge answered, not PHP
    text = answer.text
    assert text.startswith('<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>')
    assert '<body class="no-js">' in text and '<div id="challenge-body-text"' in text
    assert f'<form id="challenge-form" action="{path}?__cf_chl_f_tk=' in text
    assert 'method="POST" enctype="application/x-www-form-urlencoded">' in text
    assert "window._cf_chl_opt={cvId:'3',cZone:'127.0.0.1',cType:'managed',cRay:'" in text
    ray, _ = ray_and_hash(answer)
    assert answer.header("CF-RAY") == f"{ray}-LAX"
    assert f'<script src="{ORCHESTRATE}?ray={ray}"></script>' in text


@pytest.fixture
def make_site() -> Iterator[Any]:
    """Start replica sites with a front; all are stopped at the end."""
    started: list[ReplicaSite] = []

    def make(plugin: str, antibot: str | None, delay: float = 0.0) -> ReplicaSite:
        site = ReplicaSite(plugin, SiteConfig(chunk_delay=0, antibot=antibot, challenge_delay=delay)).start()
        started.append(site)
        return site

    yield make
    for site in started:
        site.stop()


# -- over plain HTTP ---------------------------------------------------------------------------------


@pytest.mark.parametrize("plugin", ["aipower", "aiengine"])
def test_js_challenge_stops_pages_and_chat(make_site: Any, plugin: str) -> None:
    site = make_site(plugin, "js_challenge")
    page = request(site, "GET", "/")
    assert_interstitial(page)
    assert "Verifying you are human. This may take a few seconds." in page.text
    assert_interstitial(request(site, "GET", f"/{plugin}-chat/"), f"/{plugin}-chat/")
    assert_interstitial(
        chat(site), "/wp-admin/admin-ajax.php" if plugin == "aipower" else "/wp-json/mwai-ui/v1/chats/submit"
    )
    assert_interstitial(request(site, "GET", "/wp-json/"), "/wp-json/")
    assert site.stats.challenges_served == 4
    assert site.stats.page_loads == 0 and site.stats.chat_requests == 0  # WordPress never saw them
    assert [r.status for r in site.log] == [403] * 4
    static = "/wp-content/themes/corner/style.css"
    assert request(site, "GET", static).status == 200  # static files and the favicon are let through
    assert request(site, "GET", "/favicon.ico").header("cf-mitigated") is None


def test_js_challenge_clearance_is_bound_to_the_user_agent(make_site: Any) -> None:
    site = make_site("aipower", "js_challenge", 0.3)
    page = request(site, "GET", "/")
    ray, _ = ray_and_hash(page)
    settings = script_settings(site, ray)
    assert settings["delayMs"] == 300
    early = request(site, "POST", settings["flow"], body=b"v=1", headers=FORM)
    assert early.status == 400 and early.header("Set-Cookie") is None  # faster than the challenge allows
    site.config.challenge_delay = 0  # the time has come (without waiting for it here)
    cleared = solve(site, page)
    assert cleared.status == 200
    cookie = cleared.header("Set-Cookie")
    found = re.fullmatch(r"cf_clearance=([0-9a-f]{43}); path=/; expires=([^;]+); HttpOnly; SameSite=Lax", cookie)
    assert found, cookie
    token = found.group(1)
    assert token == site.clearance_for(UA_A) != site.clearance_for(UA_B)
    expires = email.utils.parsedate_to_datetime(found.group(2)).timestamp()
    assert abs(expires - (time.time() + 365 * 24 * 3600)) < 60
    assert site.stats.clearances_issued == 1
    assert request(site, "POST", settings["flow"], body=b"v=1", headers=FORM).status == 400  # one use only

    passed = request(site, "GET", "/", cookie=f"cf_clearance={token}")
    assert passed.status == 200 and CHAT_BOX[1:] in passed.text
    assert passed.header("cf-mitigated") is None and passed.header("Server") == "cloudflare"
    assert re.fullmatch(r"[0-9a-f]{16}-LAX", passed.header("CF-RAY"))
    reply = chat(site, cookie=f"cf_clearance={token}")
    assert reply.status == 200 and reply.body.endswith(b"data: [DONE]\n\n")

    assert_interstitial(request(site, "GET", "/", ua=UA_B, cookie=f"cf_clearance={token}"))  # replayed elsewhere
    assert_interstitial(chat(site, ua=UA_B, cookie=f"cf_clearance={token}"), "/wp-admin/admin-ajax.php")
    assert_interstitial(request(site, "GET", "/", cookie="cf_clearance=" + "0" * 43))
    assert request(site, "GET", "/", ua=UA_B, cookie=f"cf_clearance={site.clearance_for(UA_B)}").status == 200
    site.revoke_clearances()
    assert_interstitial(request(site, "GET", "/", cookie=f"cf_clearance={token}"))


def test_js_challenge_never_clears(make_site: Any) -> None:
    site = make_site("aiengine", "js_challenge_never")
    page = request(site, "GET", "/")
    assert_interstitial(page)
    ray, chash = ray_and_hash(page)
    assert script_settings(site, ray)["solve"] is False
    flow = f"/cdn-cgi/challenge-platform/h/g/flow/ov1/1:{int(time.time())}:x/{ray}/{chash}"
    assert request(site, "POST", flow, body=b"v=1", headers=FORM).status == 400  # posting by hand does not help
    assert site.stats.clearances_issued == 0
    site.config.antibot = "js_challenge"  # the same site with a challenge that can be solved
    assert solve(site, request(site, "GET", "/")).status == 200


def test_block_page_for_everything(make_site: Any) -> None:
    site = make_site("aipower", "block")
    for answer in (
        request(site, "GET", "/"),
        chat(site),
        request(site, "GET", f"{ORCHESTRATE}?ray=0123456789abcdef"),
        request(site, "GET", "/", cookie=f"cf_clearance={site.clearance_for(UA_A)}"),
    ):
        assert answer.status == 403 and answer.header("Server") == "cloudflare"
        assert re.fullmatch(r"[0-9a-f]{16}-LAX", answer.header("CF-RAY"))
        assert answer.header("cf-mitigated") is None  # a block, not a challenge
        text = answer.text
        assert "<title>Attention Required! | Cloudflare</title>" in text
        assert "Sorry, you have been blocked" in text
        assert '<h2 class="cf-subheadline">' in text and "You are unable to access" in text
        assert f'Cloudflare Ray ID: <strong class="font-semibold">{answer.header("CF-RAY")[:16]}</strong>' in text
    assert site.stats.challenges_served == 4 and site.stats.page_loads == 0 and site.stats.chat_requests == 0


@pytest.mark.parametrize("mode", ["ddos_guard", "sucuri", "incapsula"])
def test_other_vendors_never_clear(make_site: Any, mode: str) -> None:
    site = make_site("aiengine", mode)
    cookie = f"cf_clearance={site.clearance_for(UA_A)}"
    answers = [request(site, "GET", "/"), chat(site, cookie=cookie), request(site, "GET", "/aiengine-chat/")]
    for answer in answers:
        text = answer.text
        if mode == "ddos_guard":
            assert answer.status == 403 and answer.header("Server") == "ddos-guard"
            assert "<title>DDoS-Guard</title>" in text
            assert answer.header("Set-Cookie").startswith("__ddg1_=")
        elif mode == "sucuri":
            assert answer.status == 403 and answer.header("Server") == "Sucuri/Cloudproxy"
            assert answer.header("X-Sucuri-ID") == "11005"
            assert "<title>Sucuri WebSite Firewall - Access Denied</title>" in text
            assert UA_A in text  # the block details name the browser
        else:
            assert answer.status == 200 and answer.header("X-Iinfo")
            assert text.startswith(
                '<html><head><META NAME="robots" CONTENT="noindex,nofollow"><script src="/_Incapsula_Resource?SWJIYLWA='
            )
            assert '<iframe id="main-iframe" src="/_Incapsula_Resource?CWUDNSAI=' in text
            assert "Request unsuccessful. Incapsula incident ID: " in text and text.endswith("</body></html>")
        assert answer.header("cf-mitigated") is None and answer.header("X-Powered-By") is None
    assert site.stats.challenges_served == 3 and site.stats.chat_requests == 0 and site.stats.clearances_issued == 0
    if mode == "incapsula":  # the resources the page loads answer, and are not counted as challenges
        frame = re.search(r'<iframe id="main-iframe" src="([^"]+)"', answers[0].text).group(1)
        inner = request(site, "GET", frame)
        assert inner.status == 200 and "Request unsuccessful. Incapsula incident ID:" in inner.text
        script = re.search(r'<script src="([^"]+)"', answers[0].text).group(1)
        assert request(site, "GET", script).header("Content-Type") == "application/javascript"
        assert site.stats.challenges_served == 3


@pytest.mark.parametrize("plugin", ["aipower", "aiengine"])
def test_chat_challenge_flags_the_site(make_site: Any, plugin: str) -> None:
    site = make_site(plugin, "chat_challenge")
    first = request(site, "GET", "/")
    assert first.status == 200 and first.header("Server") == "cloudflare" and not site.flagged
    challenged = chat(site)
    path = "/wp-admin/admin-ajax.php" if plugin == "aipower" else "/wp-json/mwai-ui/v1/chats/submit"
    assert_interstitial(challenged, path)
    assert site.flagged and site.stats.chat_requests == 0
    page = request(site, "GET", "/")
    assert_interstitial(page)  # from now on the pages are challenged too
    cleared = solve(site, page)
    assert cleared.status == 200
    cookie = cleared.header("Set-Cookie").split(";")[0]
    assert request(site, "GET", "/", cookie=cookie).status == 200
    assert chat(site, cookie=cookie).status == 200 and site.stats.chat_requests == 1
    assert_interstitial(request(site, "GET", "/", ua=UA_B))  # still flagged for everyone else
    if plugin == "aiengine":
        assert_interstitial(request(site, "POST", "/wp-json/mwai/v1/start_session"), "/wp-json/mwai/v1/start_session")
    assert site.stats.challenges_served == (4 if plugin == "aiengine" else 3)
    assert site.stats.clearances_issued == 1
    site.reset()  # the flag goes with the counters
    assert not site.flagged and request(site, "GET", "/", ua=UA_B).status == 200


def test_click_challenge_markup_and_what_cannot_clear_it(make_site: Any) -> None:
    site = make_site("aipower", "click_challenge", 0)
    page = request(site, "GET", "/")
    assert_interstitial(page)
    text = page.text
    sitekey = re.search(r'<div class="cf-turnstile" data-sitekey="(0x4AAAAAAA\w+)">', text).group(1)
    frame = re.search(r'<iframe src="(/cdn-cgi/challenge-platform/h/b/turnstile/if/ov2/av0/rcv/[^"]+)"', text).group(1)
    assert sitekey in frame and f'title="{WIDGET_TITLE}"' in text
    ray, chash = ray_and_hash(page)
    assert script_settings(site, ray)["solve"] is False  # nothing happens by itself
    stamp = f"1:{int(time.time())}:x"
    for letter in ("g", "b"):  # neither the JS route nor a widget that was never shown clears it
        flow = f"/cdn-cgi/challenge-platform/h/{letter}/flow/ov1/{stamp}/{ray}/{chash}"
        assert request(site, "POST", flow, body=b"v=1", headers=FORM).status == 400
    widget = request(site, "GET", frame)
    assert widget.status == 200 and widget.header("cf-mitigated") is None
    assert '<input type="checkbox" id="cf-chl-widget-checkbox">' in widget.text
    assert "Verify you are human" in widget.text and "event.isTrusted" in widget.text
    assert "window.top.location.reload()" in widget.text
    settings = json.loads(re.search(r"var settings = (\{.*?\});", widget.text).group(1))
    assert "/h/b/flow/ov1/" in settings["flow"]
    assert site.stats.clearances_issued == 0 and site.stats.challenges_served == 1


def test_config_fields_and_control_endpoint(make_site: Any) -> None:
    assert SiteConfig().antibot is None and SiteConfig().challenge_delay == 1.0
    assert len(ANTIBOT_MODES) == 9
    with pytest.raises(ValueError):
        SiteConfig(antibot="captcha")
    site = make_site("aiengine", None)
    assert request(site, "GET", "/").header("Server") is None  # no front: WordPress as before

    def control(action: str, payload: dict | None = None) -> Reply:
        data = json.dumps(payload or {}).encode()
        return request(site, "POST", f"/__replica__/{action}", body=data, headers={"Content-Type": "application/json"})

    state = json.loads(control("config", {"antibot": "sucuri", "challenge_delay": 2}).body)
    assert state["config"]["antibot"] == "sucuri" and state["config"]["challenge_delay"] == 2.0
    assert site.config.challenge_delay == 2.0 and request(site, "GET", "/").status == 403
    assert control("config", {"antibot": "captcha"}).status == 400
    assert control("config", {"challenge_delay": "slow"}).status == 400
    assert site.config.antibot == "sucuri"  # a refused update changes nothing
    state = json.loads(control("config", {"antibot": None}).body)
    assert state["config"]["antibot"] is None and state["flagged"] is False
    assert state["stats"]["challenges_served"] == 1 and state["stats"]["clearances_issued"] == 0
    assert request(site, "GET", "/").status == 200
    assert control("revoke_clearances").status == 200


# -- in Chromium -------------------------------------------------------------------------------------


@pytest.fixture
def guarded(request: pytest.FixtureRequest) -> Iterator[ReplicaSite]:
    """An AI Power site behind the front named by the test's parameter."""
    with ReplicaSite("aipower", SiteConfig(chunk_delay=0.005, antibot=request.param, challenge_delay=0.3)) as site:
        yield site


@pytest.mark.parametrize("guarded", ["js_challenge"], indirect=True)
def test_browser_passes_the_js_challenge_by_itself(page: Page, guarded: ReplicaSite) -> None:
    response = page.goto(guarded.url + "/")
    assert response.status == 403 and response.headers["cf-mitigated"] == "challenge"
    expect(page.locator(CHAT_BOX)).to_be_visible(timeout=10_000)  # after the script's reload
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    clearance = cookies["cf_clearance"]
    assert clearance["httpOnly"] is True and clearance["sameSite"] == "Lax"
    assert clearance["value"] == guarded.clearance_for(page.evaluate("navigator.userAgent"))
    assert "cf_clearance" not in page.evaluate("document.cookie")
    page.locator(".wpaicg-chat-shortcode-typing").fill("Привет")
    page.locator(".wpaicg-chat-shortcode-send").click()
    expect(page.locator(".wpaicg-ai-message .wpaicg-chat-message").last).to_have_text(echo("Привет"))
    assert guarded.stats.challenges_served == 1 and guarded.stats.clearances_issued == 1
    assert guarded.stats.page_loads == 1 and guarded.stats.chat_requests == 1


@pytest.mark.parametrize("guarded", ["js_challenge_never"], indirect=True)
def test_browser_stays_stuck_on_the_never_clearing_challenge(page: Page, guarded: ReplicaSite) -> None:
    page.goto(guarded.url + "/")
    page.wait_for_timeout(3000)
    assert page.locator(CHAT_BOX).count() == 0
    assert page.title() == "Just a moment..."
    assert guarded.stats.clearances_issued == 0 and guarded.stats.page_loads == 0


@pytest.mark.parametrize("guarded", ["click_challenge"], indirect=True)
def test_browser_clears_the_click_challenge_only_with_a_real_click(page: Page, guarded: ReplicaSite) -> None:
    page.goto(guarded.url + "/")
    frame = page.wait_for_selector(f"iframe[title='{WIDGET_TITLE}']").content_frame()
    box = frame.wait_for_selector("#cf-chl-widget-checkbox")
    frame.evaluate("document.querySelector('#cf-chl-widget-checkbox').click()")  # untrusted: ignored
    page.wait_for_timeout(800)
    assert box.is_checked() is False
    assert page.locator(CHAT_BOX).count() == 0 and guarded.stats.clearances_issued == 0
    frame.locator("#cf-chl-widget-checkbox").click()  # real input
    expect(page.locator(CHAT_BOX)).to_be_visible(timeout=10_000)
    assert guarded.stats.clearances_issued == 1 and guarded.stats.page_loads == 1
    assert any(cookie["name"] == "cf_clearance" for cookie in page.context.cookies())
