"""The WordPress around the plugins: PHP-style JSON, header sets, the page shell and error pages.

Header lists keep the order the real stack (PHP 8.2's built-in server, WordPress 6.1) sends them in,
so a client is tested against the same bytes it will meet on a live site.
"""

from __future__ import annotations

import json
import secrets
import string
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .exchange import Exchange
    from .server import ReplicaSite

__all__ = [
    "AJAX_ERROR_HEADERS",
    "AJAX_JSON_HEADERS",
    "AJAX_STREAM_HEADERS",
    "CRITICAL_ERROR_HTML",
    "NOCACHE_HEADERS",
    "POST_ID",
    "Headers",
    "WordPressApp",
    "critical_error_headers",
    "esc_attr",
    "not_found_page",
    "page_shell",
    "php_json",
    "php_session_id",
    "rest_headers",
    "uniqid",
]

Headers = list[tuple[str, str]]

POST_ID = 4
BLOG_NAME = "Chat Corner"
WP_VERSION = "6.1.1"

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


def php_json(value: Any) -> str:
    """``json_encode`` with PHP's defaults: compact, non-ASCII as ``\\uXXXX``, slashes as ``\\/``."""
    # "/" can only occur inside JSON strings, so escaping it in the text is exact.
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/")


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


def uniqid() -> str:
    """PHP's ``uniqid()``: 8 hex digits of seconds and 5 of microseconds (AI Engine's session ids)."""
    now = time.time()
    seconds = int(now)
    micros = int((now - seconds) * 1_000_000) ^ secrets.randbelow(0x100)  # unique even within one microsecond
    return f"{seconds:08x}{micros & 0xFFFFF:05x}"


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
) -> str:
    """A complete WordPress page (Underscores-like theme) for post ``POST_ID`` with ``content`` inside."""
    return f"""<!doctype html>
<html lang="en-US">
<head>
	<meta charset="UTF-8">
	<meta name="viewport" content="width=device-width, initial-scale=1">
	<link rel="profile" href="https://gmpg.org/xfn/11">
	<title>{title} &#8211; {BLOG_NAME}</title>
<meta name='robots' content='max-image-preview:large' />
<link rel="alternate" type="application/rss+xml" title="{BLOG_NAME} &raquo; Feed" href="{site_url}/feed/" />
<link rel='stylesheet' id='site-style-css' href='{site_url}/wp-content/themes/corner/style.css?ver=1.0.0' media='all' />
<link rel="icon" href="{site_url}/wp-content/themes/corner/icon.svg" sizes="any" type="image/svg+xml" />
{head}<link rel="https://api.w.org/" href="{site_url}/wp-json/" />
<link rel="alternate" type="application/json" href="{site_url}/wp-json/wp/v2/pages/{POST_ID}" />
<link rel="EditURI" type="application/rsd+xml" title="RSD" href="{site_url}/xmlrpc.php?rsd" />
<meta name="generator" content="WordPress {WP_VERSION}" />
<link rel="canonical" href="{site_url}/{slug}/" />
<link rel='shortlink' href='{site_url}/?p={POST_ID}' />
</head>

<body class="page-template-default page page-id-{POST_ID} wp-embed-responsive no-sidebar">
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
<article id="post-{POST_ID}" class="post-{POST_ID} page type-page status-publish hentry">
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


class WordPressApp:
    """Routing every WordPress site shares; a plugin subclass adds its page, AJAX actions and REST routes."""

    plugin = ""
    slug = ""
    title = ""

    def __init__(self, site: ReplicaSite) -> None:
        self.site = site

    def dispatch(self, ex: Exchange) -> None:
        """Route one request as WordPress would (pretty permalinks on)."""
        path = ex.path
        if ex.method in ("GET", "HEAD"):
            if path in ("/", f"/{self.slug}/"):
                self.site.count("page_loads")
                self.page(ex)
                return
            if path == f"/{self.slug}":
                ex.respond(
                    301,
                    [
                        ("Content-Type", "text/html; charset=UTF-8"),
                        ("X-Redirect-By", "WordPress"),
                        ("Location", f"{self.site.url}/{self.slug}/"),
                    ],
                )
                return
        if path == "/wp-admin/admin-ajax.php":
            self.ajax(ex)
            return
        if path == "/wp-json" or path.startswith("/wp-json/"):
            self.rest(ex, "/" + path[len("/wp-json") :].strip("/"))
            return
        if path in ("/", "/index.php") and "rest_route" in ex.query:
            self.rest(ex, "/" + ex.query["rest_route"].strip("/"))
            return
        self.not_found(ex)

    def page(self, ex: Exchange) -> None:
        """The chat page (a subclass renders its plugin's markup)."""
        self.not_found(ex)

    def page_headers(self) -> Headers:
        """What WordPress sends with a page."""
        url = self.site.url
        return [
            ("Content-Type", "text/html; charset=UTF-8"),
            ("Link", f'<{url}/wp-json/>; rel="https://api.w.org/"'),
            ("Link", f'<{url}/wp-json/wp/v2/pages/{POST_ID}>; rel="alternate"; type="application/json"'),
            ("Link", f"<{url}/?p={POST_ID}>; rel=shortlink"),
        ]

    def plain_page(self, ex: Exchange, intro: str) -> None:
        """A page with no chat plugin markup at all."""
        html = page_shell(self.site.url, title=self.title, slug=self.slug, content=intro)
        ex.respond(200, self.page_headers(), html.encode("utf-8"))

    def ajax(self, ex: Exchange) -> None:
        """``admin-ajax.php`` with no action this site knows: WordPress answers ``0``."""
        self.ajax_die(ex, 400, "0")

    def ajax_die(self, ex: Exchange, status: int, text: str) -> None:
        """``wp_die`` inside admin-ajax: the bare text, no page around it."""
        ex.respond(status, AJAX_ERROR_HEADERS, text.encode("utf-8"))

    def ajax_json(self, ex: Exchange, value: Any, status: int = 200) -> None:
        """``wp_send_json``."""
        ex.respond(status, AJAX_JSON_HEADERS, php_json(value).encode("utf-8"))

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
