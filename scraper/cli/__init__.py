"""The ``scraper`` command line: one module per command (``chat``, ``serve``, ``browser-server``, ``demo``, ``inspect``,
``solve``, ``profiles``, ``record``, ``replay``, ``replica``).

The reply goes to stdout as it streams; notes, progress and errors go to stderr, so the reply can be
piped. Exit status: 0 on a complete reply, 1 on a scraper error (one line saying what to do), 2 on a
usage error or a missing optional extra (the line says what to install), 130 when interrupted.

Command modules import only the standard library at the top (the rest where it is used), so a command
that needs little, such as ``scraper chat`` through a running server, starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Coroutine, Sequence

from ..errors import MissingExtraError, ScraperError
from . import browser_server, chat, demo, inspect, profiles, record, replay, replica, serve, solve
from ._common import UsageError, configure_logging, plain

__all__ = ["build_parser", "main"]

COMMANDS = (chat, serve, browser_server, demo, inspect, solve, profiles, replica, record, replay)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scraper", description="Chat with the AI chat boxes of WordPress sites through a real Chromium."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(getattr(args, "verbose", 0))
    try:
        outcome = args.run(args)
        if isinstance(outcome, Coroutine):
            import asyncio

            outcome = asyncio.run(outcome)
        return int(outcome)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"scraper: error: {plain(str(exc))}", file=sys.stderr)
        return 2
    except MissingExtraError as exc:  # not a failure of the chat: a usage error, one line
        print(f"scraper: error: {exc}", file=sys.stderr)
        return 2
    except ScraperError as exc:
        print(f"\nscraper: error: {type(exc).__name__}: {plain(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nscraper: interrupted", file=sys.stderr)
        return 130
    finally:
        if "scraper.browser" in sys.modules:  # only then can a browser have started
            with contextlib.suppress(Exception):
                from ..browser import close

                close()


if __name__ == "__main__":
    sys.exit(main())
