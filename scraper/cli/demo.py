"""``scraper demo``: start the bundled replica sites and chat with each provider."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ._common import add_browser_flags, add_debug_flags, stream_reply


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("demo", help="start the bundled replica sites and chat with each provider")
    parser.add_argument("--message", help="what to ask (default: Привет, как дела?)")
    parser.add_argument("--model", help=argparse.SUPPRESS)
    add_browser_flags(parser)
    add_debug_flags(parser)
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    from ..client import AIPowerChat, Chatgpt4Online, ChatgptFree
    from ..replica import Replica

    with Replica() as replica:
        os.environ[str(ChatgptFree.url_env)] = replica.aipkit.url
        os.environ[str(Chatgpt4Online.url_env)] = replica.aiengine.url
        print(
            "scraper demo: local replica sites on 127.0.0.1 — "
            f"AI Power 2.3+ (AIPKit, like chatgptfree.ai today) {replica.aipkit.url}, "
            f"AI Engine {replica.aiengine.url}, AI Power 2.2 {replica.aipower.url}",
            file=sys.stderr,
        )
        text = args.message or "Привет, как дела?"
        first_bot, second_bot = (bot.name for bot in replica.aipkit.config.bots[:2])
        runs: list[tuple[str, Any, str]] = [
            (f"ChatgptFree, bot {first_bot!r}", ChatgptFree, "cold"),
            ("Chatgpt4Online", Chatgpt4Online, "new site"),
            ("AIPowerChat (legacy shortcode)", AIPowerChat(replica.aipower.url), "new site"),
            (f"ChatgptFree, bot {second_bot!r}", ChatgptFree(ChatgptFree.url, bot=second_bot), "warm page"),
        ]
        for name, chat, state in runs:
            print(f"\n── {name} · {chat.page_url()} · {state}", file=sys.stderr)
            print(f"you> {text}", file=sys.stderr, flush=True)
            times = await stream_reply(chat, args, text, sys.stdout, prefix="ai>  ")
            print(
                f"     first chunk after {times['first_chunk']:.2f} s, complete after {times['total']:.2f} s",
                file=sys.stderr,
            )
    return 0
