"""The WordPress around the plugins: PHP-style JSON, header sets, the page shell and error pages.

Header lists keep the order the real stack (PHP 8.2's built-in server, WordPress 6.1) sends them in,
so a client is tested against the same bytes it will meet on a live site.

A plugin app describes its page as :class:`PageParts`; the shell, the page variants every plugin shares
(no chat box, a box built by script after load, WordPress in a subfolder) and a page with several
plugins at once (:class:`MultiPluginApp`) are assembled here.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from .exchange import POWERED_BY

if TYPE_CHECKING:
    from .exchange import Exchange
    from .server import ReplicaSite

__all__ = [
    "AJAX_ERROR_HEADERS",
    "AJAX_JSON_HEADERS",
    "AJAX_STREAM_HEADERS",
    "CRITICAL_ERROR_HTML",
    "CSS",
    "JS",
    "NOCACHE_HEADERS",
    "POST_ID",
    "SUBFOLDER",
    "Headers",
    "MultiPluginApp",
    "PageParts",
    "WordPressApp",
    "critical_error_headers",
    "esc_attr",
    "not_found_page",
    "page_shell",
    "php_json",
    "php_session_id",
    "rest_headers",
    "sanitize_key",
    "script_builder",
    "site_path",
    "uniqid",
]

Headers = list[tuple[str, str]]
JS = "text/javascript; charset=UTF-8"
CSS = "text/css; charset=UTF-8"

POST_ID = 4
HUGE_PADDING = 20 * 1024 * 1024
BLOG_NAME = "Chat Corner"
WP_VERSION = "6.1.1"
# Page mode "subfolder": WordPress's own files (admin-ajax.php, wp-content) live under this path while the
# pages stay at the root, as in WordPress's "own directory" install.
SUBFOLDER = "/blog"
CLOSED_TEXT = "<p>The chat is closed for now.</p>"

NOCACHE_HEADERS: Headers = [
    ("Expires", "Wed, 11 Jan 1984 05:00:00 GMT"),
    ("Cache-Control", "no-cache, must-revalidate, max-age=0"),
]

# admin-ajax.php answering JSON (wp_send_json).
AJAX_JSON_HEADERS: Headers = [
    ("X-Robots-Tag", "noindex"),
    ("X-Content-Type-Options", "nosniff"),
    NOCACHE_HEADERS[0],
    NOCACHE_HEADERS[1],
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("Content-Type", "application/json; charset=UTF-8"),
]

# admin-ajax.php dying with text (wp_die / wp_nonce_ays).
AJAX_ERROR_HEADERS: Headers = [
    ("Content-Type", "text/html; charset=UTF-8"),
    ("X-Robots-Tag", "noindex"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "SAMEORIGIN"),
    NOCACHE_HEADERS[0],
    NOCACHE_HEADERS[1],
]

# admin-ajax.php after a plugin replaced the cache headers to stream.
AJAX_STREAM_HEADERS: Headers = [
    ("X-Robots-Tag", "noindex"),
    ("X-Content-Type-Options", "nosniff"),
    NOCACHE_HEADERS[0],
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("Content-type", "text/event-stream;charset=UTF-8"),
    ("Cache-Control", "no-cache"),
    ("X-Accel-Buffering", "no"),
]

CRITICAL_ERROR_HTML = (
    "<!DOCTYPE html>\n"
    '<html lang="en-US">\n'
    "<head>\n"
    '\t<meta http-equiv="Content-Type" content="text/html; charset=utf-8" />\n'
    '\t<meta name="viewport" content="width=device-width">\n'
    "\t<meta name='robots' content='max-image-preview:large, noindex, follow' />\n"
    "\t<title>WordPress &rsaquo; Error</title>\n"
    "</head>\n"
    '<body id="error-page">\n'
    '\t<div class="wp-die-message"><p>There has been a critical error on this website.</p>'
    '<p><a href="https://wordpress.org/documentation/article/faq-troubleshooting/">'
    "Learn more about troubleshooting WordPress.</a></p></div></body>\n"
    "</html>\n"
)


def critical_error_headers() -> Headers:
    """What WordPress's fatal-error handler sends with its 500 page."""
    return [("Content-Type", "text/html; charset=utf-8"), *NOCACHE_HEADERS]


