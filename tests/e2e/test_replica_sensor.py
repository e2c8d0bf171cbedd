"""The replica's "sensor" front: a bot-detection script in the page, gating the chat nonce and chat requests.

First over plain HTTP, where the edge's side can be walked by hand (the page it serves, the report it
judges, the chat requests it lets through or refuses); then in Chromium: plain Playwright headless, a
context that looks like a desktop browser, and a Chromium with no DevTools client at all, to show what
each check tells apart. Nothing here waits on a clock: tests wait on the DOM or on the edge's reports.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, BrowserContext, BrowserType, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from scraper.browser._runtime import CHROMIUM_ARGS, SCREEN, find_browser, normal_user_agent
from scraper.replica import ANTIBOT_MODES, ReplicaSite, SiteConfig
from scraper.replica.sensor import CHECKS, DEFAULT_REQUIRED, SCRIPT_PATH, Sensor
from tests import _support as support
from tests._support import Reply, own_session

CHROME_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
HEADLESS_UA = CHROME_UA.replace("Chrome/", "HeadlessChrome/")
CHAT_BOX = ".wpaicg-chat-shortcode"
TYPING = ".wpaicg-chat-shortcode-typing"
AJAX = "/wp-admin/admin-ajax.php"
WAIT = 20.0  # seconds a wait on the edge may take before the test fails (never slept)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
PAGE_ID = re.compile(re.escape(SCRIPT_PATH) + r"\?p=([0-9a-f]+)")

# Records when the nonce reaches the DOM, independently of the sensor's own account.
NONCE_WATCH = """
new MutationObserver(function (records, observer) {
  if (document.querySelector('[data-nonce]')) {
    window.__nonceSeenAt = performance.now();
    observer.disconnect();
  }
}).observe(document, {subtree: true, childList: true, attributes: true, attributeFilter: ['data-nonce']});
"""

# A page function defined before any page script, the way an init script would add one.
INIT_CHAT = """
window.__initChat = function (via) {
  var box = document.querySelector('.wpaicg-chat-shortcode');
  var body = 'action=wpaicg_chat_shortcode_message&post_id=4&message=from+init&_wpnonce=' +
    encodeURIComponent(box.getAttribute('data-nonce') || '');
  if (via === 'xhr') {
    var xhr = new XMLHttpRequest();
    xhr.open('POST', '/wp-admin/admin-ajax.php');
    xhr.setRequestHeader('Content-Type', 'application/x-www-form-urlencoded');
    xhr.send(body);
    return;
  }
  fetch('/wp-admin/admin-ajax.php', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'},
    body: body});
};
"""

EVALUATE_CHAT = """async (via) => {
  const box = document.querySelector('.wpaicg-chat-shortcode');
  const body = new URLSearchParams({action: 'wpaicg_chat_shortcode_message', post_id: '4', message: 'from evaluate',
    _wpnonce: box.getAttribute('data-nonce') || ''}).toString();
  const headers = {'Content-Type': 'application/x-www-form-urlencoded'};
  if (via === 'xhr') {
    return await new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', '/wp-admin/admin-ajax.php');
      xhr.setRequestHeader('Content-Type', 'application/x-www-form-urlencoded');
      xhr.onload = () => resolve({status: xhr.status, body: xhr.responseText});
      xhr.send(body);
    });
  }
  const response = await fetch('/wp-admin/admin-ajax.php', {method: 'POST', headers, body});
  return {status: response.status, body: await response.text()};
}"""


# -- helpers -----------------------------------------------------------------------------------------


def request(
    site: ReplicaSite, method: str, path: str, *, body: bytes = b"", ua: str = CHROME_UA, headers: dict | None = None
) -> Reply:
    """One request with a given User-Agent, read to the close."""
    return support.request(site, method, path, body=body, headers={"User-Agent": ua, **(headers or {})})


def load_page(site: ReplicaSite, ua: str = CHROME_UA) -> tuple[str, str]:
    """The chat page as the edge serves it, and the page id its sensor script carries."""
    answer = request(site, "GET", "/", ua=ua)
    assert answer.status == 200
    match = PAGE_ID.search(answer.text)
    assert match, "the sensor script is not in the page"
    return answer.text, match.group(1)


def passing_checks(**overrides: bool) -> dict[str, dict[str, Any]]:
    """A report's checks as the script would send them from a desktop browser (``name=False`` fails one)."""
    checks = {name: {"pass": True, "detail": None} for name in CHECKS if name != "http_headers"}
    for name, passed in overrides.items():
        checks[name] = {"pass": passed, "detail": "forced"}
    return checks


