"""``scraper record``: chat for real and write the flow as a cassette (secrets replaced)."""

from __future__ import annotations

import argparse
import sys

from ._common import add_site_flags, browser_options, cookies, message, target


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("record", help="chat for real and write the flow as a cassette (secrets replaced)")
    add_site_flags(parser, "record")
    parser.add_argument("--out", required=True, help="the cassette folder to write, e.g. fixtures/hello")
    parser.add_argument("--name", help="the cassette's name (default: the folder's name)")
    parser.add_argument("--force", action="store_true", help="replace a cassette already at --out")
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    """Chat for real, stream the reply to stdout, write the cassette, name it on stderr."""
    from ..cassettes import record_chat

    text = message(args, 'scraper record --out fixtures/hello "Hello"')
    chat = target(args)

    def show(chunk: str) -> None:
        sys.stdout.write(chunk)
        sys.stdout.flush()

    print(f"scraper: recording {chat.page_url()} into {args.out}", file=sys.stderr)
    result = await record_chat(
        chat,
        text,
        args.out,
        name=args.name,
        provider=None if (args.plugin or (args.url and not args.provider)) else (args.provider or "chatgptfree"),
        model=args.model or "",
        timeout=args.timeout,
        cookies=cookies(args),
        proxy=args.proxy,
        overwrite=args.force,
        on_chunk=show,
        **browser_options(args),
    )
    print()
    cassette = result.cassette
    print(
        f"scraper: cassette {result.path} ({len(cassette.pages)} page(s), {len(cassette.exchanges)} exchange(s); "
        f"placeholders: {', '.join(cassette.meta['placeholders']) or 'none'})",
        file=sys.stderr,
    )
    return 0
