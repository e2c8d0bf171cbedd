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
    from ..client import PRESET_SITES, PRESETS, WordPressChat
    from ..plugins import get_plugin
    from ..replica import Replica

    with Replica() as replica:
        for preset in PRESET_SITES.values():
            os.environ[preset.url_env] = replica.site(preset.replica).url
        print(
            "scraper demo: local replica sites on 127.0.0.1 — "
            + ", ".join(f"{get_plugin(site.plugin).label} {site.url}" for site in replica.sites),
            file=sys.stderr,
        )
        text = args.message or "Привет, как дела?"
        # each preset on its replica (the first one cold), then every other plugin's site through the
        # generic chat, then the first preset again with its second bot (the page is warm by then)
        first = next(iter(PRESET_SITES.values()))
        bots = [bot.name for bot in replica.site(first.replica).config.bots]
        runs: list[tuple[str, Any, str]] = []
        for name, preset in PRESET_SITES.items():
            label = f"{preset.title}, bot {bots[0]!r}" if preset is first and bots else preset.title
            runs.append((label, PRESETS[name], "new site" if runs else "cold"))
        served = {preset.replica for preset in PRESET_SITES.values()}
        for site in replica.sites:
            if site.plugin not in served:
                chat = WordPressChat(site.url, plugins=(site.plugin,))
                runs.append((f"WordPressChat ({get_plugin(site.plugin).label})", chat, "new site"))
        if len(bots) > 1:
            cls = PRESETS[first.name]
            runs.append((f"{first.title}, bot {bots[1]!r}", cls(cls.url, bot=bots[1]), "warm page"))
        for name, chat, state in runs:
            print(f"\n── {name} · {chat.page_url()} · {state}", file=sys.stderr)
            print(f"you> {text}", file=sys.stderr, flush=True)
            times = await stream_reply(chat, args, text, sys.stdout, prefix="ai>  ")
            print(
                f"     first chunk after {times['first_chunk']:.2f} s, complete after {times['total']:.2f} s",
                file=sys.stderr,
            )
    return 0