def send_report(site: ReplicaSite, page_id: str, checks: dict, ua: str = CHROME_UA) -> Reply:
    body = json.dumps({"page": page_id, "checks": checks, "stack": {}}).encode()
    return request(
        site, "POST", "/cdn-cgi/sensor/v1/report", body=body, ua=ua, headers={"Content-Type": "application/json"}
    )


def chat(site: ReplicaSite, *, token: str | None = None, ua: str = CHROME_UA) -> Reply:
    """A chat request with the site's valid nonce: only the sensor front can stop it."""
    form = {"_wpnonce": site.nonce, "post_id": "4", "action": "wpaicg_chat_shortcode_message", "message": "hi"}
    headers = dict(FORM)
    if token is not None:
        headers["X-Sensor"] = token
    return request(site, "POST", AJAX, body=urlencode(form).encode(), ua=ua, headers=headers)


def wait_report(site: ReplicaSite, index: int = 0) -> dict[str, Any]:
    """The ``index``-th report the edge receives, once it has it."""
    assert site.sensor.wait(lambda sensor: len(sensor.reports) > index, WAIT), "no sensor report"
    return site.sensor_reports[index]


def wait_verdicts(site: ReplicaSite, count: int) -> list[dict[str, Any]]:
    """The edge's chat verdicts, once there are ``count`` of them."""
    assert site.sensor.wait(lambda sensor: len(sensor.verdicts) >= count, WAIT), "no chat verdict"
    return site.sensor.verdicts


def stack_counts(sensor: Sensor) -> dict[str, dict[str, int]]:
    return sensor.reports[-1]["stack"]["counts"]


def verdict_of(report: dict[str, Any]) -> dict[str, bool]:
    return {name: check["pass"] for name, check in report["checks"].items()}


# -- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture
def site() -> Iterator[ReplicaSite]:
    """An AI Power site behind the sensor, with quick streams and a reply that names the message."""
    config = SiteConfig(antibot="sensor", chunk_delay=0.0, reply="Reply to {message}.")
    with ReplicaSite("aipower", config=config) as replica:
        yield replica


@pytest.fixture
def desktop(browser: Browser) -> Iterator[BrowserContext]:
    """A headless context that looks like a desktop Chrome: a normal User-Agent, a screen above the window."""
    context = browser.new_context(user_agent=normal_user_agent(browser.version), screen=SCREEN)
    yield context
    context.close()


@pytest.fixture
def desktop_page(desktop: BrowserContext) -> Page:
    return desktop.new_page()


def open_with_nonce(page: Page, site: ReplicaSite) -> str:
    """Load the chat page and wait until the sensor has put the nonce in; returns it."""
    page.goto(site.url + "/")
    box = page.locator(f"{CHAT_BOX}[data-nonce]")
    try:
        box.wait_for(state="attached")
    except PlaywrightTimeoutError:
        failed = [{n: c["detail"] for n, c in r["checks"].items() if not c["pass"]} for r in site.sensor_reports]
        pytest.fail(f"no nonce in the page; the checks each report failed: {failed or 'no report came'}")
    nonce = box.get_attribute("data-nonce")
    assert nonce == site.nonce
    return nonce


# -- the edge over plain HTTP ------------------------------------------------------------------------


def test_sensor_is_a_mode_with_its_settings():
    assert "sensor" in ANTIBOT_MODES
    config = SiteConfig(antibot="sensor")
    assert config.sensor_delay == 0.3
    assert config.sensor_required is None
    config.update({"sensor_delay": 1, "sensor_required": "webdriver, screen"})
    assert config.sensor_delay == 1.0
    assert "gpu" not in DEFAULT_REQUIRED and "cdp_runtime" not in DEFAULT_REQUIRED
    assert set(DEFAULT_REQUIRED) | {"gpu", "cdp_runtime"} == set(CHECKS)