_HEX_SPECIALS = {"<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "'": "\\u0027", '\\"': "\\u0022"}
# An escape sequence json.dumps wrote (kept whole, so a backslash before a quote is never misread), or one of
# the characters PHP escapes and json.dumps does not. All of them can only occur inside JSON strings.
_PHP_ESCAPES = re.compile(r"\\.|[<>&'/\u2028\u2029]")


def php_json(value: Any, *, unescaped_unicode: bool = False, hex_specials: bool = False) -> str:
    """``json_encode``: compact, slashes as ``\\/``, non-ASCII as ``\\uXXXX`` unless ``unescaped_unicode``.

    ``unescaped_unicode`` is ``JSON_UNESCAPED_UNICODE`` (raw UTF-8; U+2028 and U+2029 stay escaped, as PHP
    keeps them); ``hex_specials`` is ``JSON_HEX_TAG|JSON_HEX_APOS|JSON_HEX_AMP|JSON_HEX_QUOT`` (``<>&'"``
    inside strings as ``\\u003C`` and so on), what WordPress plugins use for JSON in HTML attributes.
    """
    text = json.dumps(value, ensure_ascii=not unescaped_unicode, separators=(",", ":"))
    if not (unescaped_unicode or hex_specials):
        return text.replace("/", "\\/")  # "/" only occurs inside strings and in no escape json.dumps writes

    def escape(match: re.Match[str]) -> str:
        """PHP's spelling of one escape sequence or special character."""
        token = match.group(0)
        if token == "/":
            return "\\/"
        if token in ("\u2028", "\u2029"):
            return f"\\u{ord(token):04x}"
        return _HEX_SPECIALS.get(token, token) if hex_specials else token

    return _PHP_ESCAPES.sub(escape, text)


def esc_attr(value: str) -> str:
    """WordPress's ``esc_attr``: the five HTML specials as entities (``'`` as ``&#039;``)."""
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#039;")
    )


def rest_headers(site_url: str, origin: str | None) -> Headers:
    """The headers every WordPress REST answer carries (CORS ones only when the request had an Origin)."""
    headers: Headers = [
        ("X-Robots-Tag", "noindex"),
        ("Link", f'<{site_url}/wp-json/>; rel="https://api.w.org/"'),
        ("X-Content-Type-Options", "nosniff"),
        ("Access-Control-Expose-Headers", "X-WP-Total, X-WP-TotalPages, Link"),
        ("Access-Control-Allow-Headers", "Authorization, X-WP-Nonce, Content-Disposition, Content-MD5, Content-Type"),
    ]
    if origin:
        headers += [
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Methods", "OPTIONS, GET, POST, PUT, PATCH, DELETE"),
            ("Access-Control-Allow-Credentials", "true"),
            ("Vary", "Origin"),
        ]
    return headers


def site_path(path: str) -> str:
    """``path`` with WordPress's subfolder taken off: the files and admin-ajax.php below it are the root's ones."""
    return path[len(SUBFOLDER) :] if path.startswith(SUBFOLDER + "/") else path


def uniqid(more_entropy: bool = False) -> str:
    """PHP's ``uniqid()``: 8 hex digits of seconds and 5 of microseconds (AI Engine's session ids); with
    ``more_entropy`` a random ``d.dddddddd`` follows (AIPKit's message ids)."""
    now = time.time()
    seconds = int(now)
    micros = int((now - seconds) * 1_000_000) ^ secrets.randbelow(0x100)  # unique even within one microsecond
    extra = f"{secrets.randbelow(10**9) / 10**8:.8f}" if more_entropy else ""
    return f"{seconds:08x}{micros & 0xFFFFF:05x}{extra}"


def sanitize_key(value: Any) -> str:
    """WordPress's ``sanitize_key``: lowercase, only ``a-z0-9_-`` kept."""
    text = value if isinstance(value, str) else "" if value is None else str(value)
    return re.sub(r"[^a-z0-9_\-]", "", text.lower())


def php_session_id() -> str:
    """A ``PHPSESSID`` value as PHP makes them: 26 characters of 0-9a-v."""
    alphabet = string.digits + "abcdefghijklmnopqrstuv"
    return "".join(secrets.choice(alphabet) for _ in range(26))


