"""``scraper chat``: send one message and stream the reply to stdout; ``--continue`` goes on with the
last conversation with that site.

When a ``scraper serve`` runs on this machine, the chat goes through its warm browser (see
:mod:`._server`); ``--no-server`` always starts a browser of this command's own.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Coroutine
from typing import Any

from ._common import add_debug_flags, add_site_flags, message, site_choice, stream_reply, target
from ._server import chat_through_server


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("chat", help="send one message and stream the reply to stdout")
    add_site_flags(parser, "talk to")
    add_debug_flags(parser)
    parser.add_argument(
        "--no-server",
        action="store_true",
        help="use a browser of this command's own even when a scraper serve runs (SCRAPER_SERVER=off: always)",
    )
    parser.add_argument(
        "--continue",
        dest="continue_",
        action="store_true",
        help="go on with the last conversation with this site (its earlier turns travel as the site takes them)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int | Coroutine[Any, Any, int]:
    """Through a running server when one answers; else a coroutine that chats in a browser of our own."""
    choice = site_choice(args)
    text = message(args, 'scraper chat "Hello"')
    if chat_through_server(args, choice, text, sys.stdout):
        return 0
    return _here(args, text)


async def _here(args: argparse.Namespace, text: str) -> int:
    await stream_reply(target(args), args, text, sys.stdout, conversation="last" if args.continue_ else "new")
    return 0