def test_page_is_served_without_the_nonce_and_with_the_sensor_first(site):
    html, page_id = load_page(site)
    assert site.nonce not in html
    assert "data-nonce" not in html and "search_nonce" not in html
    head = html.index("<head>") + len("<head>")
    assert html[head:].startswith(f'<script src="{SCRIPT_PATH}?p={page_id}"></script>')
    params = json.loads(re.search(r"var wpaicgParams = (\{.*\});", html).group(1))
    assert params["ajax_url"].endswith(AJAX) and "search_nonce" not in params
    assert 'data-post-id="4"' in html
    assert site.sensor.counters["pages"] == 1
    site.config.antibot = None  # the same page without the front still carries it
    assert f'data-nonce="{site.nonce}"' in request(site, "GET", "/").text


def test_edge_serves_the_sensor_and_botd(site):
    _, page_id = load_page(site)
    script = request(site, "GET", f"{SCRIPT_PATH}?p={page_id}")
    assert script.status == 200 and script.header("Content-Type").startswith("text/javascript")
    assert "__SETTINGS__" not in script.text and f'"page": "{page_id}"' in script.text
    assert '"delayMs": 300' in script.text
    assert script.header("X-Powered-By") is None  # the edge's answer, not PHP's
    botd = request(site, "GET", "/cdn-cgi/sensor/v1/botd.esm.js")
    assert botd.status == 200 and "Fingerprint BotD v2.0.0" in botd.text and "export {" in botd.text
    assert request(site, "GET", "/cdn-cgi/sensor/v1/nothing").status == 404


def test_report_that_passes_gets_the_nonce_and_a_token_that_opens_the_chat(site):
    _, page_id = load_page(site)
    answer = send_report(site, page_id, passing_checks())
    assert answer.status == 200
    granted = answer.json()
    assert granted["passed"] is True and granted["nonce"] == site.nonce and granted["token"].startswith(page_id)
    report = site.sensor_reports[0]
    assert report["page"] == page_id and report["passed"] and report["nonce_issued"] and report["failed"] == []
    assert report["checks"]["http_headers"]["pass"] is True
    assert report["required"] == list(DEFAULT_REQUIRED)

    allowed = chat(site, token=granted["token"])
    assert allowed.status == 200 and "text/event-stream" in allowed.header("Content-type")
    assert "Reply to hi." in "".join(re.findall(r'"content": "([^"]*)"', allowed.text))

    refused = [
        chat(site),
        chat(site, token=page_id + ".0123456789abcdef0123456789abcdef"),
        chat(site, token=granted["token"], ua=HEADLESS_UA),
    ]
    for answer in refused:
        assert answer.status == 403
        assert answer.json()["sensor"] and answer.json()["error"] == "blocked"
    reasons = [v["reasons"] for v in site.sensor.verdicts]
    assert reasons == [[], ["no sensor token"], ["invalid sensor token"], ["HeadlessChrome in User-Agent"]]
    assert site.stats.chat_requests == 1  # WordPress saw only the allowed one
    assert site.sensor.counters["chat_allowed"] == 1 and site.sensor.counters["chat_refused"] == 3
    # verdicts naming the page (through a valid token) are filed in its report
    assert [r["allowed"] for r in site.sensor_reports[0]["requests"]] == [True, False]


def test_a_failed_required_check_withholds_the_nonce(site):
    _, page_id = load_page(site)
    answer = send_report(site, page_id, passing_checks(screen=False)).json()
    assert answer == {"passed": False}
    report = site.sensor_reports[0]
    assert report["failed"] == ["screen"] and not report["passed"] and not report["nonce_issued"]
    # optional checks do not gate by default
    _, page_id = load_page(site)
    assert send_report(site, page_id, passing_checks(gpu=False, cdp_runtime=False)).json()["passed"] is True
    # the edge's own header check gates as well: a page asked for by headless Chrome never passes
    _, page_id = load_page(site, ua=HEADLESS_UA)
    assert send_report(site, page_id, passing_checks()).json()["passed"] is False
    assert site.sensor_reports[-1]["failed"] == ["http_headers"]


