"""What the commands share: flags, the chat target, a progress note on stderr, printing a reply.

Only the standard library (and the preset table) at import: ``scraper chat`` through a running server
must start fast, so the browser layer, the plugins and the HTML parser are imported where they are used.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from ..client._catalog import PRESET_SITES, PresetSite, chat_page

if TYPE_CHECKING:
    from ..browser import BrowserOptions

__all__ = [
    "LazyChoices",
    "Progress",
    "SiteChoice",
    "UsageError",
    "add_browser_flags",
    "add_debug_flags",
    "add_site_flags",
    "browser_options",
    "configure_logging",
    "cookies",
    "message",
    "plain",
    "site_choice",
    "stream_reply",
    "target",
]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]|\x1b\[[0-9;?]*[A-Za-z]")


class UsageError(Exception):
    """The command line asks for something that cannot be done as given (exit status 2)."""


def plain(text: str) -> str:
    """Text from a site made safe for a terminal: no escape codes or control characters, no secrets."""
    from ..wire import redact

    return redact(_CONTROL.sub("", text))


class Progress(logging.Handler):
    """A one-line note on stderr while nothing has streamed yet; shows the current step of the flow.

    On a terminal it is a spinner with the elapsed time; elsewhere each step is one plain line.
    """

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, stream: TextIO, label: str) -> None:
        from ..wire import RedactingFilter

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
        from ..wire import RedactingFilter

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
    if getattr(args, "driver", None):
        options["driver"] = args.driver
    if getattr(args, "virtual_display", False):
        options["virtual_display"] = True
    if getattr(args, "no_auto_click", False):
        options["auto_click"] = False
    if getattr(args, "browser", None):
        from ..browser import remote_options
        from ..errors import ConfigError

        try:
            options.update(remote_options(args.browser))
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
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


@dataclass(frozen=True)
class SiteChoice:
    """The chat the command line asks for, read from its flags alone: a preset (maybe at a mirror
    ``url``), or a page ``url`` with the plugins to consider (None: any). Nothing is loaded to know it."""

    preset: PresetSite | None
    url: str | None
    plugins: tuple[str, ...] | None
    bot: str | None

    @property
    def page_url(self) -> str:
        """The chat page this command would load (a preset's honours its ``SCRAPER_*_URL``)."""
        if self.preset is not None:
            return self.preset.page_url(self.url)
        return chat_page(str(self.url))

    @property
    def fallback_urls(self) -> tuple[str, ...]:
        """Where else a preset looks when its page has no chat box (ChatgptFree: /chat/, then /)."""
        return self.preset.fallback_urls(self.url) if self.preset is not None else ()

    @property
    def label(self) -> str:
        return f"{self.preset.title if self.preset else 'WordPressChat'} {self.page_url}"


def site_choice(args: argparse.Namespace) -> SiteChoice:
    """The chat to use: a preset, a preset at --url, one plugin at --url, or any plugin at --url."""
    bot = getattr(args, "bot", None)
    if args.plugin:
        if not args.url:
            raise UsageError("--plugin needs --url")
        if getattr(args, "provider", None):
            raise UsageError("give --provider or --plugin, not both")
        return SiteChoice(None, args.url, (args.plugin,), bot)
    if args.url and not args.provider:
        return SiteChoice(None, args.url, None, bot)
    return SiteChoice(PRESET_SITES[args.provider or "chatgptfree"], args.url, None, bot)


def target(args: argparse.Namespace) -> Any:
    """The provider object for the chat the flags ask for (see :func:`site_choice`)."""
    from ..client import PRESETS, WordPressChat

    choice = site_choice(args)
    options = browser_options(args)
    if choice.preset is None:
        return WordPressChat(str(choice.url), bot=choice.bot, plugins=choice.plugins, browser=options)
    provider = PRESETS[choice.preset.name]
    if choice.url or choice.bot is not None:
        return provider(choice.url or provider.url, bot=choice.bot, browser=options)
    return provider


def label_of(chat: Any) -> str:
    return f"{getattr(chat, '__name__', type(chat).__name__)} {chat.page_url()}"


async def stream_reply(
    chat: Any, args: argparse.Namespace, text: str, out: TextIO, prefix: str = "", conversation: str | None = None
) -> dict[str, float]:
    """Print one reply as it streams (``prefix`` before its first chunk); return its timings.
    ``conversation``: ``"new"`` or ``"last"`` makes the message a turn of a conversation kept in the
    store (with its text, so that ``--continue`` can send the earlier turns where the site wants them)."""
    started = time.perf_counter()
    first: float | None = None
    options = {
        "proxy": args.proxy,
        "timeout": args.timeout,
        "trace": getattr(args, "trace", None),
        "debug_dir": getattr(args, "debug_dir", None),
        **browser_options(args),
    }
    with Progress(sys.stderr, label_of(chat)) as progress:
        if conversation is None:
            stream = chat.create_async_generator(
                args.model or "", [{"role": "user", "content": text}], cookies=cookies(args), **options
            )
        else:
            chat.get_model(args.model or "")  # a model the provider does not offer is refused, as without
            stream = _conversation(chat, conversation, {**options, "cookies": cookies(args)}).send(text)
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


def _conversation(chat: Any, which: str, options: dict[str, Any]) -> Any:
    """A new conversation with the chat's site, or the last one (a new one when there is none)."""
    from ..client._conversation import ConversationBook
    from ..state import open_store

    book = ConversationBook(open_store(keep_text=True))
    last = book.last(chat.page_url()) if which == "last" else None
    return chat.conversation(id=last, book=book, **{k: v for k, v in options.items() if v is not None})


class LazyChoices:
    """An argument's choices, read on first use (for help, or to check a value given), so that building
    the parser imports nothing; give the argument a ``metavar``, or argparse lists them at once."""

    def __init__(self, load: Callable[[], Iterable[str]]) -> None:
        self._load = load
        self._names: list[str] | None = None

    def _all(self) -> list[str]:
        if self._names is None:
            self._names = sorted(self._load())
        return self._names

    def __contains__(self, name: object) -> bool:
        return name in self._all()

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())


