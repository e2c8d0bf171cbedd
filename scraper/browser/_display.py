"""A virtual display for a headed browser on a machine without a screen (a server, a container, CI).

Tools that pass Cloudflare most often run a headed browser under Xvfb. ``VirtualDisplay`` starts one
Xvfb of its own, lets it pick a free display number and tell it when it is ready (``-displayfd``,
no guessing and no sleeping), and stops it with the browser.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import time

from ..errors import BrowserLaunchError
from ..wire import logger

__all__ = ["VirtualDisplay"]

log = logger("scraper.display")
SCREEN = (1920, 1080)  # what a desktop commonly has; a headed window is smaller than it
START_SECONDS = 10.0


class VirtualDisplay:
    """One Xvfb, started on :meth:`start` and stopped on :meth:`stop`; ``display`` is like ``":1"``."""

    def __init__(self, size: tuple[int, int] = SCREEN) -> None:
        self.size = size
        self.display: str | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start Xvfb and return its display once it accepts clients."""
        if self.display is not None:
            return self.display
        binary = shutil.which("Xvfb")
        if binary is None:
            raise BrowserLaunchError(
                "A visible browser needs a display and there is none here, nor Xvfb to make one. Install it "
                "(`sudo apt-get install -y xvfb`), run on a desktop, or use headless=True."
            )
        read, write = os.pipe()
        width, height = self.size
        try:
            self._process = subprocess.Popen(
                [binary, "-displayfd", str(write), "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
                pass_fds=(write,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            os.close(write)
        try:
            number = self._read_display(read)
        finally:
            os.close(read)
        self.display = f":{number}"
        log.info("started a virtual display %s (%dx%d) for the headed browser", self.display, width, height)
        return self.display

    def _read_display(self, fd: int) -> str:
        """The display number Xvfb writes once it is ready; an error if it dies or takes too long."""
        deadline = time.monotonic() + START_SECONDS
        data = b""
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0))
            if not ready:
                self.stop()
                raise BrowserLaunchError(f"Xvfb did not start within {START_SECONDS:g} s.")
            chunk = os.read(fd, 64)
            if not chunk:
                self.stop()
                raise BrowserLaunchError("Xvfb exited before it was ready; check that it runs (`Xvfb -help`).")
            data += chunk
        return data.decode().strip()

    @property
    def env(self) -> dict[str, str]:
        """The environment a browser process needs to show its window on this display."""
        return {**os.environ, "DISPLAY": self.start()}

    def stop(self) -> None:
        """Stop Xvfb; safe to call twice."""
        process, self._process = self._process, None
        self.display = None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                process.kill()
            process.wait(5)
