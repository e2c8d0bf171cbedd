"""What the commands share: flags, the chat target, a progress note on stderr, printing a reply."""

from __future__ import annotations

import argparse
import logging
import re
import sys
import threading
import time
from typing import Any, TextIO

from ..browser import BrowserOptions
from ..client import PRESETS, WordPressChat
from ..plugins import PLUGINS
from ..wire import RedactingFilter, redact

__all__ = [
    "Progress",
    "UsageError",
    "add_browser_flags",
    "add_debug_flags",
    "add_site_flags",
    "browser_options",
    "configure_logging",
    "cookies",
    "message",
    "plain",
    "stream_reply",
    "target",
]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]|\x1b\[[0-9;?]*[A-Za-z]")


class UsageError(Exception):
    """The command line asks for something that cannot be done as given (exit status 2)."""


def plain(text: str) -> str:
    """Text from a site made safe for a terminal: no escape codes or control characters, no secrets."""
    return redact(_CONTROL.sub("", text))


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
        self.addFilter(RedactingFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.step = plain(record.getMessage())
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


class _PlainFormatter(logging.Formatter):
    """Log lines for a terminal: no control characters from a site, no secrets."""

    def format(self, record: logging.LogRecord) -> str:
        return plain(super().format(record))


def configure_logging(verbose: int) -> None:
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_PlainFormatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        handler.addFilter(RedactingFilter())
        logging.getLogger("scraper").addHandler(handler)
        logging.getLogger("scraper").setLevel(logging.DEBUG if verbose > 1 else logging.INFO)


def browser_options(args: argparse.Namespace) -> BrowserOptions:
    options: BrowserOptions = {}
    if getattr(args, "headed", False):
        options["headless"] = False
    if getattr(args, "slow_mo", None):
        options["slow_mo"] = float(args.slow_mo)
    return options


def cookies(args: argparse.Namespace) -> dict[str, str] | None:
    """``--cookie NAME=VALUE`` (repeatable) as a dict."""
    pairs = getattr(args, "cookie", None)
    if not pairs:
        return None
    found = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--cookie wants NAME=VALUE, not {pair!r}")
        found[name.strip()] = value
    return found


def message(args: argparse.Namespace, example: str) -> str:
    """The message from the arguments, else from stdin."""
    text = " ".join(args.message) if args.message else ""
    if not text:
        if sys.stdin.isatty():
            raise UsageError(f"give a message, e.g. {example}")
        text = sys.stdin.read().strip()
    if not text:
        raise UsageError(f"the message is empty; give one, e.g. {example}")
    return text


def target(args: argparse.Namespace) -> Any:
    """The chat to use: a preset, a preset at --url, one plugin at --url, or any plugin at --url."""
    options = browser_options(args)
    bot = getattr(args, "bot", None)
    if args.plugin:
        if not args.url:
            raise UsageError("--plugin needs --url")
        if getattr(args, "provider", None):
            raise UsageError("give --provider or --plugin, not both")
        return WordPressChat(args.url, bot=bot, plugins=(args.plugin,), browser=options)
    if args.url and not args.provider:
        return WordPressChat(args.url, bot=bot, browser=options)
    provider = PRESETS[args.provider or "chatgptfree"]
    if args.url or bot is not None:
        return provider(args.url or provider.url, bot=bot, browser=options)
    return provider


def label_of(chat: Any) -> str:
    return f"{getattr(chat, '__name__', type(chat).__name__)} {chat.page_url()}"


async def stream_reply(
    chat: Any, args: argparse.Namespace, text: str, out: TextIO, prefix: str = ""
) -> dict[str, float]:
    """Print one reply as it streams (``prefix`` before its first chunk); return its timings."""
    started = time.perf_counter()
    first: float | None = None
    with Progress(sys.stderr, label_of(chat)) as progress:
        stream = chat.create_async_generator(
            args.model or "",
            [{"role": "user", "content": text}],
            proxy=args.proxy,
            timeout=args.timeout,
            cookies=cookies(args),
            trace=getattr(args, "trace", None),
            debug_dir=getattr(args, "debug_dir", None),
            **browser_options(args),
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


def add_browser_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--headed", action="store_true", help="show the browser window")
    parser.add_argument("--slow-mo", type=float, metavar="MS", help="slow each browser action down by MS ms")
    parser.add_argument("--timeout", type=float, default=120, help="seconds allowed for each step (default 120)")
    parser.add_argument("--proxy", help="proxy URL for the browser, e.g. http://user:pass@host:3128")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log each step (-vv: debug)")


def add_site_flags(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument("message", nargs="*", help="the message (default: read stdin)")
    parser.add_argument("--provider", choices=sorted(PRESETS), help="a preset site (default chatgptfree)")
    parser.add_argument(
        "--plugin",
        choices=sorted({p.family for p in PLUGINS} | {p.name for p in PLUGINS}),
        help=f"{verb} --url as a site running this plugin (default: detect it)",
    )
    parser.add_argument("--url", help="a chat page (with --provider: a mirror of that site)")
    parser.add_argument("--bot", help="which bot of the page, by id or name (default: the first)")
    parser.add_argument("--model", help="model name or alias (default: the provider's default)")
    parser.add_argument("--cookie", action="append", metavar="NAME=VALUE", help="a cookie for the site (repeatable)")
    add_browser_flags(parser)


def add_debug_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trace", metavar="PATH", help="write a Playwright trace (open: playwright show-trace PATH)")
    parser.add_argument("--debug-dir", metavar="DIR", help="where to keep a screenshot and the HTML on failure")
