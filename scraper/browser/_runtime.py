"""Find, launch and own Chromium.

Playwright runs on a private thread with its own event loop. That lets one browser serve every
``asyncio.run`` a program makes (the seed examples call it once per question), and lets it be closed
from ``atexit`` after the caller's loop is gone, so no Chromium outlives the program.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import shutil
import sys
import threading
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, TypeVar

from .._aio import close_now, closing, within
from .._keywords import check_keywords
from ..errors import BrowserError, BrowserLaunchError, BrowserNotFoundError, ConfigError
from ..wire import logger
from ._display import SCREEN as DESKTOP
from ._display import VirtualDisplay
from ._driver import DriverError, async_api, driver_name
from ._env import env_number
from ._hosts import SiteRules
from ._lanes import SiteRegistry
from ._switches import lean_switches

__all__ = [
    "CHROMIUM_ARGS",
    "BrowserLocation",
    "BrowserOptions",
    "BrowserRuntime",
    "aclose",
    "close",
    "env_number",
    "find_browser",
    "get_runtime",
    "remote_options",
    "reset_all",
    "shared_rules",
]

log = logger("scraper.browser")
T = TypeVar("T")

# Every flag the package adds, and what it tells a page. None of them changes what a page's script
# can observe, but for the last one, which removes a tell.
CHROMIUM_ARGS: tuple[str, ...] = (
    # A closed network: without these Chromium keeps dialling Google's hosts at start-up (updates,
    # sync, field trials), which fail here and slow every launch. Pages cannot see them.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    # No first-run and default-browser prompts in a headed window. Invisible to pages.
    "--no-first-run",
    "--no-default-browser-check",
    # Containers give /dev/shm 64 MB, too little for a renderer: use /tmp. Invisible to pages.
    "--disable-dev-shm-usage",
    # Removes navigator.webdriver = true, the first thing every bot check reads.
    "--disable-blink-features=AutomationControlled",
)
# What a headless page reports as its screen: a desktop's, larger than the window (a screen exactly the
# size of the viewport is a headless tell). A headed window uses the real screen and window size.
SCREEN = {"width": DESKTOP[0], "height": DESKTOP[1]}
VIEWPORT = {"width": 1280, "height": 720}
SYSTEM_BROWSERS: tuple[str, ...] = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "chrome",
)
INSTALL_HINT = (
    "Install one: `sudo apt-get install -y chromium` (Debian/Ubuntu), or "
    "`python -m playwright install chromium`, or point SCRAPER_BROWSER at a Chromium/Chrome executable."
)


class BrowserOptions(TypedDict, total=False):
    """How to get a browser: launch one (headless or headed) or connect to a remote one.

    ``driver``: ``"playwright"`` (default) or ``"patchright"`` (``wpchat-scraper[stealth]``, does not enable the
    DevTools ``Runtime`` domain a page can detect). ``virtual_display``: run a headed browser under an
    Xvfb of its own (also done by itself when headed and there is no display). ``auto_click``: click a
    single-checkbox check (Turnstile-style) with real input events when one appears (default on).
    """

    headless: bool
    slow_mo: float
    executable_path: str
    args: list[str]
    ws_endpoint: str
    cdp_endpoint: str
    driver: Literal["playwright", "patchright"]
    virtual_display: bool
    auto_click: bool


@dataclass(frozen=True)
class BrowserLocation:
    """Where the Chromium executable is and how it was found."""

    path: str
    source: Literal["SCRAPER_BROWSER", "playwright", "system"]


def _playwright_managed() -> str | None:
    """The path of a Playwright-managed Chromium, if `playwright install` put one there."""
    cache = os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or os.path.join(
        os.path.expanduser("~"), ".cache", "ms-playwright"
    )
    if not os.path.isdir(cache):
        return None
    candidates = []
    for entry in sorted(os.listdir(cache), reverse=True):
        base = os.path.join(cache, entry)
        if entry.startswith("chromium-"):
            candidates += [os.path.join(base, "chrome-linux64", "chrome"), os.path.join(base, "chrome-linux", "chrome")]
            candidates.append(os.path.join(base, "chrome-mac", "Chromium.app", "Contents", "MacOS", "Chromium"))
            candidates.append(os.path.join(base, "chrome-win", "chrome.exe"))
    return next((c for c in candidates if os.access(c, os.X_OK)), None)


def find_browser() -> BrowserLocation:
    """Pick a Chromium: SCRAPER_BROWSER if set, else Playwright's own, else a system one."""
    explicit = os.environ.get("SCRAPER_BROWSER")
    if explicit:
        path = shutil.which(explicit) or explicit
        if not os.access(path, os.X_OK):
            raise BrowserNotFoundError(f"SCRAPER_BROWSER={explicit!r} is not an executable file. {INSTALL_HINT}")
        return BrowserLocation(path, "SCRAPER_BROWSER")
    managed = _playwright_managed()
    if managed:
        return BrowserLocation(managed, "playwright")
    for name in SYSTEM_BROWSERS:
        found = shutil.which(name)
        if found:
            return BrowserLocation(found, "system")
    raise BrowserNotFoundError(f"No Chromium found on this machine. {INSTALL_HINT}")


