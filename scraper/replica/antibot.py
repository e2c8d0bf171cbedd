"""Anti-bot fronts a site can sit behind: Cloudflare's challenges and block page, DDoS-Guard, Sucuri, Incapsula.

A client meets these on live sites before it ever reaches the chat plugin. Here they are switched per
site (``SiteConfig.antibot``) and behave as the real ones do towards a client: the JS challenge clears
by itself in a browser, the click challenge only for real input, the clearance cookie holds only for
the User-Agent it was issued to, and the vendor block pages never clear. Their answers come from the
edge, not from PHP, so they carry the vendor's headers and none of WordPress's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import secrets
import string
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .apps import APPS
from .config import ANTIBOT_MODES
from .wordpress import site_path

if TYPE_CHECKING:
    from .exchange import Exchange
    from .server import ReplicaSite

__all__ = ["CHALLENGE_PREFIX", "CLEARANCE_COOKIE", "INCAPSULA_RESOURCE", "AntiBot", "is_chat_request"]

Headers = list[tuple[str, str]]

CLEARANCE_COOKIE = "cf_clearance"
CHALLENGE_PREFIX = "/cdn-cgi/challenge-platform/"
ORCHESTRATE_PATH = CHALLENGE_PREFIX + "h/g/orchestrate/chl_page/v1"
INCAPSULA_RESOURCE = "/_Incapsula_Resource"
CLOUDFLARE_MODES = ("js_challenge", "js_challenge_never", "chat_challenge", "click_challenge", "block")
# The modes under which a pending challenge of each kind may still be solved.
SOLVABLE = {"js": ("js_challenge", "chat_challenge"), "click": ("click_challenge",)}
# Asked for by browsers on their own; challenging it would only add noise to the counters.
EXEMPT_PATHS = ("/favicon.ico",)
COLO = "LAX"
CLEARANCE_LIFETIME = 365 * 24 * 3600
MAX_PENDING = 4096  # challenges remembered at once; the oldest are forgotten first
_EARLY_SLACK = 0.05  # seconds a JS challenge may come back before its delay (timer granularity)
_HTML = "text/html; charset=UTF-8"
_NO_STORE = "private, max-age=0, no-store, no-cache, must-revalidate, post-check=0, pre-check=0"
_EPOCH = "Thu, 01 Jan 1970 00:00:01 GMT"
_FLOW = re.compile(r"^/cdn-cgi/challenge-platform/h/([gb])/flow/ov1/\d+:\d+:[\w-]+/([0-9a-f]{16})/([0-9a-f]+)$")
_WIDGET = re.compile(
    r"^/cdn-cgi/challenge-platform/h/b/turnstile/if/ov2/av0/rcv/([0-9a-z]+)/0x\w+/light/fbE/new/normal/auto/$"
)
_STATIC = Path(__file__).with_name("static")
_ALNUM = string.ascii_letters + string.digits


def _token(length: int, alphabet: str = _ALNUM) -> str:
    """Random text of ``length`` characters from ``alphabet``."""
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _new_ray() -> str:
    """A Ray ID: 16 hex digits (the colo is added in the header)."""
    return secrets.token_hex(8)


def _js_string(value: str) -> str:
    """A double-quoted JS string safe inside ``<script>`` (slashes escaped, as Cloudflare writes them)."""
    return json.dumps(value).replace("/", "\\/").replace("<", "\\u003c")


def _b64(value: str) -> str:
    """Base64 of a UTF-8 string (the form ``_cf_chl_opt.cRq`` carries request facts in)."""
    return base64.b64encode(value.encode("utf-8")).decode("ascii")


def _zone(ex: Exchange) -> str:
    """The host name the client asked for, reduced to characters safe in HTML and JS."""
    name = urlsplit("//" + ex.host).hostname or ""
    return re.sub(r"[^A-Za-z0-9.:-]", "", name) or "localhost"


def _script(name: str, settings: dict[str, Any]) -> str:
    """A static script of the front with its per-challenge settings put in."""
    text = (_STATIC / name).read_text(encoding="utf-8")
    return text.replace("__SETTINGS__", json.dumps(settings).replace("<", "\\u003c"))


def is_chat_request(ex: Exchange) -> bool:
    """Whether ``ex`` is a chat call of any plugin (what the chat-only challenge watches for): an admin-ajax
    POST (at the root or in WordPress's subfolder), or what a plugin's app says is its chat call."""
    if site_path(ex.path) == "/wp-admin/admin-ajax.php" and ex.method == "POST":
        return True
    return any(app.chat_call(ex) for app in APPS.values())


def cloudflare_headers(ray: str, content_type: str = _HTML) -> Headers:
    """What Cloudflare's edge sends with an answer of its own."""
    return [
        ("Content-Type", content_type),
        ("Connection", "close"),
        ("Cache-Control", _NO_STORE),
        ("Expires", _EPOCH),
        ("Server", "cloudflare"),
        ("CF-RAY", f"{ray}-{COLO}"),
    ]


def challenge_headers(ray: str) -> Headers:
    """The headers of the "Just a moment..." interstitial (``cf-mitigated`` is how a client tells it apart)."""
    return [
        ("Content-Type", _HTML),
        ("Connection", "close"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Cross-Origin-Resource-Policy", "same-origin"),
        ("Origin-Agent-Cluster", "?1"),
        (
            "Permissions-Policy",
            "accelerometer=(),autoplay=(),browsing-topics=(),camera=(),clipboard-read=(),"
            "clipboard-write=(),geolocation=(),gyroscope=(),hid=(),interest-cohort=(),magnetometer=(),"
            "microphone=(),payment=(),publickey-credentials-get=(),screen-wake-lock=(),serial=(),"
            "sync-xhr=(),usb=()",
        ),
        ("Referrer-Policy", "same-origin"),
        ("X-Content-Options", "nosniff"),
        ("X-Frame-Options", "SAMEORIGIN"),
        ("cf-mitigated", "challenge"),
        ("Cache-Control", _NO_STORE),
        ("Expires", _EPOCH),
        ("Vary", "Accept-Encoding"),
        ("Server", "cloudflare"),
        ("CF-RAY", f"{ray}-{COLO}"),
    ]


def pass_headers() -> Headers:
    """What Cloudflare adds to the site's own answers once a request is let through."""
    return [("Server", "cloudflare"), ("CF-RAY", f"{_new_ray()}-{COLO}"), ("cf-cache-status", "DYNAMIC")]


@dataclass
class _Challenge:
    """One interstitial handed out, until it is solved or forgotten."""

    kind: str  # "js" (solves itself) or "click" (needs a trusted click in the widget)
    issued: float  # time.monotonic() when served
    chash: str
    widget: str = ""
    widget_seen: bool = False


class AntiBot:
    """The front of one site: lets a request through to WordPress, or answers it itself."""

    def __init__(self, site: ReplicaSite) -> None:
        self.site = site
        self._lock = threading.Lock()
        self._secret = secrets.token_bytes(32)
        self._flagged = False
        self._pending: OrderedDict[str, _Challenge] = OrderedDict()
        self._widgets: dict[str, str] = {}  # widget id -> ray of its challenge
        self.sitekey = "0x4AAAAAAA" + _token(14)

    # -- clearance ---------------------------------------------------------------------------------

    def clearance_for(self, user_agent: str) -> str:
        """The ``cf_clearance`` value that holds for ``user_agent``: bound to it, as Cloudflare binds it."""
        with self._lock:
            secret = self._secret
        return hmac.new(secret, user_agent.encode("utf-8"), hashlib.sha256).hexdigest()[:43]

    def cleared(self, ex: Exchange) -> bool:
        """Whether the request carries a clearance issued to its own User-Agent."""
        token = ex.cookies.get(CLEARANCE_COOKIE)
        if not token:
            return False
        expected = self.clearance_for(ex.headers.get("user-agent", ""))
        return hmac.compare_digest(token.encode("utf-8"), expected.encode("ascii"))

    def revoke(self) -> None:
        """Make every clearance issued so far worthless (as when Cloudflare's rules change)."""
        with self._lock:
            self._secret = secrets.token_bytes(32)

    @property
    def flagged(self) -> bool:
        """Whether a chat request without clearance has put the whole site behind the challenge."""
        with self._lock:
            return self._flagged

    def unflag(self) -> None:
        """Let pages through without clearance again (chat_challenge mode)."""
        with self._lock:
            self._flagged = False

    # -- screening ---------------------------------------------------------------------------------

    def screen(self, ex: Exchange) -> bool:
        """Answer ``ex`` here when the front stops or handles it; False lets it through to WordPress."""
        mode = self.site.config.antibot
        if mode not in ANTIBOT_MODES or ex.path in EXEMPT_PATHS:
            return False
        if mode == "block":
            ray = _new_ray()
            self._served(ex, 403, cloudflare_headers(ray), block_page(ex, ray))
        elif mode in CLOUDFLARE_MODES:
            return self._cloudflare(ex, mode)
        elif mode == "ddos_guard":
            self._served(ex, 403, ddos_guard_headers(), ddos_guard_page(ex))
        elif mode == "sucuri":
            self._served(ex, 403, sucuri_headers(), sucuri_page(ex))
        elif mode == "sensor":
            return self.site.sensor.screen(ex)
        elif ex.path == INCAPSULA_RESOURCE:
            self._incapsula_resource(ex)
        else:
            self._served(ex, 200, incapsula_headers(), incapsula_page())
        return True

    def _served(self, ex: Exchange, status: int, headers: Headers, page: str) -> None:
        """Send a page that stops the request, counted as a challenge served."""
        self.site.count("challenges_served")
        ex.respond(status, headers, page.encode("utf-8"), php=False)

    def _cloudflare(self, ex: Exchange, mode: str) -> bool:
        """Cloudflare's challenge modes: the platform's own endpoints, then clearance, then the interstitial."""
        if ex.path.startswith(CHALLENGE_PREFIX):
            self._platform(ex, mode)
            return True
        if self.cleared(ex):
            ex.edge_headers = pass_headers()
            return False
        if mode == "chat_challenge":
            if is_chat_request(ex):
                with self._lock:
                    self._flagged = True
            elif not self.flagged:
                ex.edge_headers = pass_headers()
                return False
        self._interstitial(ex, "click" if mode == "click_challenge" else "js")
        return True

    def _interstitial(self, ex: Exchange, kind: str) -> None:
        """The "Just a moment..." page, with a new challenge behind it."""
        ray = _new_ray()
        challenge = _Challenge(kind=kind, issued=time.monotonic(), chash=secrets.token_hex(16))
        if kind == "click":
            challenge.widget = _token(5, string.ascii_lowercase + string.digits)
        with self._lock:
            self._pending[ray] = challenge
            if challenge.widget:
                self._widgets[challenge.widget] = ray
            while len(self._pending) > MAX_PENDING:
                _, old = self._pending.popitem(last=False)
                self._widgets.pop(old.widget, None)
        page = challenge_page(ex, ray, challenge, self.sitekey, self.site.config.challenge_delay)
        self.site.count("challenges_served")
        ex.respond(403, challenge_headers(ray), page.encode("utf-8"), php=False)

    # -- the challenge platform --------------------------------------------------------------------

    def _platform(self, ex: Exchange, mode: str) -> None:
        """``/cdn-cgi/challenge-platform/``: the orchestration script, the widget frame, the flow endpoint."""
        if ex.path == ORCHESTRATE_PATH and ex.method in ("GET", "HEAD"):
            self._orchestrate(ex, mode)
            return
        flow = _FLOW.match(ex.path)
        if flow and ex.method == "POST":
            self._flow(ex, mode, *flow.groups())
            return
        widget = _WIDGET.match(ex.path)
        if widget and ex.method in ("GET", "HEAD"):
            self._widget(ex, mode, widget.group(1))
            return
        ex.respond(404, cloudflare_headers(_new_ray(), "text/plain; charset=UTF-8"), b"Not Found", php=False)

    def _orchestrate(self, ex: Exchange, mode: str) -> None:
        """The script the interstitial loads; it solves a JS challenge only when the mode lets it."""
        ray = ex.query.get("ray", "")
        with self._lock:
            challenge = self._pending.get(ray)
        solve = challenge is not None and challenge.kind == "js" and mode in SOLVABLE["js"]
        settings = {
            "solve": solve,
            "delayMs": max(0, round(self.site.config.challenge_delay * 1000)),
            "flow": flow_path("g", ray, challenge.chash) if challenge is not None else "",
        }
        headers = cloudflare_headers(_new_ray(), "application/javascript; charset=UTF-8")
        ex.respond(200, headers, _script("cf-challenge.js", settings).encode("utf-8"), php=False)

    def _widget(self, ex: Exchange, mode: str, widget: str) -> None:
        """The Turnstile frame: a checkbox that asks for clearance on a trusted click."""
        with self._lock:
            ray = self._widgets.get(widget, "")
            challenge = self._pending.get(ray)
            if challenge is not None:
                challenge.widget_seen = True
        usable = challenge is not None and mode in SOLVABLE["click"]
        settings = {"flow": flow_path("b", ray, challenge.chash) if usable and challenge else "", "widget": widget}
        headers = [(name, value) for name, value in cloudflare_headers(_new_ray()) if name != "Expires"]
        ex.respond(200, headers, turnstile_frame(settings).encode("utf-8"), php=False)

    def _flow(self, ex: Exchange, mode: str, letter: str, ray: str, chash: str) -> None:
        """The solved challenge comes back: issue ``cf_clearance`` for the caller's User-Agent, or refuse."""
        kind = "js" if letter == "g" else "click"
        with self._lock:
            challenge = self._pending.get(ray)
            solved = (
                challenge is not None
                and challenge.kind == kind
                and hmac.compare_digest(challenge.chash, chash)
                and mode in SOLVABLE[kind]
            )
            if solved and challenge is not None and kind == "js":
                waited = time.monotonic() - challenge.issued
                solved = waited >= max(0.0, self.site.config.challenge_delay) - _EARLY_SLACK
            if solved and challenge is not None and kind == "click":
                solved = challenge.widget_seen
            if solved and challenge is not None:
                self._pending.pop(ray, None)
                self._widgets.pop(challenge.widget, None)
        if not solved:
            headers = cloudflare_headers(_new_ray(), "text/plain; charset=UTF-8")
            ex.respond(400, headers, b"challenge not solved", php=False)
            return
        token = self.clearance_for(ex.headers.get("user-agent", ""))
        expires = formatdate(time.time() + CLEARANCE_LIFETIME, usegmt=True)
        headers = cloudflare_headers(_new_ray(), "text/plain; charset=UTF-8")
        headers.insert(
            2, ("Set-Cookie", f"{CLEARANCE_COOKIE}={token}; path=/; expires={expires}; HttpOnly; SameSite=Lax")
        )
        self.site.count("clearances_issued")
        ex.respond(200, headers, secrets.token_urlsafe(48).encode("ascii"), php=False)

    def _incapsula_resource(self, ex: Exchange) -> None:
        """What the Incapsula page loads: its (inert) script, and the frame that says the request failed."""
        if "SWJIYLWA" in ex.query:
            body = "(function(){var z=document.createElement('div');z.id='incap-probe';})();"
            ex.respond(
                200, [("Content-Type", "application/javascript"), ("Connection", "close")], body.encode(), php=False
            )
            return
        incident = ex.query.get("incident_id", "0-0")
        text = (
            '<html><head><META NAME="robots" CONTENT="noindex,nofollow"></head><body>'
            f"Request unsuccessful. Incapsula incident ID: {html.escape(incident)}</body></html>"
        )
        ex.respond(200, [("Content-Type", _HTML), ("Connection", "close")], text.encode("utf-8"), php=False)


def flow_path(letter: str, ray: str, chash: str) -> str:
    """Where a solved challenge is posted: ``h/g`` for the JS challenge, ``h/b`` for Turnstile."""
    stamp = f"{secrets.randbelow(10**10)}:{int(time.time())}:{secrets.token_urlsafe(32)}"
    return f"{CHALLENGE_PREFIX}h/{letter}/flow/ov1/{stamp}/{ray}/{chash}"


# -- pages -----------------------------------------------------------------------------------------

_CHALLENGE_STYLE = (
    "*{box-sizing:border-box;margin:0;padding:0}html{line-height:1.15;-webkit-text-size-adjust:100%;"
    "color:#313131;font-family:system-ui,-apple-system,BlinkMacSystemFont,Segoe UI,Roboto,Helvetica Neue,"
    "Arial,sans-serif}body{display:flex;flex-direction:column;height:100vh;min-height:100vh}"
    ".main-content{margin:8rem auto;max-width:60rem;padding-left:1.5rem;padding-right:1.5rem;width:100%}"
    ".h1{font-size:2.5rem;font-weight:500;line-height:3.75rem}.h2{font-size:1.5rem;font-weight:500;"
    "line-height:2.25rem}.core-msg{font-size:1rem;font-weight:400;line-height:1.5rem}.spacer{margin:2rem 0}"
    ".lds-ring{display:inline-block;height:1.875rem;position:relative;width:1.875rem}.lds-ring div{animation:"
    "lds-ring 1.2s cubic-bezier(.5,0,.5,1) infinite;border:.3rem solid transparent;border-radius:50%;"
    "border-top-color:#313131;display:block;height:1.875rem;position:absolute;width:1.875rem}"
    "@keyframes lds-ring{0%{transform:rotate(0)}to{transform:rotate(1turn)}}.footer{font-size:.75rem;"
    "line-height:1.125rem;margin:0 auto;max-width:60rem;padding-left:1.5rem;padding-right:1.5rem;width:100%}"
    ".footer-inner{border-top:1px solid #d9d9d9;padding-bottom:1rem;padding-top:1rem}.ray-id{text-align:center}"
    ".text-center{text-align:center}.cf-turnstile{min-height:65px}"
)


def challenge_page(ex: Exchange, ray: str, challenge: _Challenge, sitekey: str, delay: float) -> str:
    """Cloudflare's managed-challenge interstitial for ``ex``; with a Turnstile widget for a click challenge."""
    zone = _zone(ex)
    click = challenge.kind == "click"
    ftk = secrets.token_urlsafe(33)
    md = secrets.token_urlsafe(96)
    heading = (
        "Verify you are human by completing the action below."
        if click
        else "Verifying you are human. This may take a few seconds."
    )
    widget = ""
    if click:
        frame = (
            f"{CHALLENGE_PREFIX}h/b/turnstile/if/ov2/av0/rcv/{challenge.widget}/{sitekey}/light/fbE/new/normal/auto/"
        )
        widget = (
            f'<div class="cf-turnstile" data-sitekey="{sitekey}"><div><iframe src="{frame}" '
            f'id="cf-chl-widget-{challenge.widget}" tabindex="0" allow="cross-origin-isolated; fullscreen; autoplay" '
            'title="Widget containing a Cloudflare security challenge" '
            'style="border: none; overflow: hidden; width: 300px; height: 65px;"></iframe>'
            f'<input type="hidden" name="cf-turnstile-response" id="cf-chl-widget-{challenge.widget}_response">'
            "</div></div>"
        )
    opt = (
        f"cvId:'3',cZone:'{zone}',cType:'managed',cRay:'{ray}',cNounce:'{secrets.randbelow(90000) + 10000}',"
        f"cHash:'{challenge.chash}',cUPMDTk:{_js_string(ex.path + '?__cf_chl_tk=' + secrets.token_urlsafe(33))},"
        f"cFPWv:'g',cTTimeMs:'{max(0, round(delay * 1000))}',cMTimeMs:'390000',cTplV:5,cTplB:'cf',cK:\"\","
        f'fa:{_js_string(ex.path + "?__cf_chl_f_tk=" + ftk)},md:"{md}",'
        f"cRq:{{ru:'{_b64(ex.path)}',ra:'{_b64(ex.headers.get('user-agent', ''))}',rm:'{_b64(ex.method)}',"
        f"d:'{secrets.token_urlsafe(64)}',t:'{_b64(f'{time.time():.6f}')}',cT:Math.floor(Date.now() / 1000)}}"
    )
    action = html.escape(f"{ex.path}?__cf_chl_f_tk={ftk}")
    return (
        '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>'
        '<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">'
        '<meta http-equiv="X-UA-Compatible" content="IE=Edge"><meta name="robots" content="noindex,nofollow">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_CHALLENGE_STYLE}</style>'
        '<meta http-equiv="refresh" content="390"></head><body class="no-js">'
        '<div class="main-wrapper" role="main"><div class="main-content">'
        f'<h1 class="zone-name-title h1">{zone}</h1>'
        f'<h2 id="challenge-running" class="h2">{heading}</h2>'
        '<noscript><div id="challenge-error-title"><div class="h2"><span id="challenge-error-text">'
        "Enable JavaScript and cookies to continue</span></div></div></noscript>"
        f'<div id="challenge-stage">{widget}</div>'
        '<div id="challenge-spinner" class="spacer loading-spinner"><div class="lds-ring">'
        "<div></div><div></div><div></div><div></div></div></div>"
        f'<div id="challenge-body-text" class="core-msg spacer">{zone} needs to review the security of your '
        "connection before proceeding.</div>"
        '<div id="challenge-success" style="display:none"><div class="h2">Verification successful</div>'
        f'<div class="core-msg spacer">Waiting for {zone} to respond...</div></div>'
        '<div id="challenge-error" style="display:none"><div class="h2">Verification failed</div></div>'
        f'<form id="challenge-form" action="{action}" method="POST" enctype="application/x-www-form-urlencoded">'
        f'<input type="hidden" name="md" value="{md}"/></form>'
        "</div></div>"
        f"<script>(function(){{window._cf_chl_opt={{{opt}}};}}());</script>"
        f'<script src="{ORCHESTRATE_PATH}?ray={ray}"></script>'
        '<div class="footer" role="contentinfo"><div class="footer-inner"><div class="clearfix diagnostic-wrapper">'
        f'<div class="ray-id">Ray ID: <code>{ray}</code></div></div>'
        '<div class="text-center" id="footer-text">Performance &amp; security by '
        '<a rel="noopener noreferrer" href="https://www.cloudflare.com?utm_source=challenge&amp;utm_campaign=m" '
        'target="_blank">Cloudflare</a></div></div></div></body></html>'
    )


def turnstile_frame(settings: dict[str, Any]) -> str:
    """The document inside the Turnstile iframe: the "Verify you are human" checkbox and its script."""
    return (
        '<!DOCTYPE html><html lang="en-US"><head><meta charset="UTF-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1"><title>Turnstile</title>'
        "<style>body{margin:0;font-family:system-ui,sans-serif;font-size:14px}"
        "#content{display:flex;align-items:center;justify-content:space-between;height:63px;padding:0 12px;"
        "border:1px solid #e0e0e0;background:#fafafa}.cb-lb{display:flex;align-items:center;gap:8px;cursor:pointer}"
        ".cb-lb input{width:24px;height:24px;margin:0;cursor:pointer}#branding{font-size:10px;color:#555}</style>"
        '</head><body><div id="content" aria-live="polite"><div class="cb-c" role="alert">'
        '<label class="cb-lb"><input type="checkbox" id="cf-chl-widget-checkbox">'
        '<span class="cb-i"></span><span class="cb-lb-t" id="cf-chl-widget-status">Verify you are human</span></label>'
        '</div><div id="branding">Cloudflare<br><a href="https://www.cloudflare.com/privacypolicy/" '
        'target="_blank" rel="noopener noreferrer">Privacy</a> &#183; '
        '<a href="https://www.cloudflare.com/website-terms/" target="_blank" rel="noopener noreferrer">Terms</a>'
        f"</div></div><script>{_script('cf-turnstile.js', settings)}</script></body></html>"
    )


def block_page(ex: Exchange, ray: str) -> str:
    """Cloudflare's "Sorry, you have been blocked" page (a WAF rule matched; nothing to solve)."""
    zone = _zone(ex)
    return f"""<!DOCTYPE html>
<!--[if lt IE 7]> <html class="no-js ie6 oldie" lang="en-US"> <![endif]-->
<!--[if IE 7]>    <html class="no-js ie7 oldie" lang="en-US"> <![endif]-->
<!--[if IE 8]>    <html class="no-js ie8 oldie" lang="en-US"> <![endif]-->
<!--[if gt IE 8]><!--> <html class="no-js" lang="en-US"> <!--<![endif]-->
<head>
<title>Attention Required! | Cloudflare</title>
<meta charset="UTF-8" />
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
<meta http-equiv="X-UA-Compatible" content="IE=Edge" />
<meta name="robots" content="noindex, nofollow" />
<meta name="viewport" content="width=device-width,initial-scale=1" />
<style>body{{font-family:system-ui,sans-serif;color:#404040;margin:0}}.cf-wrapper{{max-width:60rem;margin:0 auto;
padding:0 1.5rem}}.cf-section{{padding:2rem 0}}.cf-columns{{display:flex;gap:2rem}}.hidden{{display:none}}</style>
</head>
<body>
  <div id="cf-wrapper">
    <div class="cf-alert cf-alert-error cf-cookie-error" id="cookie-alert"
      data-translate="enable_cookies">Please enable cookies.</div>
    <div id="cf-error-details" class="cf-error-details-wrapper">
      <div class="cf-wrapper cf-header cf-error-overview">
        <h1 data-translate="block_headline">Sorry, you have been blocked</h1>
        <h2 class="cf-subheadline"><span data-translate="unable_to_access">You are unable to access</span> {zone}</h2>
      </div>
      <div class="cf-section cf-highlight">
        <div class="cf-wrapper">
          <div class="cf-screenshot-container cf-screenshot-full"><span class="cf-no-screenshot error"></span></div>
        </div>
      </div>
      <div class="cf-section cf-wrapper">
        <div class="cf-columns two">
          <div class="cf-column">
            <h2 data-translate="blocked_why_headline">Why have I been blocked?</h2>
            <p data-translate="blocked_why_detail">This website is using a security service to protect itself
              from online attacks. The action you just performed triggered the security solution. There are
              several actions that could trigger this block including submitting a certain word or phrase, a SQL
              command or malformed data.</p>
          </div>
          <div class="cf-column">
            <h2 data-translate="blocked_resolve_headline">What can I do to resolve this?</h2>
            <p data-translate="blocked_resolve_detail">You can email the site owner to let them know you were
              blocked. Please include what you were doing when this page came up and the Cloudflare Ray ID found
              at the bottom of this page.</p>
          </div>
        </div>
      </div>
      <div class="cf-error-footer cf-wrapper">
        <p class="text-13">
          <span class="cf-footer-item">Cloudflare Ray ID: <strong class="font-semibold">{ray}</strong></span>
          <span class="cf-footer-separator">&bull;</span>
          <span id="cf-footer-item-ip" class="cf-footer-item">Your IP:
            <button type="button" id="cf-footer-ip-reveal" class="cf-footer-ip-reveal-btn">Click to reveal</button>
            <span class="hidden" id="cf-footer-ip">{html.escape(ex.peer)}</span>
            <span class="cf-footer-separator">&bull;</span>
          </span>
          <span class="cf-footer-item"><span>Performance &amp; security by</span>
            <a rel="noopener noreferrer" href="https://www.cloudflare.com/5xx-error-landing" id="brand_link"
              target="_blank">Cloudflare</a></span>
        </p>
      </div>
    </div>
  </div>
  <script>(function(){{var b=document.getElementById("cf-footer-ip-reveal");b&&b.addEventListener("click",function(){{
  b.classList.add("hidden");document.getElementById("cf-footer-ip").classList.remove("hidden")}})}})();</script>
</body>
</html>
"""


def ddos_guard_headers() -> Headers:
    """DDoS-Guard's edge headers, with the ``__ddg1_`` cookie it always hands out."""
    expires = formatdate(time.time() + CLEARANCE_LIFETIME, usegmt=True)
    return [
        ("Server", "ddos-guard"),
        ("Content-Type", "text/html; charset=utf-8"),
        ("Connection", "close"),
        ("Set-Cookie", f"__ddg1_={_token(20)}; Path=/; Expires={expires}; HttpOnly"),
        ("Cache-Control", "no-cache, no-store, must-revalidate"),
    ]


def ddos_guard_page(ex: Exchange) -> str:
    """DDoS-Guard's browser check, stuck: the page never moves on."""
    zone = _zone(ex)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>DDoS-Guard</title>
<style>body{{font-family:Arial,sans-serif;text-align:center;color:#333;margin:10vh 1rem}}
.ddg-footer{{margin-top:3rem;font-size:12px}}</style>
</head>
<body>
<div id="ddg-check">
  <h1 id="ddg-l10n-title">Checking your browser before accessing {zone}</h1>
  <p id="ddg-l10n-description">This process is automatic.
    Your browser will redirect to your requested content shortly.</p>
  <p id="ddg-l10n-wait">Please allow up to 5 seconds&hellip;</p>
</div>
<div class="ddg-footer">DDoS protection by
  <a href="https://ddos-guard.net/" target="_blank" rel="noopener noreferrer">DDoS-Guard</a></div>
</body>
</html>
"""


def sucuri_headers() -> Headers:
    """The Sucuri firewall's block headers."""
    return [
        ("Server", "Sucuri/Cloudproxy"),
        ("Content-Type", "text/html"),
        ("Connection", "close"),
        ("Cache-Control", "no-cache, no-store, must-revalidate, max-age=0"),
        ("X-Sucuri-ID", "11005"),
        ("X-Sucuri-Block", "BNP007"),
    ]


def sucuri_page(ex: Exchange) -> str:
    """The Sucuri firewall's "Access Denied" page, with the block details it shows."""
    now = time.gmtime()
    rows = [
        ("Your IP:", ex.peer),
        ("URL:", f"{_zone(ex)}{ex.path}"),
        ("Your Browser: ", ex.headers.get("user-agent", "")),
        ("Block ID:", "BNP007"),
        ("Block reason:", "Bad bot access attempt."),
        ("Time:", time.strftime("%Y-%m-%d %H:%M:%S", now)),
        ("Server ID:", "11005"),
    ]
    table = "\n".join(f"<tr><td>{name}</td><td>{html.escape(value)}</td></tr>" for name, value in rows)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="robots" content="noindex, nofollow">
<title>Sucuri WebSite Firewall - Access Denied</title>
<style>body{{font-family:Arial,sans-serif;margin:0;color:#222}}#main-container{{max-width:60rem;margin:2rem auto}}
#header h1{{background:#d9534f;color:#fff;padding:1rem}}td{{padding:.25rem 1rem}}</style>
</head>
<body>
<div id="main-container">
<div id="header"><h1>Access Denied - Sucuri Website Firewall</h1></div>
<div id="content">
<h2>If you are the site owner (or you manage this site), please whitelist your IP or if you think this block
is an error please <a href="https://support.sucuri.net" target="_blank" rel="noopener noreferrer">open a support
ticket</a> and make sure to include the block details (displayed in the box below), so we can assist you in
troubleshooting the issue.</h2>
<h3>Block details:</h3>
<table>
{table}
</table>
</div>
<div id="footer">Sucuri Website Firewall - CloudProxy<br>Copyright &copy; {now.tm_year} Sucuri Inc.</div>
</div>
</body>
</html>
"""


def incapsula_headers() -> Headers:
    """Imperva Incapsula's headers: its visitor cookies and the ``X-Iinfo`` trace."""
    site_id = 2_000_000 + secrets.randbelow(1_000_000)
    millis = int(time.time() * 1000)
    return [
        ("Content-Type", "text/html"),
        ("Connection", "close"),
        ("Cache-Control", "no-cache"),
        ("Set-Cookie", f"visid_incap_{site_id}={secrets.token_urlsafe(48)}; path=/; HttpOnly"),
        ("Set-Cookie", f"incap_ses_{secrets.randbelow(1000)}_{site_id}={secrets.token_urlsafe(48)}; path=/"),
        ("X-CDN", "Incapsula"),
        ("X-Iinfo", f"14-{secrets.randbelow(10**8)}-0 0NNN RT({millis} 0) q(0 -1 -1 -1) r(0 -1) B12(4,315,0) U18"),
    ]


def incapsula_page() -> str:
    """Incapsula's page: an empty shell whose frame says the request was refused (it never clears)."""
    incident = f"{secrets.randbelow(10**18)}-{secrets.randbelow(10**17)}"
    script = f"{INCAPSULA_RESOURCE}?SWJIYLWA={secrets.token_hex(16)}"
    frame = (
        f"{INCAPSULA_RESOURCE}?CWUDNSAI=9&xinfo=14-{secrets.randbelow(10**8)}-0%200NNN%20RT&incident_id={incident}"
        f"&edet=12&cinfo=04000000&rpinfo=0&mth=GET"
    )
    return (
        f'<html><head><META NAME="robots" CONTENT="noindex,nofollow"><script src="{script}"></script></head>'
        f'<body><iframe id="main-iframe" src="{frame}" frameborder=0 width="100%" height="100%" '
        f'marginheight="0px" marginwidth="0px">Request unsuccessful. Incapsula incident ID: {incident}</iframe>'
        "</body></html>"
    )
