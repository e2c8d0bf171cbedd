"""``scraper replay``: serve a cassette on 127.0.0.1 as a site until interrupted."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from ..errors import ScraperError


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("replay", help="serve a cassette on 127.0.0.1 as a site until interrupted")
    parser.add_argument("cassette", help="the cassette folder, e.g. fixtures/chatgptfree-hello")
    parser.add_argument("--port", type=int, help="port to listen on (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--speed", type=float, default=1.0, help="1.0: chunks as timed when recorded; 0: at once")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log each request (-vv: debug)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve a cassette until interrupted; print its URL on stdout (alone, for scripts)."""
    from ..cassettes import ReplayServer
    from ..client import preset_env

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    try:
        server = ReplayServer(Path(args.cassette), speed=args.speed, port=args.port or 0, host=args.host)
        server.start()
    except (OSError, ValueError) as exc:
        raise ScraperError(f"cannot serve {args.cassette}: {exc}") from exc
    cassette = server.cassette
    env = preset_env(cassette.plugin)
    hint = f'\n  try: {env}={server.url} scraper chat "{cassette.meta.get("message") or "…"}"' if env else ""
    serving = f"scraper replay: serving {cassette.summary()} at {server.url} (speed {args.speed:g}); Ctrl-C to stop"
    try:  # from the URL on, an interrupt (a script may send one at once) stops the server
        print(server.url, flush=True)
        print(serving + hint, file=sys.stderr, flush=True)
        while True:  # until KeyboardInterrupt; in slices: a signal another thread received is handled at the next
            time.sleep(0.5)
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