def options_from_env(options: BrowserOptions | None = None) -> BrowserOptions:
    """Fill what the caller left out from the environment.

    SCRAPER_WS_ENDPOINT / SCRAPER_CDP_ENDPOINT pick a remote browser; SCRAPER_HEADED=1 and
    SCRAPER_SLOW_MO=<ms> show the flow at a human pace without touching code.
    """
    check_keywords(options or {}, BrowserOptions.__annotations__, "browser options")
    merged: BrowserOptions = dict(options or {})  # type: ignore[assignment]
    if "headless" not in merged and os.environ.get("SCRAPER_HEADED", "") not in ("", "0"):
        merged["headless"] = False
    if "slow_mo" not in merged and os.environ.get("SCRAPER_SLOW_MO"):
        merged["slow_mo"] = env_number("SCRAPER_SLOW_MO", float, 0)
    if "driver" not in merged and os.environ.get("SCRAPER_DRIVER"):
        merged["driver"] = driver_name()
    if "virtual_display" not in merged and os.environ.get("SCRAPER_VIRTUAL_DISPLAY", "") not in ("", "0"):
        merged["virtual_display"] = True
    if "ws_endpoint" not in merged and "cdp_endpoint" not in merged:
        if os.environ.get("SCRAPER_WS_ENDPOINT"):
            merged["ws_endpoint"] = os.environ["SCRAPER_WS_ENDPOINT"]
        elif os.environ.get("SCRAPER_CDP_ENDPOINT"):
            merged["cdp_endpoint"] = os.environ["SCRAPER_CDP_ENDPOINT"]
    return merged


def remote_options(url: str) -> BrowserOptions:
    """The options for a remote browser named by URL: ``ws://`` a Playwright browser server (such as
    ``scraper browser-server``), ``http://`` a Chromium's DevTools (CDP) endpoint."""
    scheme = url.partition("://")[0].lower()
    if scheme in ("ws", "wss"):
        return {"ws_endpoint": url}
    if scheme in ("http", "https"):
        return {"cdp_endpoint": url}
    raise ConfigError(
        f"A remote browser is ws://HOST:PORT/PATH (a Playwright browser server) or http://HOST:PORT (CDP), not {url!r}."
    )


def normal_user_agent(version: str) -> str:
    """The User-Agent a desktop Chrome of this version sends (headless Chromium says HeadlessChrome)."""
    major = version.split(".")[0] or "0"
    if sys.platform == "darwin":
        system = "Macintosh; Intel Mac OS X 10_15_7"
    elif sys.platform.startswith("win"):
        system = "Windows NT 10.0; Win64; x64"
    else:
        system = "X11; Linux x86_64"
    return f"Mozilla/5.0 ({system}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 Safari/537.36"


def _key(options: BrowserOptions) -> tuple[Any, ...]:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in options.items()))


