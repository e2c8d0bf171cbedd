"""The "sensor" anti-bot front: a bot-detection script the edge puts into every page, as bot managers do.

A site behind it (``SiteConfig(antibot="sensor")``) is served through an edge that rewrites its pages:
the chat nonce is taken out of the HTML (AI Power's ``data-nonce`` attribute and
``wpaicgParams.search_nonce``) and ``static/sensor.js`` is put first in ``<head>``, so it runs before
any other script of the page. The script runs the checks below, posts them to the edge, and only if
every *required* check passed does the edge answer with the nonce and a sensor token; the script
then writes the nonce into the page ``SiteConfig.sensor_delay`` seconds after the load event.

The script also wraps ``window.fetch``, ``XMLHttpRequest`` (``open``/``send``) and ``querySelector``/
``querySelectorAll`` of ``Document`` and ``Element``, and looks at each call's ``new Error().stack``
for frames automation tools leave under the code they run (Playwright's ``UtilityScript.evaluate``
and ``eval at evaluate``, Puppeteer's ``pptr:``, Selenium's ``callFunction``, ...). A chat request
gets the ``X-Sensor`` token only from a clean stack on a page that passed; the edge refuses chat
requests without a valid token (403, a short JSON body naming the sensor).

The checks, by the name they carry in a report; all but ``cdp_runtime`` and ``gpu`` are required unless
``SiteConfig.sensor_required`` names another set:

- ``botd``: ``@fingerprintjs/botd`` (vendored, MIT) must say "not a bot".
- ``webdriver``: ``navigator.webdriver`` is ``false``.
- ``user_agent``: no ``HeadlessChrome`` in ``navigator.userAgent``.
- ``ua_brands``: no ``HeadlessChrome`` in ``navigator.userAgentData.brands``.
- ``worker_user_agent``: a dedicated Worker's ``navigator.userAgent`` has no ``HeadlessChrome`` and is the page's.
- ``http_headers`` (judged by the edge): no ``HeadlessChrome`` in ``User-Agent`` or ``sec-ch-ua`` of the page
  request or of the report.
- ``chrome_object``: ``window.chrome`` is an object with ``loadTimes``, ``csi`` and ``app``.
- ``plugins``: ``navigator.plugins`` and ``navigator.mimeTypes`` are non-empty.
- ``languages``: ``navigator.languages`` is non-empty.
- ``permissions``: ``Notification.permission`` agrees with ``permissions.query({name: "notifications"})``.
- ``screen``: the screen holds the window (inner and outer sizes) and is not exactly the viewport.
- ``cdp_runtime`` (not required): an Error whose ``name`` getter counts its reads, passed to ``console.debug``
  nested in an object and alone. A DevTools client holding the Runtime domain (Playwright always does) makes
  Chromium build remote objects for console arguments, which reads ``name``: nested 1 read instead of 0,
  alone 2 instead of 1. (An Error's ``stack`` getter, the older form of this probe, is read by neither.)
- ``gpu`` (not required): the WebGL renderer is not a software one (SwiftShader, llvmpipe, ...).
- ``stack``: no fetch/XHR/DOM-query call so far came from a stack with automation frames.

Every report is kept: ``site.sensor_reports`` (a snapshot list of dicts), ``site.sensor`` (this
object: ``reports``, ``verdicts``, ``counters``, ``wait``), and ``GET /__replica__/sensor``. A report
is ``{"page", "path", "time", "checks": {name: {"pass": bool, "detail": ...}}, "required", "failed",
"passed", "nonce_issued", "stack", "nonce", "requests", "elapsed_ms"}``: ``checks`` is flat, one entry
per check; ``stack`` holds the page's call counts (``fetch``/``xhr``/``query``: calls and tainted ones),
markers seen and sample stacks, kept current by the page; ``nonce`` becomes ``{"afterLoadMs": n}`` once
the script wrote it; ``requests`` holds the edge's verdict on each chat request naming the page (also
in ``sensor.verdicts``, with those naming no page).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .antibot import is_chat_request

if TYPE_CHECKING:
    from .config import SiteConfig
    from .exchange import Exchange
    from .server import ReplicaSite

__all__ = [
    "CHECKS",
    "DEFAULT_REQUIRED",
    "REPORT_PATH",
    "SCRIPT_PATH",
    "SENSOR_PREFIX",
    "TOKEN_HEADER",
    "Sensor",
    "required_checks",
]

Headers = list[tuple[str, str]]

SENSOR_PREFIX = "/cdn-cgi/sensor/"
SCRIPT_PATH = SENSOR_PREFIX + "v1/sensor.js"
BOTD_PATH = SENSOR_PREFIX + "v1/botd.esm.js"
REPORT_PATH = SENSOR_PREFIX + "v1/report"
UPDATE_PATH = SENSOR_PREFIX + "v1/update"
TOKEN_HEADER = "X-Sensor"
SENSOR_NAME = "replica-edge-sensor/1"
CHECKS = (
    "botd",
    "webdriver",
    "user_agent",
    "ua_brands",
    "worker_user_agent",
    "http_headers",
    "chrome_object",
    "plugins",
    "languages",
    "permissions",
    "screen",
    "cdp_runtime",
    "gpu",
    "stack",
)
DEFAULT_REQUIRED = tuple(name for name in CHECKS if name not in ("cdp_runtime", "gpu"))
MAX_PAGES = 4096  # pages remembered at once; the oldest are forgotten first
MAX_VERDICTS = 4096  # chat verdicts kept on the sensor itself (each report keeps its own)
_HEADLESS = re.compile(r"HeadlessChrome")
_STATIC = Path(__file__).with_name("static")
_JS = "text/javascript; charset=UTF-8"
_JSON = "application/json; charset=UTF-8"
_HEAD = re.compile(rb"<head\b[^>]*>", re.IGNORECASE)
_DATA_NONCE = re.compile(rb'\sdata-nonce="[^"]*"')
# wpaicgParams is PHP's json_encode: the key and its value, with the comma on either side
_SEARCH_NONCE = (
    re.compile(rb'"search_nonce":"[^"]*",'),
    re.compile(rb',"search_nonce":"[^"]*"'),
    re.compile(rb'"search_nonce":"[^"]*"'),
)


def required_checks(config: SiteConfig) -> tuple[str, ...]:
    """The checks that gate the nonce: ``config.sensor_required`` (names split on commas or spaces), or
    every check but ``cdp_runtime`` and ``gpu`` when it is None. An unknown name can never pass."""
    value = config.sensor_required
    if value is None:
        return DEFAULT_REQUIRED
    return tuple(name for name in re.split(r"[\s,]+", value) if name)


def strip_nonce(page: bytes) -> bytes:
    """``page`` without AI Power's nonce: no ``data-nonce`` attribute, no ``search_nonce`` parameter."""
    page = _DATA_NONCE.sub(b"", page)
    for pattern in _SEARCH_NONCE:
        page = pattern.sub(b"", page)
    return page


