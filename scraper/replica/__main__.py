"""``python -m scraper.replica``: run replica sites in the foreground until Ctrl-C or SIGTERM.

``--plugin`` takes one plugin (one site), ``both`` (AI Power and AI Engine, two sites, as before AIPKit
existed), ``all`` (every plugin, one site each) or names joined by "+" (one site with all of them on its
page).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from .config import ANTIBOT_MODES, PAGE_MODES, SiteConfig
from .server import PLUGINS, ReplicaSite, plugin_names

GROUPS = {"both": ("aipower", "aiengine"), "all": PLUGINS}


def sites_named(value: str) -> tuple[str, ...]:
    """The ``--plugin`` value as one entry per site: a group, one plugin, or plugins joined by "+" (one site)."""
    if value in GROUPS:
        return GROUPS[value]
    try:
        return ("+".join(plugin_names(value)),)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m scraper.replica",
        description="Serve local replicas of WordPress chat plugins: " + ", ".join(PLUGINS) + ".",
    )
    parser.add_argument(
        "--plugin",
        type=sites_named,
        default=GROUPS["both"],
        metavar="{" + ",".join([*PLUGINS, *GROUPS]) + "}",
        help='which site(s) to run (default both); names joined by "+" share one site, e.g. aipkit+aiengine',
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=0, help="port of the first site (the second takes the next one); 0: free ports"
    )
    parser.add_argument("--chunk-delay", type=float, default=None, help="seconds between stream events")
    parser.add_argument("--antibot", choices=ANTIBOT_MODES, default=None, help="put the site(s) behind this front")
    parser.add_argument("--page", choices=PAGE_MODES, default=None, help="serve this variant of the chat page")
    parser.add_argument(
        "--challenge-delay", type=float, default=None, help="seconds the JS challenge takes to clear (default 1)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request to stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Start the sites, print one ``plugin url`` line each, wait for a stop signal, stop cleanly."""
    args = build_parser().parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s")
    sites = []
    for index, plugin in enumerate(args.plugin):
        config = SiteConfig(antibot=args.antibot)
        if args.page is not None:
            config.page = args.page
        if args.chunk_delay is not None:
            config.chunk_delay = args.chunk_delay
        if args.challenge_delay is not None:
            config.challenge_delay = args.challenge_delay
        port = args.port + index if args.port else 0
        sites.append(ReplicaSite(plugin, config=config, host=args.host, port=port))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        """Ctrl-C or SIGTERM: leave the wait loop so the sites stop cleanly."""
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for site in sites:
            site.start()
            print(f"{site.plugin} {site.url}", flush=True)
        while not stop.wait(0.5):
            pass
    except OSError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    finally:
        for site in sites:
            site.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