def page_shell(
    site_url: str,
    *,
    title: str,
    slug: str,
    content: str,
    head: str = "",
    footer: str = "",
    post_id: int = POST_ID,
    core_url: str | None = None,
) -> str:
    """A complete WordPress page (Underscores-like theme) for post ``post_id`` with ``content`` inside;
    ``core_url`` is where WordPress's files live when not at ``site_url`` (theme files, xmlrpc.php)."""
    core_url = core_url or site_url
    return f"""<!doctype html>
<html lang="en-US">
<head>
	<meta charset="UTF-8">
	<meta name="viewport" content="width=device-width, initial-scale=1">
	<link rel="profile" href="https://gmpg.org/xfn/11">
	<title>{title} &#8211; {BLOG_NAME}</title>
<meta name='robots' content='max-image-preview:large' />
<link rel="alternate" type="application/rss+xml" title="{BLOG_NAME} &raquo; Feed" href="{site_url}/feed/" />
<link rel='stylesheet' id='site-style-css' href='{core_url}/wp-content/themes/corner/style.css?ver=1.0.0' media='all' />
<link rel="icon" href="{core_url}/wp-content/themes/corner/icon.svg" sizes="any" type="image/svg+xml" />
{head}<link rel="https://api.w.org/" href="{site_url}/wp-json/" />
<link rel="alternate" type="application/json" href="{site_url}/wp-json/wp/v2/pages/{post_id}" />
<link rel="EditURI" type="application/rsd+xml" title="RSD" href="{core_url}/xmlrpc.php?rsd" />
<meta name="generator" content="WordPress {WP_VERSION}" />
<link rel="canonical" href="{site_url}/{slug}/" />
<link rel='shortlink' href='{site_url}/?p={post_id}' />
</head>

<body class="page-template-default page page-id-{post_id} wp-embed-responsive no-sidebar">
<div id="page" class="site">
	<a class="skip-link screen-reader-text" href="#primary">Skip to content</a>

	<header id="masthead" class="site-header">
		<div class="site-branding">
			<p class="site-title"><a href="{site_url}/" rel="home">{BLOG_NAME}</a></p>
			<p class="site-description">Questions answered, day and night</p>
		</div>
		<nav id="site-navigation" class="main-navigation">
			<ul id="primary-menu" class="menu">
				<li class="menu-item"><a href="{site_url}/">Home</a></li>
				<li class="menu-item current-menu-item">
					<a href="{site_url}/{slug}/" aria-current="page">{title}</a></li>
			</ul>
		</nav>
	</header>

	<main id="primary" class="site-main">
<article id="post-{post_id}" class="post-{post_id} page type-page status-publish hentry">
	<header class="entry-header">
		<h1 class="entry-title">{title}</h1>
	</header>

	<div class="entry-content">
{content}
	</div>
</article>
	</main>

	<footer id="colophon" class="site-footer">
		<div class="site-info">
			<a href="https://wordpress.org/">Proudly powered by WordPress</a>
		</div>
	</footer>
</div>
{footer}
</body>
</html>
"""


def not_found_page(site_url: str) -> str:
    """The theme's 404 page."""
    return f"""<!doctype html>
<html lang="en-US">
<head>
	<meta charset="UTF-8">
	<meta name="viewport" content="width=device-width, initial-scale=1">
	<title>Page not found &#8211; {BLOG_NAME}</title>
<meta name='robots' content='noindex, follow' />
<link rel='stylesheet' id='site-style-css' href='{site_url}/wp-content/themes/corner/style.css?ver=1.0.0' media='all' />
<link rel="icon" href="{site_url}/wp-content/themes/corner/icon.svg" sizes="any" type="image/svg+xml" />
<link rel="https://api.w.org/" href="{site_url}/wp-json/" />
<meta name="generator" content="WordPress {WP_VERSION}" />
</head>

<body class="error404 wp-embed-responsive no-sidebar">
<div id="page" class="site">
	<header id="masthead" class="site-header">
		<div class="site-branding"><p class="site-title"><a href="{site_url}/" rel="home">{BLOG_NAME}</a></p></div>
	</header>
	<main id="primary" class="site-main">
		<section class="error-404 not-found">
			<header class="page-header">
				<h1 class="page-title">Oops! That page can&rsquo;t be found.</h1>
			</header>
			<div class="page-content">
				<p>It looks like nothing was found at this location. Maybe try one of the links below or a search?</p>
			</div>
		</section>
	</main>
	<footer id="colophon" class="site-footer">
		<div class="site-info"><a href="https://wordpress.org/">Proudly powered by WordPress</a></div>
	</footer>
</div>
</body>
</html>
"""


