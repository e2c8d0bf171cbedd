"""``scraper profiles``: list the saved site profiles, or ``--clear`` them."""

from __future__ import annotations

import argparse
import time


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("profiles", help="list saved site profiles, or --clear them")
    parser.add_argument("--clear", nargs="?", const="", metavar="SITE", help="remove one site's profile, or all")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..browser import clear_profiles, list_profiles

    if args.clear is not None:
        removed = clear_profiles(args.clear or None)
        print(f"removed {len(removed)} profile(s){': ' + ', '.join(removed) if removed else ''}")
        return 0
    profiles = list_profiles()
    if not profiles:
        print("no saved profiles (scraper solve URL --headed saves one)")
    for profile in profiles:
        age = time.time() - profile.saved_at
        when = f"{age / 3600:.1f} h ago" if age >= 3600 else f"{age / 60:.0f} min ago"
        print(f"{profile.site:<32} saved {when:<12} cookies: {', '.join(profile.cookie_names) or 'none'}")
    return 0
