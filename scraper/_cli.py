"""The ``scraper`` command line: ``chat``, ``demo``, ``inspect``, ``solve``, ``profiles``, ``replica``,
``record`` and ``replay``.

The reply goes to stdout as it streams; notes, progress and errors go to stderr, so the reply can be
piped. Exit status: 0 on a complete reply, 1 on a scraper error (one line saying what to do), 2 on a
usage error, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ._browser import BrowserOptions
from ._chat import AIEngineChat, AIPowerChat, WordPressChat
from ._errors import ScraperError
from ._providers import Chatgpt4Online, ChatgptFree

__all__ = ["main"]

PROVIDERS: dict[str, type[WordPressChat]] = {"chatgptfree": ChatgptFree, "chatgpt4online": Chatgpt4Online}
PLUGINS: dict[str, type[WordPressChat]] = {"aipower": AIPowerChat, "aiengine": AIEngineChat}


class Progress(logging.Handler):
    """A one-line note on stderr while nothing has streamed yet; shows the current step of the flow.

    On a terminal it is a spinner with the elapsed time; elsewhere each step is one plain line.
    """

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, stream: TextIO, label: str) -> None:
        super().__init__(logging.INFO)
        self.stream = stream
        self.label = label
        self.step = "starting"
        self.started = time.perf_counter()
        self.tty = stream.isatty()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.step = record.getMessage()
        if not self.tty and not self._stop.is_set():
            print(f"scraper: {self.step}", file=self.stream, flush=True)

    def _spin(self) -> None:
        frame = 0
        while not self._stop.wait(0.1):
            elapsed = time.perf_counter() - self.started
            text = f"{self.FRAMES[frame % len(self.FRAMES)]} {self.label}: {self.step} ({elapsed:.1f} s)"
            self.stream.write("\r\x1b[2K" + text[:150])
            self.stream.flush()
            frame += 1

    def __enter__(self) -> Progress:
        logging.getLogger("scraper").addHandler(self)
        if logging.getLogger("scraper").getEffectiveLevel() > logging.INFO:
            logging.getLogger("scraper").setLevel(logging.INFO)
        if self.tty:
            self._thread = threading.Thread(target=self._spin, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Clear the note: the reply is about to be printed."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self.stream.write("\r\x1b[2K")
            self.stream.flush()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        logging.getLogger("scraper").removeHandler(self)


def _browser_options(args: argparse.Namespace) -> BrowserOptions:
    options: BrowserOptions = {}
    if getattr(args, "headed", False):
        options["headless"] = False
    if getattr(args, "slow_mo", None):
        options["slow_mo"] = float(args.slow_mo)
    return options


def _cookies(args: argparse.Namespace) -> dict[str, str] | None:
    """``--cookie NAME=VALUE`` (repeatable) as a dict."""
    pairs = getattr(args, "cookie", None)
    if not pairs:
        return None
    cookies = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"scraper: error: --cookie wants NAME=VALUE, not {pair!r}")
        cookies[name.strip()] = value
    return cookies


def _message(args: argparse.Namespace, example: str) -> str:
    """The message from the arguments, else from stdin."""
    message = " ".join(args.message) if args.message else ""
    if not message:
        if sys.stdin.isatty():
            raise SystemExit(f"scraper: error: give a message, e.g. {example}")
        message = sys.stdin.read().strip()
    return message


def _target(args: argparse.Namespace) -> Any:
    """The chat to use: a preset, a preset pointed at --url, or a generic plugin chat at --url."""
    if args.plugin:
        if not args.url:
            raise SystemExit("scraper: error: --plugin needs --url")
        if getattr(args, "provider", None):
            raise SystemExit("scraper: error: give --provider or --plugin, not both")
        return PLUGINS[args.plugin](args.url, browser=_browser_options(args))
    provider = PROVIDERS[args.provider or "chatgptfree"]
    if args.url:
        return provider(args.url, browser=_browser_options(args))
    return provider


async def _stream_reply(
    target: Any, args: argparse.Namespace, message: str, out: TextIO, prefix: str = ""
) -> dict[str, float]:
    """Print one reply as it streams (``prefix`` before its first chunk); return its timings."""
    label = f"{getattr(target, '__name__', type(target).__name__)} {target.page_url()}"
    started = time.perf_counter()
    first: float | None = None
    with Progress(sys.stderr, label) as progress:
        stream = target.create_async_generator(
            args.model or "",
            [{"role": "user", "content": message}],
            proxy=args.proxy,
            timeout=args.timeout,
            cookies=_cookies(args),
            trace=getattr(args, "trace", None),
            debug_dir=getattr(args, "debug_dir", None),
            **_browser_options(args),
        )
        async with stream:
            async for chunk in stream:
                if first is None:
                    first = time.perf_counter() - started
                    progress.stop()
                    out.write(prefix)
                out.write(chunk)
                out.flush()
    out.write("\n")
    out.flush()
    total = time.perf_counter() - started
    return {"first_chunk": first if first is not None else total, "total": total}


def _configure_logging(verbose: int) -> None:
    if verbose:
        logging.basicConfig(
            level=logging.DEBUG if verbose > 1 else logging.INFO,
            format="%(asctime)s %(name)s %(levelname)s %(message)s",
            stream=sys.stderr,
        )


async def _cmd_chat(args: argparse.Namespace) -> int:
    await _stream_reply(_target(args), args, _message(args, 'scraper chat "Hello"'), sys.stdout)
    return 0


async def _cmd_record(args: argparse.Namespace) -> int:
    """Chat for real, stream the reply to stdout, write the cassette, name it on stderr."""
    from ._cassette import record_chat

    message = _message(args, 'scraper record --out fixtures/hello "Hello"')
    target = _target(args)

    def show(chunk: str) -> None:
        sys.stdout.write(chunk)
        sys.stdout.flush()

    print(f"scraper: recording {target.page_url()} into {args.out}", file=sys.stderr)
    result = await record_chat(
        target,
        message,
        args.out,
        name=args.name,
        provider=None if args.plugin else (args.provider or "chatgptfree"),
        model=args.model or "",
        timeout=args.timeout,
        cookies=_cookies(args),
        proxy=args.proxy,
        overwrite=args.force,
        on_chunk=show,
        **_browser_options(args),
    )
    print()
    cassette = result.cassette
    print(
        f"scraper: cassette {result.path} ({len(cassette.pages)} page(s), {len(cassette.exchanges)} exchange(s); "
        f"placeholders: {', '.join(cassette.meta['placeholders']) or 'none'})",
        file=sys.stderr,
    )
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    """Serve a cassette until interrupted; print its URL on stdout (alone, for scripts)."""
    from ._replay import ReplayServer

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    try:
        server = ReplayServer(Path(args.cassette), speed=args.speed, port=args.port or 0, host=args.host)
        server.start()
    except (OSError, ValueError) as exc:
        print(f"scraper: error: cannot serve {args.cassette}: {exc}", file=sys.stderr)
        return 1
    cassette = server.cassette
    print(server.url, flush=True)
    env = {"aipower": "SCRAPER_CHATGPTFREE_URL", "aiengine": "SCRAPER_CHATGPT4ONLINE_URL"}.get(cassette.plugin or "")
    hint = f'\n  try: {env}={server.url} scraper chat "{cassette.meta.get("message") or "…"}"' if env else ""
    print(
        f"scraper replay: serving {cassette.summary()} at {server.url} (speed {args.speed:g}); Ctrl-C to stop{hint}",
        file=sys.stderr,
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    used = len(cassette.exchanges) - len(server.unused)
    print(
        f"\nscraper replay: stopped; {used} of {len(cassette.exchanges)} recorded exchange(s) replayed, "
        f"{len(server.mismatches)} mismatch(es)",
        file=sys.stderr,
    )
    return 0


def _cmd_regen_fixtures(args: argparse.Namespace) -> int:
    """Record every shipped cassette again against fresh replica sites."""
    from ._cassette import regenerate_fixtures

    for path in regenerate_fixtures(args.dir):
        print(path)
    return 0


async def _cmd_demo(args: argparse.Namespace) -> int:
    from .replica import Replica

    with Replica() as replica:
        os.environ["SCRAPER_CHATGPTFREE_URL"] = replica.aipower.url
        os.environ["SCRAPER_CHATGPT4ONLINE_URL"] = replica.aiengine.url
        print(
            f"scraper demo: local replica sites on 127.0.0.1 — AI Power {replica.aipower.url}, "
            f"AI Engine {replica.aiengine.url}",
            file=sys.stderr,
        )
        message = args.message or "Привет, как дела?"
        runs = [("ChatgptFree", ChatgptFree, "cold"), ("Chatgpt4Online", Chatgpt4Online, "new site")]
        runs.append(("ChatgptFree", ChatgptFree, "warm"))
        for name, provider, state in runs:
            print(f"\n── {name} ({provider.plugin_class.label}) · {provider.page_url()} · {state}", file=sys.stderr)
            print(f"you> {message}", file=sys.stderr, flush=True)
            times = await _stream_reply(provider, args, message, sys.stdout, prefix="ai>  ")
            print(
                f"     first chunk after {times['first_chunk']:.2f} s, complete after {times['total']:.2f} s",
                file=sys.stderr,
            )
    return 0


async def _cmd_inspect(args: argparse.Namespace) -> int:
    from ._inspect import format_report, inspect, report_json

    url = args.url or (PROVIDERS[args.provider].page_url() if args.provider else None)
    if not url:
        raise SystemExit("scraper: error: give a URL or --provider")
    with Progress(sys.stderr, f"inspect {url}"):
        report = await inspect(url, timeout=args.timeout, proxy=args.proxy, **_browser_options(args))
    print(report_json(report) if args.json else format_report(report))
    return 1 if report.get("error") else 0


async def _cmd_solve(args: argparse.Namespace) -> int:
    from ._solve import solve

    options = _browser_options(args)
    with Progress(sys.stderr, f"solve {args.url}"):
        if options.get("headless", True) is not False:
            print("scraper: running headless; add --headed to pass a check by hand", file=sys.stderr)
        profile = await solve(
            args.url,
            timeout=args.timeout,
            proxy=args.proxy,
            headless=options.get("headless", True),
            **({"slow_mo": options["slow_mo"]} if "slow_mo" in options else {}),
        )
    print(f"saved the profile for {profile.site}: {len(profile.cookie_names)} cookies ({profile.path})")
    return 0


def _cmd_profiles(args: argparse.Namespace) -> int:
    from ._profiles import clear_profiles, list_profiles

    if args.clear is not None:
        removed = clear_profiles(args.clear or None)
        print(f"removed {len(removed)} profile(s){': ' + ', '.join(removed) if removed else ''}")
        return 0
    profiles = list_profiles()
    if not profiles:
        print("no saved profiles (scraper solve URL --headed saves one)")
    for profile in profiles:
        age = time.time() - profile.saved_at
        when = f"{age / 3600:.1f} h ago" if age >= 3600 else f"{age / 60:.0f} min ago"
        print(f"{profile.site:<32} saved {when:<12} cookies: {', '.join(profile.cookie_names) or 'none'}")
    return 0


def _cmd_replica(args: argparse.Namespace) -> int:
    from .replica.__main__ import main as replica_main

    argv = ["--plugin", args.plugin_name, "--host", args.host]
    if args.port is not None:
        argv += ["--port", str(args.port)]
    return int(replica_main(argv) or 0)


def _add_browser_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--headed", action="store_true", help="show the browser window")
    parser.add_argument("--slow-mo", type=float, metavar="MS", help="slow each browser action down by MS ms")
    parser.add_argument("--timeout", type=float, default=120, help="seconds allowed for each step (default 120)")
    parser.add_argument("--proxy", help="proxy URL for the browser, e.g. http://user:pass@host:3128")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log each step (-vv: debug)")


def _add_site_flags(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument("message", nargs="*", help="the message (default: read stdin)")
    parser.add_argument("--provider", choices=sorted(PROVIDERS), help="a preset site (default chatgptfree)")
    parser.add_argument("--plugin", choices=sorted(PLUGINS), help=f"{verb} --url as a site running this plugin")
    parser.add_argument("--url", help="the site's base URL (with --provider: a mirror of that site)")
    parser.add_argument("--model", help="model name or alias (default: the provider's default)")
    parser.add_argument("--cookie", action="append", metavar="NAME=VALUE", help="a cookie for the site (repeatable)")
    _add_browser_flags(parser)


def _add_debug_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trace", metavar="PATH", help="write a Playwright trace (open: playwright show-trace PATH)")
    parser.add_argument("--debug-dir", metavar="DIR", help="where to keep a screenshot and the HTML on failure")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scraper", description="Chat with the AI chat boxes of WordPress sites through a real Chromium."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", help="send one message and stream the reply to stdout")
    _add_site_flags(chat, "talk to")
    _add_debug_flags(chat)

    demo = sub.add_parser("demo", help="start the bundled replica sites and chat with each provider")
    demo.add_argument("--message", help="what to ask (default: Привет, как дела?)")
    demo.add_argument("--model", help=argparse.SUPPRESS)
    _add_browser_flags(demo)
    _add_debug_flags(demo)

    inspect = sub.add_parser("inspect", help="show what the browser finds on a chat page (values, checks, requests)")
    inspect.add_argument("url", nargs="?", help="the chat page")
    inspect.add_argument("--provider", choices=sorted(PROVIDERS), help="inspect a preset's chat page")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    _add_browser_flags(inspect)
    inspect.set_defaults(timeout=60)

    solve = sub.add_parser("solve", help="pass a site's anti-bot check once (with --headed: by hand) and save it")
    solve.add_argument("url", help="the site or chat page")
    _add_browser_flags(solve)
    solve.set_defaults(timeout=300)

    profiles = sub.add_parser("profiles", help="list saved site profiles, or --clear them")
    profiles.add_argument("--clear", nargs="?", const="", metavar="SITE", help="remove one site's profile, or all")

    replica = sub.add_parser("replica", help="serve the bundled replica sites on 127.0.0.1 until interrupted")
    replica.add_argument("--plugin", dest="plugin_name", choices=["aipower", "aiengine", "both"], default="both")
    replica.add_argument("--host", default="127.0.0.1")
    replica.add_argument("--port", type=int)

    record = sub.add_parser("record", help="chat for real and write the flow as a cassette (secrets replaced)")
    _add_site_flags(record, "record")
    record.add_argument("--out", required=True, help="the cassette folder to write, e.g. fixtures/hello")
    record.add_argument("--name", help="the cassette's name (default: the folder's name)")
    record.add_argument("--force", action="store_true", help="replace a cassette already at --out")

    replay = sub.add_parser("replay", help="serve a cassette on 127.0.0.1 as a site until interrupted")
    replay.add_argument("cassette", help="the cassette folder, e.g. fixtures/chatgptfree-hello")
    replay.add_argument("--port", type=int, help="port to listen on (default: a free one)")
    replay.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    replay.add_argument("--speed", type=float, default=1.0, help="1.0: chunks as timed when recorded; 0: at once")
    replay.add_argument("-v", "--verbose", action="count", default=0, help="log each request (-vv: debug)")

    regen = sub.add_parser("regen-fixtures", help=argparse.SUPPRESS)
    regen.add_argument("--dir", default="fixtures", help="where the shipped cassettes live")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(getattr(args, "verbose", 0))
    try:
        plain = {
            "replica": _cmd_replica,
            "profiles": _cmd_profiles,
            "replay": _cmd_replay,
            "regen-fixtures": _cmd_regen_fixtures,
        }
        if args.command in plain:
            return plain[args.command](args)
        command = {
            "chat": _cmd_chat,
            "demo": _cmd_demo,
            "inspect": _cmd_inspect,
            "solve": _cmd_solve,
            "record": _cmd_record,
        }
        return asyncio.run(command[args.command](args))
    except ScraperError as exc:
        print(f"\nscraper: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nscraper: interrupted", file=sys.stderr)
        return 130
    finally:
        with contextlib.suppress(Exception):
            from ._browser import close

            close()


if __name__ == "__main__":
    sys.exit(main())