@dataclass
class PageParts:
    """What one plugin puts on the chat page, in the pieces the page variants move around."""

    before: str = ""  # content before the chat box (the page's own text)
    box: str = ""  # the chat box element(s): what "script_built" leaves out of the served HTML
    after: str = ""  # content after the box (inline settings scripts)
    head: str = ""  # tags for <head>
    footer: str = ""  # inline tags at the end of <body>, before the plugin's scripts
    scripts: list[tuple[str, str]] = field(default_factory=list)  # (src, id) of the plugin's script tags
    headers: Headers = field(default_factory=list)  # extra response headers (cookies)


_BUILDER = """<script id="site-chat-builder">
window.addEventListener("load", function () {{
  var later = {via}
    ? function (build) {{ fetch({via}).then(build); }}
    : function (build) {{ setTimeout(build, {delay_ms}); }};
  later(function () {{
    var bytes = Uint8Array.from(atob("{payload}"), function (c) {{ return c.charCodeAt(0); }});
    var build = JSON.parse(new TextDecoder().decode(bytes));
    build.boxes.forEach(function (box) {{ document.getElementById(box[0]).innerHTML = box[1]; }});
    build.scripts.forEach(function (tag) {{
      var script = document.createElement("script");
      script.src = tag[0];
      script.id = tag[1];
      script.async = false;
      document.body.appendChild(script);
    }});
  }});
}});
</script>"""
# The theme's endpoint the builder of page "request_built" waits on (answered after ``build_delay``).
WIDGET_PATH = "/wp-content/themes/corner/widget.php"


def script_builder(
    boxes: list[tuple[str, str]], scripts: list[tuple[str, str]], delay: float, via: str | None = None
) -> str:
    """An inline script that, ``delay`` seconds after load (or once a request to ``via`` is answered),
    puts each box's markup into its mount element (``(mount id, markup)``) and then loads the plugins'
    scripts in order. The markup travels base64-encoded, so the served HTML holds no chat box, as on sites
    whose chat widget arrives by script."""
    build = json.dumps({"boxes": boxes, "scripts": scripts}, ensure_ascii=False)
    payload = base64.b64encode(build.encode("utf-8")).decode("ascii")
    return _BUILDER.format(payload=payload, delay_ms=max(0, round(delay * 1000)), via=json.dumps(via or ""))


