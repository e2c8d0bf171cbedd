"""What the browser showed when something went wrong: a screenshot and the page HTML, kept on disk.

Files go to ``debug_dir`` (``--debug-dir``), else ``SCRAPER_DEBUG_DIR``, else the user's cache
directory; ``SCRAPER_DEBUG_DIR=off`` keeps nothing. The HTML is scrubbed by the package's one rule of
what is secret (:mod:`scraper.wire`), also of values a failed read saw, so the files can go into a
bug report. They are readable by the user only, and only the newest :data:`KEEP` folders are kept.

Keeping them never makes a failure slower than it was: they get a short budget of their own and are
skipped when the page cannot answer in time (a crashed renderer) or has nothing to show (a page that
never loaded).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .._aio import within
from ..wire import logger, scrub_page, secret_kind
from ._profiles import cache_dir

if TYPE_CHECKING:
    from ._lanes import Lane

__all__ = ["ARTIFACT_SECONDS", "KEEP", "debug_folder", "save_artifacts"]

log = logger("scraper.debug")
ARTIFACT_SECONDS = 3.0  # the whole budget for a screenshot and the HTML
KEEP = 50  # failure folders kept; older ones are removed
HTML_CHARS = 4 << 20  # of a page's HTML, what is kept


def debug_folder(explicit: str | None = None) -> Path | None:
    """Where debug files go, or None when keeping them is switched off."""
    choice = explicit or os.environ.get("SCRAPER_DEBUG_DIR")
    if choice and choice.lower() in ("off", "0", "none", "false"):
        return None
    return Path(choice) if choice else cache_dir("debug")


def _private_file(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _prune(folder: Path) -> None:
    """Keep the newest :data:`KEEP` failure folders."""
    entries = sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.name, reverse=True)
    for old in entries[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)


async def save_artifacts(lane: Lane, reason: str, folder: Path | None) -> list[str]:
    """Save a screenshot and the scrubbed HTML of the lane's page; return their paths."""
    page = lane.page
    if folder is None or page is None or page.is_closed():
        return []
    if page.url in ("", "about:blank"):  # nothing arrived (a page that never answers): nothing to show
        log.debug("no debug files for %s: the page never loaded", lane.origin)
        return await _trace(lane)
    parts = urlsplit(lane.page_url)  # the host and port only: a folder name never holds a user or password
    where = f"{parts.hostname or ''}_{parts.port}" if parts.port else parts.hostname or ""
    host = re.sub(r"[^A-Za-z0-9_.-]+", "_", where)
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{int(time.time() * 1000) % 1000:03d}"
    target = folder / f"{stamp}-{host}-{re.sub(r'[^A-Za-z0-9]+', '-', reason).strip('-').lower()}"
    paths: list[str] = []
    deadline = time.monotonic() + ARTIFACT_SECONDS

    def left() -> float:
        return max(deadline - time.monotonic(), 0.05)

    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        target.mkdir(mode=0o700)
        with contextlib.suppress(Exception):
            data = await within(page.screenshot(full_page=True, timeout=left() * 1000), left())
            _private_file(target / "screenshot.png", data)
            paths.append(str(target / "screenshot.png"))
        with contextlib.suppress(Exception):
            cookies = [str(c.get("value")) for c in await within(lane.context.cookies(), left())]
            html = await within(page.content(), left())
            if len(html) > HTML_CHARS:  # a page builder's megabytes: the head of the page tells what went wrong
                html = html[:HTML_CHARS] + f"\n<!-- {len(html) - HTML_CHARS} more characters not kept -->\n"
            # Scrubbing is work for the CPU: off the browser thread, so other chats go on meanwhile.
            scrubbed = await within(
                asyncio.to_thread(scrub_page, html, lane.origin, cookies=cookies, extra=_known_values(lane)),
                max(left(), 1.0),
            )
            _private_file(target / "page.html", scrubbed.encode("utf-8"))
            paths.append(str(target / "page.html"))
        if not paths:
            target.rmdir()
        _prune(folder)
    except OSError as exc:
        log.warning("could not keep debug files in %s: %s", target, exc)
    return paths + await _trace(lane)


async def _trace(lane: Lane) -> list[str]:
    """The Playwright trace, when one is being recorded."""
    if lane.trace_path:
        saved = await lane.save_trace()
        if saved:
            return [saved]
    return []


def _known_values(lane: Lane) -> list[str]:
    found: list[str] = []
    for values in lane.values.snapshot():
        found += [str(v) for k, v in values.items() if v and secret_kind(k)]
    return found
