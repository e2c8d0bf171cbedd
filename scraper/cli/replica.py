"""``scraper replica``: serve the bundled replica sites on 127.0.0.1 until interrupted."""

from __future__ import annotations

import argparse


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("replica", help="serve the bundled replica sites on 127.0.0.1 until interrupted")
    parser.add_argument(
        "--plugin",
        dest="plugin_name",
        default="all",
        help='a replica plugin (python -m scraper.replica --help lists them), "both" (aipower, aiengine), '
        '"all" (default), or names joined by "+" for one site with several plugins',
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    parser.add_argument("--page", help="a variant of the chat page (see python -m scraper.replica --help)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..replica.__main__ import main as replica_main

    argv = ["--plugin", args.plugin_name, "--host", args.host]
    if args.port is not None:
        argv += ["--port", str(args.port)]
    if args.page:
        argv += ["--page", args.page]
    return int(replica_main(argv) or 0)