def test_required_set_is_a_config_field(site):
    site.config.sensor_required = "webdriver"
    _, page_id = load_page(site)
    assert send_report(site, page_id, passing_checks(screen=False, botd=False)).json()["passed"] is True
    site.config.sensor_required = "gpu,webdriver"
    _, page_id = load_page(site)
    assert send_report(site, page_id, passing_checks(gpu=False)).json()["passed"] is False
    assert site.sensor_reports[-1]["required"] == ["gpu", "webdriver"]
    site.config.sensor_required = "no_such_check"  # a misspelt name fails closed
    _, page_id = load_page(site)
    assert send_report(site, page_id, passing_checks()).json()["passed"] is False


def test_reports_for_unknown_or_judged_pages_are_refused(site):
    assert send_report(site, "feedfeedfeedfeed", passing_checks()).status == 400
    _, page_id = load_page(site)
    assert send_report(site, page_id, passing_checks()).status == 200
    assert send_report(site, page_id, passing_checks()).status == 400
    assert len(site.sensor_reports) == 1


def test_control_endpoint_lists_reports_and_reset_clears_them(site):
    _, page_id = load_page(site)
    send_report(site, page_id, passing_checks(webdriver=False))
    chat(site)
    state = request(site, "GET", "/__replica__/sensor").json()
    assert [r["page"] for r in state["reports"]] == [page_id]
    assert state["reports"][0]["failed"] == ["webdriver"]
    assert len(state["verdicts"]) == 1 and state["counters"]["chat_refused"] == 1
    request(site, "POST", "/__replica__/reset")
    assert site.sensor_reports == [] and site.sensor.verdicts == [] and site.sensor.counters["pages"] == 0


def test_config_endpoint_sets_the_sensor_fields(site):
    body = json.dumps({"sensor_delay": 0.5, "sensor_required": "botd"}).encode()
    answer = request(site, "POST", "/__replica__/config", body=body, headers={"Content-Type": "application/json"})
    assert answer.status == 200
    assert site.config.sensor_delay == 0.5 and site.config.sensor_required == "botd"


# -- in Chromium ---------------------------------------------------------------------------------------


def test_plain_playwright_headless_is_caught(page: Page, site):
    """pytest-playwright's own page: default context, 1280x720 viewport, HeadlessChrome User-Agent."""
    page.goto(site.url + "/")
    report = wait_report(site)
    checks = report["checks"]
    assert set(checks) == set(CHECKS)
    screen = checks["screen"]["detail"]
    assert not checks["screen"]["pass"]
    assert screen["screen"]["width"] == screen["inner"]["width"] == 1280
    assert screen["screen"]["height"] == screen["inner"]["height"] == 720
    runtime = checks["cdp_runtime"]["detail"]
    assert not checks["cdp_runtime"]["pass"]
    assert runtime["nestedNameReads"] >= 1 and runtime["directNameReads"] >= 2
    assert runtime["stackReads"] == 0  # the older Error.stack probe no longer tells anything
    assert not checks["user_agent"]["pass"] and not checks["http_headers"]["pass"]
    assert not checks["worker_user_agent"]["pass"]
    assert checks["botd"]["detail"]["bot"] is True and checks["botd"]["detail"]["botKind"] == "headless_chrome"
    for name in ("webdriver", "ua_brands", "chrome_object", "plugins", "languages", "permissions", "stack"):
        assert checks[name]["pass"], name
    renderer = checks["gpu"]["detail"]["renderer"]
    if re.search("SwiftShader|llvmpipe", renderer):
        assert not checks["gpu"]["pass"]
    assert not report["passed"] and not report["nonce_issued"]
    assert page.locator(CHAT_BOX).get_attribute("data-nonce") is None
    assert page.evaluate("wpaicgParams.search_nonce") is None


def test_a_normal_user_agent_satisfies_botd_but_not_screen(browser: Browser, site):
    """Only the User-Agent changed: botd and the UA checks pass, the screen and Runtime tells remain."""
    context = browser.new_context(user_agent=normal_user_agent(browser.version))
    try:
        context.new_page().goto(site.url + "/")
        report = wait_report(site)
    finally:
        context.close()
    checks = verdict_of(report)
    assert report["checks"]["botd"]["detail"] == {"bot": False, "botKind": None, "detectors": []}
    for name in ("botd", "user_agent", "worker_user_agent", "http_headers", "ua_brands", "webdriver"):
        assert checks[name], name
    assert not checks["screen"] and not checks["cdp_runtime"]
    assert report["failed"] == ["screen"]


