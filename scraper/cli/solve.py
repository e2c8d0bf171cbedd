"""``scraper solve``: pass a site's anti-bot check once (with ``--headed``: by hand) and save it."""

from __future__ import annotations

import argparse
import sys

from ._common import Progress, add_browser_flags, browser_options


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("solve", help="pass a site's anti-bot check once (with --headed: by hand) and save it")
    parser.add_argument("url", help="the site or chat page")
    add_browser_flags(parser)
    parser.set_defaults(run=run, timeout=300)


async def run(args: argparse.Namespace) -> int:
    from ..client import solve

    options = browser_options(args)
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