class WordPressApp:
    """Routing every WordPress site shares; a plugin subclass adds its page, AJAX actions and REST routes."""

    plugin = ""
    slug = ""
    title = ""
    page_text = ""  # the paragraph above the chat box
    post_id = POST_ID  # the chat page's id
    powered_by = POWERED_BY  # the X-Powered-By this site's PHP reports
    ajax_actions: tuple[str, ...] = ()  # the admin-ajax actions the plugin registers
    json_headers = AJAX_JSON_HEADERS  # what wp_send_json sends, in this WordPress build's order
    # the plugin's files the site serves: (URL path, file in static/, content type)
    static_files: ClassVar[tuple[tuple[str, str, str], ...]] = ()

    def __init__(self, site: ReplicaSite) -> None:
        self.site = site

    @classmethod
    def chat_call(cls, ex: Exchange) -> bool:
        """Whether ``ex`` is one of this plugin's chat calls besides an admin-ajax POST (which every
        plugin's chat is): a stream GET, a REST route (what the chat-only challenge watches for)."""
        return False

    @property
    def core_path(self) -> str:
        """Where WordPress's own files live below the site root: ``""``, or ``SUBFOLDER`` in page mode "subfolder"."""
        return SUBFOLDER if self.site.config.page == "subfolder" else ""

    @property
    def core_url(self) -> str:
        """The URL of WordPress's own files (``admin_url``, ``plugins_url``); the pages stay at ``site.url``."""
        return self.site.url + self.core_path

    def page_paths(self) -> tuple[str, ...]:
        """Where the chat page answers: the front page, ``/chat/`` and the plugin's own slug."""
        return tuple(dict.fromkeys(("/", "/chat/", f"/{self.slug}/")))

    def dispatch(self, ex: Exchange) -> None:
        """Route one request as WordPress would (pretty permalinks on)."""
        ex.powered_by = self.powered_by
        path = ex.path
        pages = self.page_paths()
        if ex.method in ("GET", "HEAD"):
            if path in pages:
                self.site.count("page_loads")
                self.page(ex)
                return
            if path != "/" and f"{path}/" in pages:
                ex.respond(
                    301,
                    [
                        ("Content-Type", "text/html; charset=UTF-8"),
                        ("X-Redirect-By", "WordPress"),
                        ("Location", f"{self.site.url}{path}/"),
                    ],
                )
                return
        if path == WIDGET_PATH and ex.method == "GET":
            ex.pause(self.site.config.build_delay)  # a slow theme endpoint the page's builder waits on
            ex.respond(200, [("Content-Type", "application/json; charset=UTF-8")], b"{}")
            return
        if path == f"{self.core_path}/wp-admin/admin-ajax.php":
            self.ajax(ex)
            return
        if path == "/wp-json" or path.startswith("/wp-json/"):
            self.rest(ex, "/" + path[len("/wp-json") :].strip("/"))
            return
        if path in ("/", "/index.php") and "rest_route" in ex.query:
            self.rest(ex, "/" + ex.query["rest_route"].strip("/"))
            return
        self.not_found(ex)

    # -- the chat page -----------------------------------------------------------------------------

    def page(self, ex: Exchange) -> None:
        """The chat page, shaped by ``config.page``: no chat box at all, or the plugins' parts in the shell;
        or a broken answer where the page should be (a fatal error, an empty body)."""
        mode = self.site.config.page
        if mode == "no_chatbox":
            self.plain_page(ex, f"<p>{self.page_text}</p>\n{CLOSED_TEXT}")
            return
        if mode == "http_500":
            self.critical_error(ex)
            return
        if mode == "empty":
            ex.respond(200, self.page_headers())
            return
        self.render(ex, self.parts(ex))

    def parts(self, ex: Exchange) -> list[PageParts]:
        """The parts of every plugin on the page (one here; several on a multi-plugin site)."""
        return [self.page_parts(ex)]

    def page_parts(self, ex: Exchange) -> PageParts:
        """The plugin's chat box and what comes with it (a subclass renders its plugin's markup)."""
        return PageParts(before=f"<p>{self.page_text}</p>")

    def render(self, ex: Exchange, parts: list[PageParts]) -> None:
        """The page around ``parts``; in modes "script_built" and "request_built" the boxes and scripts come
        by script after load (after a timer, or after a slow request)."""
        built = self.site.config.page in ("script_built", "request_built")
        blocks: list[str] = []
        mounts: list[tuple[str, str]] = []
        scripts = [tag for part in parts for tag in part.scripts]
        for index, part in enumerate(parts):
            box = part.box
            if built and box:
                mount = f"site-chat-{index}"
                mounts.append((mount, box))
                box = f'<div class="site-chat" id="{mount}"></div>'
            blocks.append("\n".join(piece for piece in (part.before, box, part.after) if piece))
        tags = [f"<script src='{src}' id='{name}'></script>" for src, name in scripts]
        if built:
            via = self.site.url + WIDGET_PATH if self.site.config.page == "request_built" else None
            blocks.append(script_builder(mounts, scripts, self.site.config.build_delay, via))
            tags = []
        footer = "\n".join(piece for piece in (*(part.footer for part in parts), *tags) if piece)
        html = page_shell(
            self.site.url,
            title=self.title,
            slug=self.slug,
            content="\n".join(blocks),
            head="".join(part.head for part in parts),
            footer=footer,
            post_id=self.post_id,
            core_url=self.core_url,
        )
        headers = self.page_headers() + [header for part in parts for header in part.headers]
        body = html.encode("utf-8")
        if self.site.config.page == "huge":  # a page builder's weight: more than a browser keeps of a body
            body = body.replace(b"</body>", b"<!-- " + b"x" * HUGE_PADDING + b" -->\n</body>", 1)
        ex.respond(200, headers, body)

    def page_headers(self) -> Headers:
        """What WordPress sends with a page."""
        url = self.site.url
        return [
            ("Content-Type", "text/html; charset=UTF-8"),
            ("Link", f'<{url}/wp-json/>; rel="https://api.w.org/"'),
            ("Link", f'<{url}/wp-json/wp/v2/pages/{self.post_id}>; rel="alternate"; type="application/json"'),
            ("Link", f"<{url}/?p={self.post_id}>; rel=shortlink"),
        ]

    def plain_page(self, ex: Exchange, intro: str) -> None:
        """A page with no chat plugin markup at all."""
        html = page_shell(
            self.site.url,
            title=self.title,
            slug=self.slug,
            content=intro,
            post_id=self.post_id,
            core_url=self.core_url,
        )
        ex.respond(200, self.page_headers(), html.encode("utf-8"))

    # -- admin-ajax and REST -----------------------------------------------------------------------

    def ajax(self, ex: Exchange) -> None:
        """``admin-ajax.php`` with no action this site knows: WordPress answers ``0``."""
        self.ajax_die(ex, 400, "0")

    def ajax_die(self, ex: Exchange, status: int, text: str) -> None:
        """``wp_die`` inside admin-ajax: the bare text, no page around it."""
        ex.respond(status, AJAX_ERROR_HEADERS, text.encode("utf-8"))

    def ajax_json(self, ex: Exchange, value: Any, status: int = 200) -> None:
        """``wp_send_json``."""
        ex.respond(status, self.json_headers, php_json(value).encode("utf-8"))

    def rest(self, ex: Exchange, route: str) -> None:
        """The REST API: the index at ``/``, otherwise no such route."""
        if route == "/" and ex.method in ("GET", "HEAD"):
            index = {
                "name": BLOG_NAME,
                "description": "Questions answered, day and night",
                "url": self.site.url,
                "home": self.site.url,
                "namespaces": ["oembed/1.0", *self.rest_namespaces(), "wp/v2", "wp-site-health/v1"],
                "authentication": [],
                "routes": {},
            }
            self.rest_json(ex, 200, index)
            return
        if ex.method == "OPTIONS":
            ex.respond(200, [*rest_headers(self.site.url, ex.origin), ("Allow", "GET, POST")])
            return
        self.rest_json(
            ex,
            404,
            {
                "code": "rest_no_route",
                "message": "No route was found matching the URL and request method.",
                "data": {"status": 404},
            },
        )

    def rest_namespaces(self) -> list[str]:
        """The REST namespaces the plugin registers."""
        return []

    def rest_json(self, ex: Exchange, status: int, value: Any, extra: Headers | None = None) -> None:
        """A REST answer: JSON, WordPress's REST headers, then ``extra``."""
        headers = [("Content-Type", "application/json; charset=UTF-8"), *rest_headers(self.site.url, ex.origin)]
        ex.respond(status, headers + (extra or []), php_json(value).encode("utf-8"))

    def critical_error(self, ex: Exchange) -> None:
        """A PHP fatal error: WordPress's "critical error" page with status 500."""
        ex.respond(500, critical_error_headers(), CRITICAL_ERROR_HTML.encode("utf-8"))

    def not_found(self, ex: Exchange) -> None:
        """The theme's 404 page."""
        headers = [
            ("Content-Type", "text/html; charset=UTF-8"),
            *NOCACHE_HEADERS,
            ("Link", f'<{self.site.url}/wp-json/>; rel="https://api.w.org/"'),
        ]
        ex.respond(404, headers, not_found_page(self.site.url).encode("utf-8"))