def test_a_screen_larger_than_the_viewport_passes_the_screen_check(browser: Browser, site):
    context = browser.new_context(screen=SCREEN)
    try:
        context.new_page().goto(site.url + "/")
        report = wait_report(site)
    finally:
        context.close()
    screen = report["checks"]["screen"]
    assert screen["pass"], screen
    assert screen["detail"]["screen"]["width"] == 1920 and screen["detail"]["inner"]["width"] == 1280


@pytest.mark.parametrize("delay", [0.3, 0.8])
def test_the_nonce_appears_only_after_the_delay_past_load(desktop_page: Page, site, delay):
    site.config.sensor_delay = delay
    desktop_page.add_init_script(NONCE_WATCH)
    open_with_nonce(desktop_page, site)
    assert desktop_page.evaluate("wpaicgParams.search_nonce") == site.nonce
    seen, loaded = desktop_page.evaluate(
        "[window.__nonceSeenAt, performance.getEntriesByType('navigation')[0].loadEventStart]"
    )
    assert seen - loaded >= delay * 1000 - 1  # performance.now() is coarsened to a fraction of a millisecond
    report = wait_report(site)
    assert report["passed"] and report["failed"] == []
    assert verdict_of(report)["screen"] and not verdict_of(report)["cdp_runtime"]
    assert site.sensor.wait(lambda sensor: sensor.reports[0]["nonce"] is not None, WAIT)
    assert site.sensor_reports[0]["nonce"]["afterLoadMs"] >= delay * 1000


def test_a_required_check_that_fails_keeps_the_nonce_out_of_the_page(desktop_page: Page, site):
    site.config.sensor_required = ",".join((*DEFAULT_REQUIRED, "cdp_runtime"))
    desktop_page.goto(site.url + "/")
    report = wait_report(site)
    assert report["failed"] == ["cdp_runtime"] and not report["nonce_issued"]
    assert desktop_page.locator(CHAT_BOX).get_attribute("data-nonce") is None
    assert desktop_page.evaluate("wpaicgParams.search_nonce") is None


def test_a_chat_from_page_evaluate_is_refused_and_the_page_own_send_gets_through(desktop_page: Page, site):
    open_with_nonce(desktop_page, site)
    for via in ("fetch", "xhr"):
        answer = desktop_page.evaluate(EVALUATE_CHAT, via)
        assert answer["status"] == 403 and json.loads(answer["body"])["sensor"]
    desktop_page.fill(TYPING, "hello")
    desktop_page.press(TYPING, "Enter")
    expect(desktop_page.locator(".wpaicg-ai-message .wpaicg-chat-message").last).to_have_text("Reply to hello.")

    first, second, third = wait_verdicts(site, 3)
    for tainted in (first, second):
        assert not tainted["allowed"] and tainted["token"] == "missing"
        assert tainted["stack"].startswith("tainted") and "playwright_evaluate" in tainted["stack"]
    assert third["allowed"] and third["token"] == "valid" and third["stack"] == "clean"
    assert site.stats.chat_requests == 1

    assert site.sensor.wait(lambda sensor: not sensor.reports[0]["checks"]["stack"]["pass"], WAIT)
    stack = site.sensor_reports[0]["stack"]
    assert stack["counts"]["fetch"]["tainted"] == 1 and stack["counts"]["xhr"]["tainted"] >= 1
    assert stack["markers"]["playwright_utility_script"] >= 1
    sample = next(s for s in stack["samples"] if s["kind"] == "fetch")
    assert "UtilityScript.evaluate" in sample["stack"]


def test_dom_queries_are_seen_from_the_main_world_only(desktop_page: Page, site):
    open_with_nonce(desktop_page, site)
    # Playwright's own DOM work runs in its isolated world: the page's wrappers never see it
    desktop_page.content()
    desktop_page.wait_for_selector(CHAT_BOX)
    desktop_page.locator(CHAT_BOX).get_attribute("data-type")
    desktop_page.locator(".wpaicg-chat-shortcode-messages").inner_text()
    desktop_page.query_selector_all("li")
    # what page.evaluate and locator.evaluate run is page code, called from Playwright's frames
    desktop_page.evaluate("document.querySelectorAll('.probe-one').length")
    desktop_page.locator(CHAT_BOX).evaluate("box => box.querySelector('.probe-two')")
    assert site.sensor.wait(lambda sensor: stack_counts(sensor)["query"]["tainted"] >= 2, WAIT)
    stack = site.sensor_reports[0]["stack"]
    assert [s["what"] for s in stack["samples"]] == [".probe-one", ".probe-two"]
    assert stack["counts"]["query"]["tainted"] == 2
    assert not site.sensor_reports[0]["checks"]["stack"]["pass"]


