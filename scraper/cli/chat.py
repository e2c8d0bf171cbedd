"""``scraper chat``: send one message and stream the reply to stdout."""

from __future__ import annotations

import argparse
import sys

from ._common import add_debug_flags, add_site_flags, message, stream_reply, target


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("chat", help="send one message and stream the reply to stdout")
    add_site_flags(parser, "talk to")
    add_debug_flags(parser)
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    await stream_reply(target(args), args, message(args, 'scraper chat "Hello"'), sys.stdout)
    return 0
