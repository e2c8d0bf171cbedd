"""``scraper solve``: a person passes a site's check once; later headless runs reuse the result."""

from __future__ import annotations

from typing import Any

from ..browser import BrowserOptions, Lane, Profile, SitePool, get_runtime, save_profile
from ..wire import logger

__all__ = ["solve"]

log = logger("scraper.solve")


async def solve(
    url: str, *, timeout: float = 300.0, headless: bool = False, proxy: str | None = None, **browser: Any
) -> Profile:
    """Open ``url`` (in a visible browser by default), wait until its anti-bot check is passed, and
    save the session (cookies, local storage, User-Agent) as the site's profile.

    Raises :class:`~scraper.ChallengeError` when the check is not passed within ``timeout`` seconds
    or the site blocks this browser outright.
    """
    options: BrowserOptions = {"headless": headless, **browser}  # type: ignore[typeddict-item]
    runtime = get_runtime(options)

    async def run() -> Profile:
        # A fresh session: an old profile may hold the very cookie that stopped working.
        lane = Lane(SitePool(runtime, url, proxy=proxy, max_pages=1), use_profile=False)
        try:
            log.info("opening %s; pass the check in the browser window if one appears", url)
            await lane.ready(timeout)
            state = await lane.context.storage_state()
            profile = save_profile(lane.origin, state, lane.user_agent or "")
            passed = [c for c in lane.challenges if c.cleared]
            how = (
                f"after a {passed[-1].vendor} check ({passed[-1].seconds:.1f} s)" if passed else "(no check was shown)"
            )
            log.info("saved the profile for %s %s: %d cookies", profile.site, how, len(profile.cookie_names))
            return profile
        finally:
            await lane.close()

    return await runtime.call(run())