def plugin_names() -> set[str]:
    """What ``--plugin`` accepts: each plugin's name and family."""
    from ..plugins import PLUGINS

    return {p.family for p in PLUGINS} | {p.name for p in PLUGINS}


def add_browser_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--headed", action="store_true", help="show the browser window (on a display of its own if none)"
    )
    parser.add_argument("--slow-mo", type=float, metavar="MS", help="slow each browser action down by MS ms")
    parser.add_argument(
        "--driver",
        choices=["playwright", "patchright"],
        help="patchright: no DevTools Runtime tell (the stealth extra)",
    )
    parser.add_argument("--virtual-display", action="store_true", help="headed, on an Xvfb of its own")
    parser.add_argument("--no-auto-click", action="store_true", help="leave a checkbox check to a person")
    parser.add_argument(
        "--browser",
        metavar="URL",
        help="use a remote browser: ws://HOST:PORT/PATH (scraper browser-server, playwright run-server) or "
        "http://HOST:PORT (Chromium's CDP)",
    )
    parser.add_argument("--timeout", type=float, default=120, help="seconds allowed for each step (default 120)")
    parser.add_argument("--proxy", help="proxy URL for the browser, e.g. http://user:pass@host:3128")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log each step (-vv: debug)")


def add_site_flags(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument("message", nargs="*", help="the message (default: read stdin)")
    parser.add_argument("--provider", choices=sorted(PRESET_SITES), help="a preset site (default chatgptfree)")
    parser.add_argument(
        "--plugin",
        choices=LazyChoices(plugin_names),
        metavar="PLUGIN",
        help=f"{verb} --url as a site running this plugin: %(choices)s (default: detect it)",
    )
    parser.add_argument("--url", help="a chat page (with --provider: a mirror of that site)")
    parser.add_argument("--bot", help="which bot of the page, by id or name (default: the first)")
    parser.add_argument("--model", help="model name or alias (default: the provider's default)")
    parser.add_argument("--cookie", action="append", metavar="NAME=VALUE", help="a cookie for the site (repeatable)")
    add_browser_flags(parser)


def add_debug_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trace", metavar="PATH", help="write a Playwright trace (open: playwright show-trace PATH)")
    parser.add_argument("--debug-dir", metavar="DIR", help="where to keep a screenshot and the HTML on failure")
