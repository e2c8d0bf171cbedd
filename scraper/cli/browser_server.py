"""``scraper browser-server``: a Playwright browser server on this machine's Chromium, for ``scraper serve
--browser`` and ``scraper chat --browser`` elsewhere (or any Playwright client: ``chromium.connect``).

Prints the ws endpoint alone on stdout once the browser is up; runs until SIGINT or SIGTERM, then closes
the browser. The endpoint's path is random unless ``--path`` is given: beyond loopback it is the only key.
"""

from __future__ import annotations

import argparse


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "browser-server", help="serve this machine's Chromium to remote scraper clients (Playwright protocol)"
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--path", default=None, help="the endpoint's path (default: a random one)")
    parser.add_argument(
        "--driver", choices=["playwright", "patchright"], help="the driver clients must also use (default playwright)"
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log each step (-vv: debug)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import signal
    import sys

    from ..browser._server import BrowserServer, server_config
    from ..serve._config import is_loopback
    from ._common import UsageError

    if not 0 <= args.port < 65536:
        raise UsageError(f"--port must be a TCP port (0-65535), not {args.port}")
    server = BrowserServer(server_config(args.host, args.port, args.path), driver=args.driver)

    def stop(signum: int, frame: object) -> None:
        server.signal()  # no waiting here: the main thread may be inside the child's wait already

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        endpoint = server.start()
        print(endpoint, flush=True)
        note = "" if is_loopback(args.host) else "; whoever knows this endpoint can drive the browser"
        print(f"scraper browser-server: Chromium at {endpoint}{note}; Ctrl+C stops it", file=sys.stderr, flush=True)
        server.wait()
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("scraper browser-server: stopped", file=sys.stderr, flush=True)
    return 0