class BrowserRuntime:
    """One Playwright driver and one browser, living on a private thread.

    Every Playwright call runs on that thread's loop; :meth:`call` and :meth:`iterate` carry work
    and results between it and the caller's loop.
    """

    def __init__(self, options: BrowserOptions | None = None, *, rules: SiteRules | None = None) -> None:
        self.options: BrowserOptions = options_from_env(options)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._playwright: Any = None
        self._browser: Any = None
        self._start_lock: asyncio.Lock | None = None
        self._state_lock = threading.Lock()
        self._closed = False
        self.location: BrowserLocation | None = None
        self.launches = 0  # browsers launched or connected so far: a lane's context belongs to one of them
        self.use_profiles = True
        self.user_agent: str | None = None
        self._display: VirtualDisplay | None = None
        self.rules = rules if rules is not None else SiteRules()  # host limits and recorders of its sites
        self.sites = SiteRegistry(self)

    # -- the private loop -------------------------------------------------------------------
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._state_lock:
            if self._closed:
                raise BrowserLaunchError("This browser runtime was closed; create a new one.")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=run, name="scraper-browser", daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    @property
    def on_own_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the browser thread and await its result from the caller's loop."""
        loop = self._ensure_loop()
        if self.on_own_loop:
            return await coro
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        return await asyncio.wrap_future(future)

    def call_sync(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the browser thread from synchronous code."""
        loop = self._ensure_loop()
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    async def iterate(self, agen: AsyncIterator[T]) -> AsyncIterator[T]:
        """Drive an async generator that lives on the browser thread from the caller's loop.

        The browser thread runs ``agen`` and hands each item over as it comes (many per wake-up when
        the caller is busy), so a long stream does not pay a cross-thread round trip per chunk.
        Closing this iterator, or cancelling the task that reads it, cancels ``agen`` on the browser
        thread and waits for its ``finally`` blocks (which abort the fetch) to finish.
        """
        loop = self._ensure_loop()
        if self.on_own_loop:
            async with closing(agen):
                async for item in agen:
                    yield item
            return
        caller = asyncio.get_running_loop()
        inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        cleaned_up = asyncio.Event()
        started = threading.Event()

        batch: list[tuple[str, Any]] = []
        batch_lock = threading.Lock()

        def deliver() -> None:  # on the caller's loop: everything posted since the last delivery
            with batch_lock:
                items = batch[:]
                batch.clear()
            for item in items:
                inbox.put_nowait(item)

        def post(kind: str, value: Any) -> None:
            with batch_lock:
                batch.append((kind, value))
                if len(batch) > 1:
                    return  # a delivery is already on its way and will take this one too
            with contextlib.suppress(RuntimeError):  # the caller's loop is gone: nobody is listening
                caller.call_soon_threadsafe(deliver)

        async def pump() -> None:
            started.set()
            try:
                async for item in agen:
                    post("item", item)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                post("error", exc)
            else:
                post("end", None)
            finally:
                try:
                    await close_now(agen)
                finally:
                    with contextlib.suppress(RuntimeError):
                        caller.call_soon_threadsafe(cleaned_up.set)

        pumping = asyncio.run_coroutine_threadsafe(pump(), loop)
        try:
            while True:
                kind, value = await inbox.get()
                if kind == "item":
                    yield value
                elif kind == "end":
                    return
                else:
                    raise value
        finally:
            pumping.cancel()  # a no-op when it already ended
            if started.is_set():  # cancelled before it began, it has nothing to clean up
                with contextlib.suppress(asyncio.TimeoutError):
                    await within(cleaned_up.wait(), 30)

    # -- the browser ------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """Whether the browser is up and reachable (False before the first launch and once it died)."""
        return self._browser is not None and self._browser.is_connected()

    @property
    def version(self) -> str | None:
        """The running browser's version, while it is connected."""
        return self._browser.version if self.connected else None

    async def browser(self) -> Any:
        """The connected browser, launched on first use (runs on the browser thread)."""
        if self._browser is not None and self._browser.is_connected():
            return self._browser
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            if self._browser is not None:
                log.warning("the browser is gone; starting it again")
                with contextlib.suppress(Exception):
                    await within(self._browser.close(), 5)
            self._browser = await self._launch()
            self.user_agent = normal_user_agent(self._browser.version)
            return self._browser

    @property
    def driver(self) -> str:
        """The Playwright this runtime drives Chromium with: "playwright" or "patchright"."""
        return driver_name(self.options.get("driver"))

    @property
    def headless(self) -> bool:
        return bool(self.options.get("headless", True))

    @property
    def auto_click(self) -> bool:
        """Whether a single-checkbox check is clicked like a person (on unless switched off)."""
        return bool(self.options.get("auto_click", True))

    def context_options(self) -> dict[str, Any]:
        """What every browser context gets besides its site's cookies: how big its screen is."""
        if self.headless:
            return {"screen": dict(SCREEN), "viewport": dict(VIEWPORT)}
        return {"no_viewport": True}  # the window's own size, on the (real or virtual) screen

    async def _launch(self) -> Any:
        api = async_api(self.driver)  # type: ignore[arg-type]
        if self._playwright is None:
            self._playwright = await api.async_playwright().start()
        chromium = self._playwright.chromium
        opts = self.options
        try:
            if opts.get("ws_endpoint"):
                log.info("connecting to a Playwright browser server at %s", opts["ws_endpoint"])
                # The server launches the browser with the options the client sends; a path to the
                # executable (on the server's machine) needs `playwright run-server --unsafe` there.
                remote: dict[str, Any] = {
                    "headless": opts.get("headless", True),
                    "args": list(CHROMIUM_ARGS) + list(opts.get("args", [])),
                }
                if opts.get("executable_path"):
                    remote["executablePath"] = opts["executable_path"]
                browser = await chromium.connect(
                    opts["ws_endpoint"],
                    slow_mo=opts.get("slow_mo"),
                    headers={"x-playwright-launch-options": json.dumps(remote)},
                )
            elif opts.get("cdp_endpoint"):
                log.info("connecting to Chromium over CDP at %s", opts["cdp_endpoint"])
                browser = await chromium.connect_over_cdp(opts["cdp_endpoint"], slow_mo=opts.get("slow_mo"))
            else:
                path = opts.get("executable_path")
                self.location = BrowserLocation(path, "SCRAPER_BROWSER") if path else find_browser()
                args = list(CHROMIUM_ARGS) + list(opts.get("args", []))
                args += await lean_switches(chromium, self.driver, self.location.path, args)
                headless = self.headless
                env: dict[str, str] | None = None
                if not headless:
                    # A headed window as a person's browser: smaller than its screen.
                    args.append(f"--window-size={VIEWPORT['width']},{VIEWPORT['height'] + 120}")
                    no_display = sys.platform.startswith("linux") and not os.environ.get("DISPLAY")
                    if opts.get("virtual_display") or no_display:
                        if self._display is None:
                            self._display = VirtualDisplay()
                        display = self._display
                        env = await asyncio.get_running_loop().run_in_executor(None, lambda: display.env)
                log.info(
                    "launching %s Chromium with %s (%s: %s)",
                    "headless" if headless else f"headed{' on a virtual display' if env else ''}",
                    self.driver,
                    self.location.source,
                    self.location.path,
                )
                browser = await chromium.launch(
                    executable_path=self.location.path,
                    headless=headless,
                    slow_mo=opts.get("slow_mo"),
                    args=args,
                    env=env,
                )
        except DriverError as exc:
            where = opts.get("ws_endpoint") or opts.get("cdp_endpoint") or (self.location and self.location.path)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BrowserLaunchError(
                f"Could not start or reach the browser ({where}): {first}. "
                "Check that it runs (`chromium --headless --version`), or set SCRAPER_BROWSER."
            ) from exc
        self.launches += 1
        return browser

    # -- closing ----------------------------------------------------------------------------
    async def reset(self) -> None:
        """Close every warm site (contexts and pages) but keep the browser running."""
        await self.call(self.sites.close_all())

    def reset_sync(self, timeout: float = 30) -> None:
        """:meth:`reset` from synchronous code (a no-op before the browser thread started)."""
        if self._loop is not None and not self._closed:
            self.call_sync(self.sites.close_all(), timeout)

    async def _shutdown(self) -> None:
        await self.sites.close_all()
        if self._browser is not None:
            with contextlib.suppress(Exception):
                await self._browser.close()
            self._browser = None
        if self._playwright is not None:
            with contextlib.suppress(Exception):
                await self._playwright.stop()
            self._playwright = None
        if self._display is not None:
            self._display.stop()
            self._display = None

    def close(self) -> None:
        """Close the browser and stop the thread; safe to call twice and from ``atexit``."""
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if threading.current_thread() is thread:
            raise BrowserError("BrowserRuntime.close() cannot run on the browser thread; use aclose().")
        if loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(30)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if not loop.is_running():
            loop.close()

    async def aclose(self) -> None:
        """Close from async code without blocking the caller's loop."""
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    @property
    def closed(self) -> bool:
        return self._closed


_runtimes: dict[tuple[Any, ...], BrowserRuntime] = {}
_runtimes_lock = threading.Lock()
# The rules every runtime of get_runtime shares: a chat that asks for other browser options gets another
# runtime, and must not escape a host limit or a recording set for the process.
_shared_rules = SiteRules()


def shared_rules() -> SiteRules:
    """The host limits and recorders of the runtimes :func:`get_runtime` hands out."""
    return _shared_rules


def get_runtime(options: BrowserOptions | None = None) -> BrowserRuntime:
    """The process-wide runtime for these options (one browser per distinct option set)."""
    merged = options_from_env(options)
    key = _key(merged)
    with _runtimes_lock:
        runtime = _runtimes.get(key)
        if runtime is None or runtime.closed:
            runtime = _runtimes[key] = BrowserRuntime(merged, rules=_shared_rules)
        return runtime


def reset_all(timeout: float = 60) -> None:
    """Close the warm sites of every runtime of this process (their browsers keep running)."""
    with _runtimes_lock:
        runtimes = list(_runtimes.values())
    for runtime in runtimes:
        runtime.reset_sync(timeout)


def close() -> None:
    """Close every browser this process started (also runs at interpreter exit)."""
    with _runtimes_lock:
        runtimes = list(_runtimes.values())
        _runtimes.clear()
    for runtime in runtimes:
        runtime.close()


async def aclose() -> None:
    """Async form of :func:`close`, for ``await scraper.aclose()``."""
    await asyncio.get_running_loop().run_in_executor(None, close)


def _close_at_exit() -> None:
    try:
        close()
    except Exception as exc:  # pragma: no cover - last-chance cleanup
        print(f"scraper: error while closing the browser at exit: {exc}", file=sys.stderr)


atexit.register(_close_at_exit)
