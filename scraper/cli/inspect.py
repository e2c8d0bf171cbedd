"""``scraper inspect``: what the browser finds on a chat page (plugins, bots, values, checks, requests)."""

from __future__ import annotations

import argparse
import sys

from ..client._catalog import PRESET_SITES
from ._common import Progress, UsageError, add_browser_flags, browser_options


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("inspect", help="show what the browser finds on a chat page (bots, values, checks)")
    parser.add_argument("url", nargs="?", help="the chat page")
    parser.add_argument("--provider", choices=sorted(PRESET_SITES), help="inspect a preset's chat page")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    add_browser_flags(parser)
    parser.set_defaults(run=run, timeout=60)


async def run(args: argparse.Namespace) -> int:
    from ..client import format_report, inspect, report_json

    url = args.url or (PRESET_SITES[args.provider].page_url() if args.provider else None)
    if not url:
        raise UsageError("give a URL or --provider")
    with Progress(sys.stderr, f"inspect {url}"):
        report = await inspect(url, timeout=args.timeout, proxy=args.proxy, **browser_options(args))
    print(report_json(report) if args.json else format_report(report))
    return 1 if report.get("error") else 0
