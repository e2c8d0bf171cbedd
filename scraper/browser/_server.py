"""A Playwright browser server on the Chromium this machine has (``scraper browser-server``).

``playwright run-server`` looks for Playwright's own browser build, which a closed network cannot
download, and takes a client's ``executablePath`` only with ``--unsafe`` (which lets any client start any
program). Playwright's driver also has ``launch-server``: one browser, launched by the server with the
options of a config file, shared by every client that connects to its endpoint. Here that config is the
launch a local browser gets: the Chromium :func:`find_browser` picks and :data:`CHROMIUM_ARGS`. The
endpoint's path is random unless given: on a network it is the only key to the browser.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from typing import IO, Any

from ..errors import BrowserLaunchError, ConfigError
from ._driver import driver_name
from ._runtime import CHROMIUM_ARGS, find_browser
from ._switches import lean_switches_blocking

__all__ = ["BrowserServer", "server_config"]

_PR_SET_PDEATHSIG = 1


def server_config(host: str, port: int, path: str | None = None, *, headless: bool = True) -> dict[str, Any]:
    """The ``launchServer`` options: where to listen, and the launch a local browser gets."""
    config: dict[str, Any] = {
        "executablePath": find_browser().path,
        "headless": headless,
        "args": list(CHROMIUM_ARGS),
        "host": host,
        "port": port,
    }
    if path:
        config["wsPath"] = path if path.startswith("/") else f"/{path}"
    return config


def _driver_command(name: str) -> list[str]:
    """The Node driver that ships in the ``playwright`` (or ``patchright``) package."""
    try:
        module = importlib.import_module(f"{name}._impl._driver")
    except ImportError as exc:
        raise ConfigError(f"The {name} driver is not installed: pip install {name}.") from exc
    return [str(part) for part in module.compute_driver_executable()]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the driver gets SIGTERM (and closes its Chromium) when the process that started it dies."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class BrowserServer:
    """The driver's ``launch-server`` as a child process: :meth:`start` returns its ws endpoint."""

    def __init__(self, config: dict[str, Any], *, driver: str | None = None) -> None:
        self.config = config
        self.driver = driver_name(driver)
        self.process: subprocess.Popen[str] | None = None
        self.endpoint: str | None = None

    def start(self, timeout: float = 60) -> str:
        """Launch the browser and its server; the endpoint once it listens (BrowserLaunchError otherwise)."""
        config = dict(self.config)
        if config.get("executablePath"):  # the launch a local browser gets: the address bar's popups off too
            args = list(config.get("args", []))
            config["args"] = args + lean_switches_blocking(self.driver, config["executablePath"], args)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            json.dump(config, fh)
        # what the driver says on stderr, read when it fails to start (the driver keeps its own handle)
        with tempfile.TemporaryFile("w+") as errors:
            try:
                self.process = subprocess.Popen(
                    [*_driver_command(self.driver), "launch-server", "--browser", "chromium", "--config", fh.name],
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    text=True,
                    preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                )
                line = _first_line(self.process.stdout, timeout)
            finally:
                os.unlink(fh.name)
            if not line.startswith("ws"):
                self.process.kill()
                self.process.wait(10)
                errors.seek(0)
                said = [e.strip() for e in errors.read().splitlines() if e.strip()]
                reason = said[0] if said else line or f"exit {self.process.returncode}"
                raise BrowserLaunchError(f"The browser server did not start: {reason[:300]}")
        self.endpoint = line
        return line

    def wait(self) -> int:
        """Until the server ends, in slices: a signal that lands on another thread than the main one is
        handled only when the main thread runs again, which an endless wait would never do."""
        assert self.process is not None
        while True:
            try:
                return self.process.wait(0.5)
            except subprocess.TimeoutExpired:
                continue

    def signal(self) -> None:
        """Ask the server to stop (from a signal handler: it does not wait)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def stop(self, timeout: float = 15) -> None:
        """Close the browser and the server (SIGTERM lets the driver close Chromium first)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _first_line(stream: IO[str] | None, timeout: float) -> str:
    """The first line the driver prints (its endpoint), or "" when it ends or says nothing in time."""
    import threading

    found: list[str] = []
    done = threading.Event()

    def read() -> None:
        with contextlib.suppress(Exception):
            found.append(stream.readline() if stream else "")
        done.set()

    threading.Thread(target=read, daemon=True).start()
    done.wait(timeout)
    return found[0].strip() if found else ""
