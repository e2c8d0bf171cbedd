"""``scraper replica``: serve the bundled replica sites on 127.0.0.1 until interrupted."""

from __future__ import annotations

import argparse

from ._common import LazyChoices


def _plugins() -> list[str]:
    from ..replica import PLUGINS

    return [*PLUGINS, "both"]


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("replica", help="serve the bundled replica sites on 127.0.0.1 until interrupted")
    parser.add_argument(
        "--plugin",
        dest="plugin_name",
        choices=LazyChoices(_plugins),
        metavar="PLUGIN",
        default="both",
        help="which site: %(choices)s (default both)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..replica.__main__ import main as replica_main

    argv = ["--plugin", args.plugin_name, "--host", args.host]
    if args.port is not None:
        argv += ["--port", str(args.port)]
    return int(replica_main(argv) or 0)
