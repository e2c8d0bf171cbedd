"""``scraper regen-fixtures`` (hidden): record every shipped cassette again against fresh replica sites."""

from __future__ import annotations

import argparse


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("regen-fixtures", help=argparse.SUPPRESS)
    parser.add_argument("--dir", default="fixtures", help="where the shipped cassettes live")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..cassettes import regenerate_fixtures

    for path in regenerate_fixtures(args.dir):
        print(path)
    return 0