def _headless(value: str) -> bool:
    """Whether a User-Agent or ``sec-ch-ua`` value names headless Chrome."""
    return bool(_HEADLESS.search(value))


def _edge_headers(content_type: str) -> Headers:
    """What the edge sends with an answer of its own."""
    return [("Content-Type", content_type), ("Connection", "close"), ("Cache-Control", "no-store")]


@dataclass
class _Page:
    """One page served through the sensor, until its report and after."""

    id: str
    path: str
    served: float
    user_agent: str
    sec_ch_ua: str
    delay: float
    report: dict[str, Any] | None = None


class Sensor:
    """The sensor front of one site: rewrites its pages, judges reports, gates chat requests."""

    def __init__(self, site: ReplicaSite) -> None:
        self.site = site
        self._lock = threading.Condition()
        self._secret = secrets.token_bytes(32)
        self._pages: OrderedDict[str, _Page] = OrderedDict()
        self._reports: list[dict[str, Any]] = []
        self._verdicts: list[dict[str, Any]] = []
        self._counters = dict.fromkeys(("pages", "reports", "passed", "failed", "chat_allowed", "chat_refused"), 0)

    # -- what tests read ---------------------------------------------------------------------------

    @property
    def reports(self) -> list[dict[str, Any]]:
        """Every report received, oldest first, as a snapshot (later updates are not seen in it)."""
        with self._lock:
            return copy.deepcopy(self._reports)

    @property
    def verdicts(self) -> list[dict[str, Any]]:
        """The edge's verdict on every chat request it screened, oldest first (a snapshot)."""
        with self._lock:
            return copy.deepcopy(self._verdicts)

    @property
    def counters(self) -> dict[str, int]:
        """Pages served, reports received (passed/failed), chat requests allowed/refused."""
        with self._lock:
            return dict(self._counters)

    def snapshot(self) -> dict[str, Any]:
        """Reports, verdicts and counters at once (the ``/__replica__/sensor`` answer)."""
        with self._lock:
            return copy.deepcopy({"reports": self._reports, "verdicts": self._verdicts, "counters": self._counters})

    def wait(self, condition: Callable[[Sensor], bool], timeout: float = 15.0) -> bool:
        """Block until ``condition(self)`` holds, woken by each report, update or verdict; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not condition(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
            return True

    def reset(self) -> None:
        """Forget every page, report and verdict, and zero the counters."""
        with self._lock:
            self._pages.clear()
            self._reports.clear()
            self._verdicts.clear()
            for name in self._counters:
                self._counters[name] = 0
            self._lock.notify_all()

    # -- screening ---------------------------------------------------------------------------------

    def screen(self, ex: Exchange) -> bool:
        """Answer ``ex`` at the edge (its own files and endpoints, refused chats); False lets it through."""
        if ex.path.startswith(SENSOR_PREFIX):
            self._endpoint(ex)
            return True
        if is_chat_request(ex):
            return self._chat(ex)
        if ex.method == "GET":
            self._rewrite_page(ex)
        return False

    def _rewrite_page(self, ex: Exchange) -> None:
        """Make the HTML WordPress answers with pass through the edge: nonce out, sensor in."""
        deliver = ex.respond

        def respond(status: int, headers: Iterable[tuple[str, str]], body: bytes = b"", *, php: bool = True) -> None:
            headers = list(headers)
            content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
            if status == 200 and content_type.lower().startswith("text/html") and _HEAD.search(body):
                page = self._new_page(ex)
                body = self.rewrite(body, page.id)
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            deliver(status, headers, body, php=php)

        ex.respond = respond  # type: ignore[method-assign]

    def rewrite(self, page: bytes, page_id: str) -> bytes:
        """``page`` as the edge serves it: without the nonce, the sensor first thing in ``<head>``."""
        tag = (
            f'<script src="{SCRIPT_PATH}?p={page_id}"></script><link rel="modulepreload" href="{BOTD_PATH}">'
        ).encode()
        page = strip_nonce(page)
        head = _HEAD.search(page)
        return page if head is None else page[: head.end()] + tag + page[head.end() :]

    def _new_page(self, ex: Exchange) -> _Page:
        """Remember a page being served, with the request facts the edge judges itself."""
        page = _Page(
            id=secrets.token_hex(8),
            path=ex.path,
            served=time.time(),
            user_agent=ex.headers.get("user-agent", ""),
            sec_ch_ua=ex.headers.get("sec-ch-ua", ""),
            delay=self.site.config.sensor_delay,
        )
        with self._lock:
            self._pages[page.id] = page
            while len(self._pages) > MAX_PAGES:
                self._pages.popitem(last=False)
            self._counters["pages"] += 1
        return page

    # -- the edge's own endpoints ------------------------------------------------------------------

    def _endpoint(self, ex: Exchange) -> None:
        """The sensor script, the botd module, the report and update endpoints."""
        if ex.path == SCRIPT_PATH and ex.method in ("GET", "HEAD"):
            self._script(ex)
        elif ex.path == BOTD_PATH and ex.method in ("GET", "HEAD"):
            data = (_STATIC / "botd.esm.js").read_bytes()
            ex.respond(200, [*_edge_headers(_JS), ("Content-Length", str(len(data)))], data, php=False)
        elif ex.path == REPORT_PATH and ex.method == "POST":
            self._report(ex)
        elif ex.path == UPDATE_PATH and ex.method == "POST":
            self._update(ex)
        else:
            ex.respond(404, _edge_headers("text/plain; charset=UTF-8"), b"Not Found", php=False)

    def _script(self, ex: Exchange) -> None:
        """``sensor.js`` with the settings of the page that asked for it."""
        page_id = ex.query.get("p", "")
        with self._lock:
            page = self._pages.get(page_id)
        delay = page.delay if page is not None else self.site.config.sensor_delay
        settings = {
            "page": page_id,
            "report": REPORT_PATH,
            "update": UPDATE_PATH,
            "botd": BOTD_PATH,
            "delayMs": max(0, round(delay * 1000)),
        }
        text = (_STATIC / "sensor.js").read_text(encoding="utf-8")
        text = text.replace("__SETTINGS__", json.dumps(settings).replace("<", "\\u003c"))
        ex.respond(200, _edge_headers(_JS), text.encode("utf-8"), php=False)

    def _answer(self, ex: Exchange, status: int, value: Any) -> None:
        """A JSON answer from the edge."""
        ex.respond(status, _edge_headers(_JSON), json.dumps(value).encode("utf-8"), php=False)

    def _report(self, ex: Exchange) -> None:
        """Judge a page's report: the nonce and a token if every required check passed."""
        body = ex.json if ex.json_ok and isinstance(ex.json, dict) else {}
        checks = body.get("checks")
        page_id = str(body.get("page", ""))
        with self._lock:
            page = self._pages.get(page_id)
            known = page is not None and page.report is None
        if not known or page is None or not isinstance(checks, dict):
            self._answer(ex, 400, {"passed": False, "error": "unknown page or bad report"})
            return
        flat: dict[str, Any] = {
            str(name): {"pass": bool(value.get("pass")), "detail": value.get("detail")}
            for name, value in checks.items()
            if isinstance(value, dict)
        }
        flat["http_headers"] = self._http_check(page, ex)
        required = list(required_checks(self.site.config))
        failed = [name for name in required if not flat.get(name, {}).get("pass")]
        passed = not failed
        report: dict[str, Any] = {
            "page": page.id,
            "path": page.path,
            "time": time.time(),
            "checks": flat,
            "required": required,
            "failed": failed,
            "passed": passed,
            "nonce_issued": passed,
            "stack": body.get("stack"),
            "nonce": None,
            "requests": [],
            "elapsed_ms": body.get("elapsedMs"),
        }
        with self._lock:
            page.report = report
            self._reports.append(report)
            self._counters["reports"] += 1
            self._counters["passed" if passed else "failed"] += 1
            self._lock.notify_all()
        if passed:
            self._answer(ex, 200, {"passed": True, "nonce": self.site.nonce, "token": self.token_for(page.id)})
        else:
            self._answer(ex, 200, {"passed": False})

    def _http_check(self, page: _Page, ex: Exchange) -> dict[str, Any]:
        """The edge's own check: ``User-Agent`` and ``sec-ch-ua`` of the page request and of the report."""
        seen = {
            "page": {"user_agent": page.user_agent, "sec_ch_ua": page.sec_ch_ua},
            "report": {"user_agent": ex.headers.get("user-agent", ""), "sec_ch_ua": ex.headers.get("sec-ch-ua", "")},
        }
        clean = not any(_headless(value) for request in seen.values() for value in request.values())
        return {"pass": clean, "detail": seen}

    def _update(self, ex: Exchange) -> None:
        """Later news from a page: stack counts since the report, or when the nonce went in."""
        body = ex.json if ex.json_ok and isinstance(ex.json, dict) else {}
        with self._lock:
            page = self._pages.get(str(body.get("page", "")))
            report = page.report if page is not None else None
            if report is not None:
                stack = body.get("stack")
                if isinstance(stack, dict):
                    report["stack"] = stack
                    counts = stack.get("counts") or {}
                    tainted = sum(int((counts.get(kind) or {}).get("tainted", 0)) for kind in ("fetch", "xhr", "query"))
                    report["checks"]["stack"] = {"pass": tainted == 0, "detail": stack}
                if isinstance(body.get("nonce"), dict):
                    report["nonce"] = body["nonce"]
                self._lock.notify_all()
        self._answer(ex, 200 if report is not None else 400, {"ok": report is not None})

    # -- tokens and chat requests ------------------------------------------------------------------

    def token_for(self, page_id: str) -> str:
        """The ``X-Sensor`` value a page that passed gets: its id and a MAC of it."""
        mac = hmac.new(self._secret, page_id.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
        return f"{page_id}.{mac}"

    def _token_page(self, token: str) -> _Page | None:
        """The page a token was issued to, if the token is genuine and the page passed."""
        page_id, _, _mac = token.partition(".")
        if not hmac.compare_digest(token.encode("utf-8"), self.token_for(page_id).encode("utf-8")):
            return None
        with self._lock:
            page = self._pages.get(page_id)
        if page is None or page.report is None or not page.report["passed"]:
            return None
        return page

    def _chat(self, ex: Exchange) -> bool:
        """Let a chat request through only with a valid token and no headless User-Agent; else 403."""
        token = ex.headers.get(TOKEN_HEADER.lower(), "")
        page = self._token_page(token) if token else None
        user_agent = ex.headers.get("user-agent", "")
        sec_ch_ua = ex.headers.get("sec-ch-ua", "")
        reasons = []
        if not token:
            reasons.append("no sensor token")
        elif page is None:
            reasons.append("invalid sensor token")
        if _headless(user_agent):
            reasons.append("HeadlessChrome in User-Agent")
        if _headless(sec_ch_ua):
            reasons.append("HeadlessChrome in sec-ch-ua")
        page_id = page.id if page is not None else ex.headers.get("x-sensor-page", "")
        verdict = {
            "time": time.time(),
            "method": ex.method,
            "path": ex.path,
            "page": page_id or None,
            "token": "valid" if page is not None else "invalid" if token else "missing",
            "stack": ex.headers.get("x-sensor-stack"),
            "user_agent": user_agent,
            "sec_ch_ua": sec_ch_ua,
            "allowed": not reasons,
            "reasons": reasons,
        }
        with self._lock:
            self._verdicts.append(verdict)
            del self._verdicts[:-MAX_VERDICTS]
            named = self._pages.get(page_id)
            if named is not None and named.report is not None:
                named.report["requests"].append(dict(verdict))
            self._counters["chat_allowed" if not reasons else "chat_refused"] += 1
            self._lock.notify_all()
        if not reasons:
            return False
        body = {"error": "blocked", "sensor": SENSOR_NAME, "reason": "; ".join(reasons)}
        self._answer(ex, 403, body)
        return True
