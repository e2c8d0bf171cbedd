"""What the browser showed when something went wrong: a screenshot and the page HTML, kept on disk.

Files go to ``debug_dir`` (``--debug-dir``), else ``SCRAPER_DEBUG_DIR``, else the user's cache
directory; ``SCRAPER_DEBUG_DIR=off`` keeps nothing. The HTML is scrubbed of the nonces, session ids
and cookie values the session knows, so the files can be shared in a bug report.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ._profiles import cache_dir

if TYPE_CHECKING:
    from ._session import SiteSession

__all__ = ["debug_folder", "save_artifacts", "scrub"]

log = logging.getLogger("scraper.debug")
_SECRET_KEYS = ("nonce", "session", "client_id")


def debug_folder(explicit: str | None = None) -> Path | None:
    """Where debug files go, or None when keeping them is switched off."""
    choice = explicit or os.environ.get("SCRAPER_DEBUG_DIR")
    if choice and choice.lower() in ("off", "0", "none", "false"):
        return None
    return Path(choice) if choice else cache_dir("debug")


def _secrets(values: dict[str, Any], cookies: list[dict[str, Any]]) -> set[str]:
    found = {str(c.get("value")) for c in cookies if c.get("value")}
    for plugin_values in values.values():
        if isinstance(plugin_values, dict):
            found |= {str(v) for k, v in plugin_values.items() if v and any(s in k for s in _SECRET_KEYS)}
    return {s for s in found if len(s) >= 4}


def scrub(text: str, secrets: set[str]) -> str:
    """Replace each known secret value in ``text`` with a marker."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "[scrubbed]")
    return text


async def save_artifacts(session: SiteSession, reason: str, folder: Path | None) -> list[str]:
    """Save a screenshot and the scrubbed HTML of the session's page; return their paths."""
    page = session.page
    if folder is None or page is None or page.is_closed():
        return []
    host = re.sub(r"[^A-Za-z0-9_.-]+", "_", urlsplit(session.page_url).netloc)
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{int(time.time() * 1000) % 1000:03d}"
    target = folder / f"{stamp}-{host}-{re.sub(r'[^A-Za-z0-9]+', '-', reason).strip('-').lower()}"
    paths: list[str] = []
    try:
        target.mkdir(parents=True, exist_ok=True)
        cookies = await session.context.cookies() if session.context is not None else []
        secrets = _secrets(session.values, cookies)
        screenshot = target / "screenshot.png"
        with contextlib.suppress(Exception):
            await page.screenshot(path=str(screenshot), full_page=True, timeout=10_000)
            paths.append(str(screenshot))
        html = target / "page.html"
        with contextlib.suppress(Exception):
            html.write_text(scrub(await page.content(), secrets), encoding="utf-8")
            paths.append(str(html))
    except OSError as exc:
        log.warning("could not keep debug files in %s: %s", target, exc)
    if session.trace_path:
        saved = await session.save_trace()
        if saved:
            paths.append(saved)
    return paths
