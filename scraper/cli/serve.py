"""``scraper serve``: an OpenAI-compatible API (``/v1/chat/completions``, ``/v1/responses``, ``/v1/models``) on
one warm browser.

Loopback by default. Listening on any other address needs ``--api-key`` (or ``--insecure``): whoever
reaches the server chats through this machine's browser, its address and its saved cookies.
"""

from __future__ import annotations

import argparse
import os

from ..serve._config import DEFAULT_PORT, ServeConfig


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "serve", help=f"serve an OpenAI-compatible API for the chat boxes (default 127.0.0.1:{DEFAULT_PORT})"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    parser.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help="clients must send `Authorization: Bearer KEY`; better: $SCRAPER_API_KEY or --api-key-file, "
        "which `ps` does not show",
    )
    parser.add_argument(
        "--api-key-file",
        default=os.environ.get("SCRAPER_API_KEY_FILE") or None,
        metavar="PATH",
        help="read the API key from this file's first line (default: $SCRAPER_API_KEY_FILE)",
    )
    parser.add_argument("--insecure", action="store_true", help="allow listening beyond loopback without an API key")
    parser.add_argument(
        "--site",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="offer the chat page URL as model NAME (and NAME/BOT per bot on it); repeatable",
    )
    parser.add_argument(
        "--allow-urls",
        action="store_true",
        help="let requests name any chat page (`site`) even off loopback (on loopback they always may)",
    )
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=ServeConfig.max_concurrency,
        metavar="N",
        help="chats at once, all sites (default %(default)s)",
    )
    parser.add_argument(
        "--site-rate",
        type=int,
        default=os.environ.get("SCRAPER_SITE_RATE") or None,
        metavar="N",
        help="chats a minute started with one site (its origin) at most, shared by every server on the same "
        "--state; beyond it a chat waits within --queue-timeout, else gets 429 (default: $SCRAPER_SITE_RATE, "
        "else no bound)",
    )
    parser.add_argument(
        "--queue-timeout",
        type=float,
        default=ServeConfig.queue_timeout,
        metavar="S",
        help="seconds a request waits for a free slot before 429 (default %(default)g)",
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="serve requests from this web page origin (e.g. http://localhost:3000), with CORS; repeatable "
        "(by default requests from web pages are refused)",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="answer requests for this Host name besides the listening address; repeatable",
    )
    parser.add_argument(
        "--max-sites",
        type=int,
        default=None,
        metavar="N",
        help="warm chat pages kept at most; the least recently used idle one is closed (default 6)",
    )
    parser.add_argument(
        "--conversations",
        default=None,
        metavar="PATH|off",
        help="the conversation store: which site conversation goes on with which history (default: "
        "$SCRAPER_CONVERSATIONS, else a file under the user's data folder; `off`: this run only)",
    )
    parser.add_argument(
        "--state",
        default=os.environ.get("SCRAPER_STATE") or None,
        metavar="redis://[:PASSWORD@]HOST:PORT/DB",
        help="share conversations and cleared anti-bot cookies with the other servers behind one load balancer "
        "through this Redis (default: $SCRAPER_STATE; none: this server's own store)",
    )
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="json: each log line one JSON object carrying its request's id (also sent as x-request-id); "
        "logs each request",
    )
    parser.add_argument("--headed", action="store_true", help="show the browser window")
    parser.add_argument(
        "--browser",
        metavar="URL",
        action="append",
        default=[],
        help="chat in a remote browser: ws://HOST:PORT/PATH (scraper browser-server, playwright run-server) or "
        "http://HOST:PORT (Chromium's CDP); repeatable (and `local`): a pool of browsers, each optionally with "
        "?capacity=N chats at once (default: $SCRAPER_BROWSERS, comma- or space-separated)",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log each request (-vv: debug)")
    parser.set_defaults(run=run)


def _sites(pairs: list[str]) -> dict[str, str]:
    from ._common import UsageError

    sites: dict[str, str] = {}
    for pair in pairs:
        name, sep, url = pair.partition("=")
        if not sep or not name.strip() or not url.strip():
            raise UsageError(f"--site wants NAME=URL, not {pair!r}")
        if name.strip() in sites:
            raise UsageError(f"--site {name.strip()} is given twice")
        sites[name.strip()] = url.strip()
    return sites


def api_key(args: argparse.Namespace) -> str | None:
    """The key from --api-key, --api-key-file or $SCRAPER_API_KEY (in that order)."""
    import sys

    from ._common import UsageError

    if args.api_key:
        print(
            "scraper serve: --api-key shows the key to anyone who can list processes (ps); "
            "prefer SCRAPER_API_KEY or --api-key-file",
            file=sys.stderr,
        )
        return str(args.api_key)
    if args.api_key_file:
        try:
            with open(args.api_key_file, encoding="utf-8") as fh:
                key = fh.readline().strip()
        except OSError as exc:
            raise UsageError(f"Cannot read the API key file {args.api_key_file}: {exc.strerror}") from None
        if not key:
            raise UsageError(f"The API key file {args.api_key_file} is empty.")
        return key
    return os.environ.get("SCRAPER_API_KEY") or None


def browsers(given: list[str]) -> tuple[str | None, tuple[str, ...]]:
    """The browser (None: launch one here) or the pool (two or more) from --browser or $SCRAPER_BROWSERS."""
    from ..browser import parse_browsers

    found = parse_browsers(given or os.environ.get("SCRAPER_BROWSERS", ""))
    if len(found) > 1:
        return None, tuple(url + (f"?capacity={cap}" if cap else "") for url, cap in found)
    url = found[0][0] if found else "local"
    return (None if url == "local" else url), ()


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..serve import run as serve
    from ._common import UsageError

    try:
        browser, pool = browsers(args.browser)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None

    config = ServeConfig(
        host=args.host,
        port=args.port,
        api_key=api_key(args),
        allow_origins=tuple(args.allow_origin),
        allow_hosts=tuple(args.allow_host),
        max_sites=args.max_sites,
        insecure=args.insecure,
        sites=_sites(args.site),
        allow_urls=args.allow_urls,
        max_concurrency=args.max_concurrency,
        site_rate=args.site_rate,
        queue_timeout=args.queue_timeout,
        headed=args.headed,
        conversations=args.conversations,
        state=args.state,
        log_format=args.log_format,
        browser=browser,
        browsers=pool,
    )
    try:
        config.check()
        from ..client._models import ModelCatalog

        ModelCatalog(config.sites)  # a bad site name or URL is a usage error, before anything starts
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    return serve(config, log_level={0: "warning", 1: "info"}.get(args.verbose, "debug"))
