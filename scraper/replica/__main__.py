"""``python -m scraper.replica``: run replica sites in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from .config import ANTIBOT_MODES, SiteConfig
from .server import PLUGINS, ReplicaSite


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m scraper.replica",
        description="Serve local replicas of the AI Power and AI Engine WordPress chat plugins.",
    )
    parser.add_argument("--plugin", choices=[*PLUGINS, "both"], default="both", help="which site(s) to run")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=0, help="port of the first site (the second takes the next one); 0: free ports"
    )
    parser.add_argument("--chunk-delay", type=float, default=None, help="seconds between stream events")
    parser.add_argument("--antibot", choices=ANTIBOT_MODES, default=None, help="put the site(s) behind this front")
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
    plugins = PLUGINS if args.plugin == "both" else (args.plugin,)
    sites = []
    for index, plugin in enumerate(plugins):
        config = SiteConfig(antibot=args.antibot)
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
