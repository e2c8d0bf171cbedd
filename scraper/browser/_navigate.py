"""Anti-bot navigation: load a page, and when a check answers instead, wait for it to clear (clicking a
single checkbox like a person when allowed). Knows pages, not lanes or sites."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .._aio import within
from ..errors import ChallengeError, ScraperError
from ..wire import Challenge, detect_challenge, logger
from ._driver import DriverError, DriverErrorOrTimeout
from ._errors import first_line

__all__ = ["click_checkbox", "navigate"]

log = logger("scraper.session")


async def navigate(
    page: Any,
    url: str,
    timeout: float,
    origin: str,
    refetch: Callable[[], Awaitable[str]] | None = None,
    *,
    auto_click: bool = False,
) -> tuple[Any, str, Challenge | None]:
    """Load ``url`` in ``page``; when an anti-bot page answers, wait for it to clear by itself.

    Returns the navigation response, the HTML as the server sent it (scripts may change the DOM
    later), and the check met on the way, if any. Every navigation of the page is watched from before
    the load starts, so a check that clears at once is not missed.
    """
    arrived: asyncio.Queue[Any] = asyncio.Queue()

    def on_response(response: Any) -> None:
        if response.frame == page.main_frame and response.request.is_navigation_request():
            arrived.put_nowait(response)

    page.on("response", on_response)
    try:
        response = await page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000)
        if response is None:
            return None, "", None
        html = await _served_text(page, response, timeout, refetch)
        challenge = detect_challenge(response.url, response.headers, html)
        if challenge is not None:
            response, html = await _cleared(page, challenge, timeout, origin, arrived, response, auto_click)
        return response, html, challenge
    finally:
        page.remove_listener("response", on_response)


async def _served_text(
    page: Any, response: Any, timeout: float, refetch: Callable[[], Awaitable[str]] | None = None
) -> str:
    """The HTML as the server sent it; asked for again when the browser no longer keeps the body (a big
    page), and the DOM's only as a last resort."""

    try:
        return await within(response.text(), timeout)
    except DriverErrorOrTimeout as exc:
        log.info("the browser no longer holds the page as served (%s); asking for it again", first_line(exc))
    if refetch is not None and response.status < 400:
        with contextlib.suppress(ScraperError):
            return await refetch()
    return await within(page.content(), timeout)


async def _cleared(
    page: Any,
    challenge: Challenge,
    timeout: float,
    origin: str,
    arrived: asyncio.Queue[Any],
    first: Any,
    auto_click: bool,
) -> tuple[Any, str]:
    """Wait for an anti-bot page to clear by itself (its script reloads the page with a clearance); a
    single checkbox (Turnstile-style) is clicked like a person would, when ``auto_click`` is on.

    Returns the navigation response and HTML of the page behind it; raises :class:`ChallengeError`
    for a block page, or when the page has not cleared within ``timeout`` seconds.
    """
    if challenge.kind == "block":
        raise ChallengeError(
            f"{challenge.vendor} blocks this browser at {challenge.url}; waiting or solving will not help. "
            "Try another network, or a proxy (proxy=... / --proxy).",
            vendor=challenge.vendor,
            kind=challenge.kind,
            url=challenge.url,
        )
    log.info("%s %s page at %s; waiting for it to clear", challenge.vendor, challenge.kind, challenge.url)
    started = time.perf_counter()
    clicking = auto_click and challenge.kind == "interactive"
    while (remaining := timeout - (time.perf_counter() - started)) > 0:
        try:
            response = await within(arrived.get(), min(remaining, 0.5 if clicking else 5.0))
        except asyncio.TimeoutError:
            if clicking and await click_checkbox(page, min(remaining, 5.0)):
                clicking = False  # once: then wait for the clearance as for any check
                log.info("clicked the %s checkbox", challenge.vendor)
            elif not clicking:
                log.info("still waiting for the %s check (%.0f s)", challenge.vendor, time.perf_counter() - started)
            continue
        if response is first:
            continue
        try:
            html = await within(response.text(), max(remaining, 1.0))
        except Exception:  # navigated on before the body was read: wait for the next one
            continue
        if detect_challenge(response.url, response.headers, html) is None:
            with contextlib.suppress(Exception):
                await page.wait_for_load_state("domcontentloaded", timeout=max(remaining, 1) * 1000)
            challenge.cleared = True
            challenge.seconds = time.perf_counter() - started
            log.info("the %s check cleared after %.1f s", challenge.vendor, challenge.seconds)
            return response, html
    person = " It needs a person." if challenge.kind == "interactive" else ""
    raise ChallengeError(
        f"The {challenge.vendor} check at {challenge.url} did not clear within {timeout:g} s.{person} "
        f"Run `scraper solve {origin} --headed`, pass the check in the window, then retry "
        "(later runs use the saved profile).",
        vendor=challenge.vendor,
        kind=challenge.kind,
        url=challenge.url,
    )


# Where a single-checkbox check lives: Cloudflare Turnstile's frame (and the like), and its box.
_WIDGET_FRAMES = ("challenges.cloudflare.com", "/turnstile/")
_CHECKBOX = "input[type=checkbox], [role=checkbox]"


async def click_checkbox(page: Any, timeout: float) -> bool:
    """Click the checkbox of a challenge widget with real input events: the mouse moves to it in steps,
    from somewhere else on the page, and presses and releases on a point inside the box. False when
    no such box is on the page (yet)."""
    for frame in page.frames:
        if frame is page.main_frame or not any(marker in frame.url for marker in _WIDGET_FRAMES):
            continue
        try:
            box = await within(frame.locator(_CHECKBOX).first.bounding_box(), timeout)
        except DriverErrorOrTimeout:
            continue
        if not box:
            continue
        x = box["x"] + box["width"] * random.uniform(0.3, 0.7)
        y = box["y"] + box["height"] * random.uniform(0.3, 0.7)
        with contextlib.suppress(*DriverError):
            await page.mouse.move(random.uniform(0, x), random.uniform(0, y))
            await page.mouse.move(x, y, steps=random.randint(12, 25))
            await page.mouse.down()
            await asyncio.sleep(random.uniform(0.05, 0.15))  # a person holds the button for a moment
            await page.mouse.up()
            return True
    return False