class MultiPluginApp(WordPressApp):
    """Several chat plugins on one WordPress: one page shows every plugin's chat box, and each plugin's
    admin-ajax actions and REST routes answer as on its own site."""

    slug = "chat"
    title = "Chat"

    def __init__(self, site: ReplicaSite, apps: list[WordPressApp]) -> None:
        super().__init__(site)
        self.apps = apps
        first = apps[0]
        self.plugin = "+".join(app.plugin for app in apps)
        self.page_text = first.page_text
        self.post_id = first.post_id
        self.powered_by = first.powered_by
        for app in apps:
            app.post_id = self.post_id  # one page, one id, whichever plugin prints it

    def parts(self, ex: Exchange) -> list[PageParts]:
        """Every plugin's parts, in the order the plugins were named."""
        return [part for app in self.apps for part in app.parts(ex)]

    def ajax(self, ex: Exchange) -> None:
        """The plugin that registered the action answers; an action nobody registered is WordPress's ``0``."""
        action = {**ex.query, **(ex.form or {})}.get("action")
        for app in self.apps:
            if action in app.ajax_actions:
                app.ajax(ex)
                return
        super().ajax(ex)

    def rest(self, ex: Exchange, route: str) -> None:
        """The plugin whose namespace the route is in answers; the index and unknown routes are WordPress's."""
        for app in self.apps:
            if any(route == f"/{space}" or route.startswith(f"/{space}/") for space in app.rest_namespaces()):
                app.rest(ex, route)
                return
        super().rest(ex, route)

    def rest_namespaces(self) -> list[str]:
        """Every plugin's namespaces."""
        return [space for app in self.apps for space in app.rest_namespaces()]