def test_an_init_script_function_run_from_a_timer_looks_clean(desktop_page: Page, site):
    """The stack shows where a call came from, not who scheduled it: a timer cuts Playwright's frames off."""
    desktop_page.add_init_script(INIT_CHAT)
    open_with_nonce(desktop_page, site)
    calls = [
        "window.__initChat('fetch')",  # called from evaluate: Playwright's frames are below it
        "setTimeout(() => window.__initChat('fetch'), 0)",  # the arrow is evaluate's code, named so in the stack
        "setTimeout(window.__initChat, 0, 'fetch')",  # only the init script's frame is left
        "setTimeout(window.__initChat, 0, 'xhr')",
    ]
    verdicts = []
    for count, expression in enumerate(calls, 1):
        desktop_page.evaluate(expression)
        verdicts.append(wait_verdicts(site, count)[-1])
    assert [v["allowed"] for v in verdicts] == [False, False, True, True]
    assert verdicts[0]["stack"] == "tainted playwright_utility_script playwright_evaluate"
    assert verdicts[1]["stack"] == "tainted playwright_evaluate"
    assert verdicts[2]["stack"] == verdicts[3]["stack"] == "clean"
    assert site.stats.chat_requests == 2


def test_the_wrapped_fetch_still_calls_the_page_fetch(desktop_page: Page, site):
    desktop_page.add_init_script(
        "window.__calls = []; const pageFetch = window.fetch;"
        "window.__spy = window.fetch = function (input, init) {"
        " window.__calls.push(String(input && input.url || input)); return pageFetch.apply(this, arguments); };"
    )
    open_with_nonce(desktop_page, site)
    desktop_page.fill(TYPING, "through the spy")
    desktop_page.press(TYPING, "Enter")
    expect(desktop_page.locator(".wpaicg-ai-message .wpaicg-chat-message").last).to_have_text(
        "Reply to through the spy."
    )
    calls = desktop_page.evaluate("window.__calls")
    assert any(url.endswith(AJAX) for url in calls)
    assert any("/cdn-cgi/sensor/v1/report" in url for url in calls)  # the sensor's own posts too
    assert desktop_page.evaluate("window.fetch !== window.__spy")
    assert wait_verdicts(site, 1)[0]["allowed"]


def test_chromium_without_a_devtools_client_passes_cdp_runtime(site, tmp_path: Path):
    """The same Chromium launched on the page directly: no CDP session, so no Runtime domain."""
    command = [
        find_browser().path,
        "--headless=new",
        "--no-sandbox",
        f"--user-data-dir={tmp_path / 'profile'}",
        *CHROMIUM_ARGS,
        site.url + "/",
    ]
    with own_session(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        report = wait_report(site)
    runtime = report["checks"]["cdp_runtime"]
    assert runtime["pass"], runtime
    assert runtime["detail"]["nestedNameReads"] == 0 and runtime["detail"]["directNameReads"] == 1


# -- headed, under Xvfb ------------------------------------------------------------------------------------


@pytest.mark.headed
def test_headed_chromium_without_viewport_emulation_passes_every_required_check(
    browser_type: BrowserType, xvfb_display: str, site
):
    browser = browser_type.launch(
        headless=False,
        executable_path=find_browser().path,
        args=list(CHROMIUM_ARGS),
        env={**os.environ, "DISPLAY": xvfb_display},
    )
    try:
        page = browser.new_context(no_viewport=True).new_page()
        # A new window is on the X screen a moment after the browser starts; until then its outer size is
        # 0 x 0, which the screen check rightly fails (headless Chromium once looked just like that).
        page.wait_for_function("window.outerWidth > 0 && window.outerHeight > 0")
        open_with_nonce(page, site)
        report = wait_report(site)
    finally:
        browser.close()
    assert report["passed"] and report["failed"] == []
    assert not report["checks"]["cdp_runtime"]["pass"]  # the DevTools client is still there
