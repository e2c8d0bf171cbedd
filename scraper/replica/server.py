"""The replica sites: a threaded HTTP server per site, its nonces, request log and counters.

Each site runs in a daemon thread on 127.0.0.1 (a free port by default), so tests, a demo and a
benchmark can start one in-process. Control endpoints under ``/__replica__/`` let another process
read and change a running site.

A site runs one plugin (``ReplicaSite("aipkit")``) or several on the same page and WordPress
(``ReplicaSite("aipkit+aiengine")``, or the names as a tuple).
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from .._http_server import CloseDelimitedHandler, LoopbackServer, ServerThread
from .antibot import AntiBot, is_chat_request
from .apps import APPS, PLUGINS
from .config import RecordedRequest, ReplicaStats, SiteConfig
from .exchange import ClientGone, Exchange
from .sensor import Sensor
from .wordpress import CSS, MultiPluginApp, site_path

__all__ = ["PLUGINS", "Replica", "ReplicaSite"]

log = logging.getLogger("scraper.replica")
log.addHandler(logging.NullHandler())  # silent unless the application configures logging

CONTROL_PREFIX = "/__replica__/"
STALL_SECONDS = 24 * 3600.0
STATIC_DIR = Path(__file__).with_name("static")
# the theme's files and every plugin's (each app lists its own)
STATIC_FILES = {
    **{path: (file, kind) for app in APPS.values() for path, file, kind in app.static_files},
    "/wp-content/themes/corner/style.css": ("style.css", CSS),
    "/wp-content/themes/corner/icon.svg": ("icon.svg", "image/svg+xml"),
}
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\nBad Request"


def _new_nonce() -> str:
    """Ten lowercase hex characters, the shape of a WordPress nonce."""
    return secrets.token_hex(5)


def plugin_names(plugin: str | Sequence[str]) -> tuple[str, ...]:
    """The plugins a site runs: one name, names joined by "+", or a sequence of names; ValueError if unknown."""
    names = tuple(plugin.split("+")) if isinstance(plugin, str) else tuple(plugin)
    unknown = [name for name in names if name not in PLUGINS]
    if not names or unknown or len(set(names)) != len(names):
        raise ValueError(f"plugin must be one of {', '.join(PLUGINS)} (or several joined by '+'), not {plugin!r}")
    return names


class _Server(LoopbackServer):
    def __init__(self, address: tuple[str, int], site: ReplicaSite) -> None:
        self.site = site
        super().__init__(address, _Handler)


class _Handler(CloseDelimitedHandler):
    """Reads one request, hands it to the site, closes: one request per connection, as PHP's server."""

    server: _Server

    def _handle(self) -> None:
        """Parse, dispatch, and keep a vanished client from becoming a traceback."""
        site = self.server.site
        try:
            body = self.read_body()
        except (ValueError, OSError):
            with contextlib.suppress(OSError):
                self.wfile.write(_BAD_REQUEST)
            return
        ex = Exchange(site, self, body)
        try:
            site.serve(ex)
            log.debug("%s %s %s -> %s", site.plugin, ex.method, self.path, ex.status)
        except ClientGone:
            log.debug("%s %s %s -> %s, the client went away", site.plugin, ex.method, self.path, ex.status)
        except Exception:
            log.exception("%s %s failed", ex.method, ex.path)
            if not ex.started:
                with contextlib.suppress(ClientGone):
                    ex.respond(500, [("Content-Type", "text/plain; charset=UTF-8")], b"replica error")

    do_GET = do_POST = do_HEAD = do_OPTIONS = do_PUT = do_PATCH = do_DELETE = _handle


class ReplicaSite(ServerThread):
    """One local WordPress site with one chat plugin (a name of :data:`PLUGINS`, e.g. "aipkit"), or several on
    one page ("aipkit+aiengine" or ``("aipkit", "aiengine")``), started on demand."""

    def __init__(
        self,
        plugin: str | Sequence[str],
        config: SiteConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.plugins = plugin_names(plugin)
        self.plugin = "+".join(self.plugins)
        self.thread_name = f"replica-{self.plugin}"
        self.config = config if config is not None else SiteConfig()
        self._lock = threading.RLock()
        self._stats = ReplicaStats()
        self._log: list[RecordedRequest] = []
        self._nonce = _new_nonce()
        self._previous: str | None = None
        # what plugins that keep the conversation server-side recorded: AIPKit, keyed by
        # (bot_id, session_id, conversation_uuid), the messages in order
        self.chat_history: dict[tuple[Any, ...], list[dict[str, str]]] = {}
        apps = [APPS[name](self) for name in self.plugins]
        self._app = apps[0] if len(apps) == 1 else MultiPluginApp(self, apps)
        self._antibot = AntiBot(self)
        self.sensor = Sensor(self)  # the "sensor" front: its reports, verdicts and counters

    def __repr__(self) -> str:
        state = self.url if self._server is not None else "stopped"
        return f"<ReplicaSite {self.plugin} {state}>"

    # -- life cycle ------------------------------------------------------------------------------

    def make_server(self, address: tuple[str, int]) -> _Server:
        return _Server(address, self)

    def started(self) -> None:
        log.debug("%s replica serving at %s", self.plugin, self.url)

    # -- nonces ----------------------------------------------------------------------------------

    @property
    def nonce(self) -> str:
        """The current valid nonce."""
        with self._lock:
            return self._nonce

    @property
    def previous_nonce(self) -> str | None:
        """The nonce of the previous tick, still accepted (None after an expiry)."""
        with self._lock:
            return self._previous

    def rotate_nonce(self) -> str:
        """A new tick: the current nonce becomes the previous (still valid) one; returns the new nonce."""
        with self._lock:
            self._previous, self._nonce = self._nonce, _new_nonce()
            return self._nonce

    def expire_nonces(self) -> str:
        """Invalidate every nonce issued so far; returns the fresh one pages and sessions now hand out."""
        with self._lock:
            self._previous, self._nonce = None, _new_nonce()
            return self._nonce

    def nonce_verdict(self, value: str, *, stream: bool = False) -> str | None:
        """Judge a nonce a chat request carried: "current", "previous" or None (rejected), after ``nonce_mode``.

        ``stream`` marks the check of a stream step (AIPKit's step 2), the only one "stream_reject_once" refuses.
        """
        with self._lock:
            mode = self.config.nonce_mode
            if mode == "always_reject":
                return None
            if mode == "reject_once" or (stream and mode == "stream_reject_once"):
                self.config.nonce_mode = "ok"
                self.expire_nonces()
                return None
            if value == self._nonce:
                return "current"
            if self._previous is not None and value == self._previous:
                return "previous"
            return None

    # -- anti-bot front ---------------------------------------------------------------------------

    def clearance_for(self, user_agent: str) -> str:
        """The ``cf_clearance`` cookie value the Cloudflare modes accept from ``user_agent`` (and no other)."""
        return self._antibot.clearance_for(user_agent)

    def revoke_clearances(self) -> None:
        """Invalidate every clearance cookie issued so far; the next request is challenged again."""
        self._antibot.revoke()

    @property
    def flagged(self) -> bool:
        """Whether ``chat_challenge`` has put the whole site behind the challenge (a chat came uncleared)."""
        return self._antibot.flagged

    @property
    def sensor_reports(self) -> list[dict[str, Any]]:
        """Every report the "sensor" front received, oldest first (a snapshot; see ``sensor.Sensor``)."""
        return self.sensor.reports

    # -- log and counters ------------------------------------------------------------------------

    @property
    def log(self) -> list[RecordedRequest]:
        """Every request but static files and control calls, oldest first (the live list)."""
        return self._log

    @property
    def stats(self) -> ReplicaStats:
        """The live counters."""
        return self._stats

    def reset(self) -> None:
        """Clear the log, the counters, the chat history and the chat-challenge flag (the config, nonces and
        clearances stay)."""
        with self._lock:
            self._log.clear()
            self._stats.clear()
            self.chat_history.clear()
        self._antibot.unflag()
        self.sensor.reset()

    def count(self, name: str, delta: int = 1) -> None:
        """Add ``delta`` to one counter, under the lock."""
        with self._lock:
            setattr(self._stats, name, getattr(self._stats, name) + delta)

    def note(self, name: str, value: Any) -> None:
        """Append ``value`` to one list of the stats, under the lock."""
        with self._lock:
            getattr(self._stats, name).append(value)

    def remember(self, key: tuple[Any, ...], *messages: dict[str, str]) -> None:
        """Add ``messages`` to the conversation ``key`` of ``chat_history``, under the lock."""
        with self._lock:
            self.chat_history.setdefault(key, []).extend(messages)

    def history_of(self, key: tuple[Any, ...]) -> list[dict[str, str]]:
        """The messages of conversation ``key`` so far (a copy)."""
        with self._lock:
            return list(self.chat_history.get(key, ()))

    def stream_started(self) -> None:
        """A stream's headers are about to go out."""
        with self._lock:
            self._stats.streams_started += 1
            self._stats.active_streams += 1
            self._stats.peak_streams = max(self._stats.peak_streams, self._stats.active_streams)

    def stream_ended(self, *, aborted: bool) -> None:
        """A stream finished: written to its end, or cut short because the client left."""
        with self._lock:
            self._stats.active_streams -= 1
            if aborted:
                self._stats.streams_aborted += 1
            else:
                self._stats.streams_completed += 1

    def stream_lost_its_end(self) -> None:
        """A stream counted as ended before its last write lost that write: the client had left."""
        with self._lock:
            self._stats.streams_completed -= 1
            self._stats.streams_aborted += 1

    def state(self) -> dict[str, Any]:
        """Config, counters and log length, as the state endpoint reports them."""
        with self._lock:
            return {
                "plugin": self.plugin,
                "url": self.url,
                "nonce": self._nonce,
                "previous_nonce": self._previous,
                "config": self.config.to_dict(),
                "stats": self._stats.to_dict(),
                "log_length": len(self._log),
                "flagged": self._antibot.flagged,
            }

    # -- serving ---------------------------------------------------------------------------------

    def serve(self, ex: Exchange) -> None:
        """Answer one request: static files, control calls, the anti-bot front, or the WordPress site."""
        static = site_path(ex.path)
        if static in STATIC_FILES and ex.method in ("GET", "HEAD"):
            self._static(ex, static)
            return
        if ex.path.startswith(CONTROL_PREFIX):
            self._control(ex)
            return
        record = ex.make_record()
        with self._lock:
            self._log.append(record)
        if self._antibot.screen(ex):
            return
        if self._stalled(ex):
            ex.pause(STALL_SECONDS)  # ends when the client gives up or the site stops
            return
        self._app.dispatch(ex)

    def _stalled(self, ex: Exchange) -> bool:
        """A site that never answers: its pages (``page="stall"``) or its chat calls (``failure="stall"``)."""
        if self.config.failure == "stall" and is_chat_request(ex):
            return True
        return self.config.page == "stall" and ex.method in ("GET", "HEAD") and not is_chat_request(ex)

    def _static(self, ex: Exchange, path: str) -> None:
        """A file of the plugin or theme (also below ``SUBFOLDER``), as PHP's server sends static files."""
        name, content_type = STATIC_FILES[path]
        data = (STATIC_DIR / name).read_bytes()
        ex.respond(200, [("Content-Type", content_type), ("Content-Length", str(len(data)))], data)

    def _control(self, ex: Exchange) -> None:
        """``/__replica__/``: state, log, history, sensor, config, reset, rotate_nonce, expire_nonces,
        revoke_clearances."""
        action = ex.path[len(CONTROL_PREFIX) :].strip("/")
        status = 200
        result: Any
        if ex.method == "GET" and action == "state":
            result = self.state()
        elif ex.method == "GET" and action == "log":
            with self._lock:
                result = [record.to_dict() for record in self._log]
        elif ex.method == "GET" and action == "history":
            with self._lock:
                result = [{"key": list(key), "messages": list(messages)} for key, messages in self.chat_history.items()]
        elif ex.method == "POST" and action == "config":
            values = ex.json if ex.json_ok else None
            try:
                if not isinstance(values, dict):
                    raise ValueError("send a JSON object of SiteConfig fields")
                with self._lock:
                    self.config.update(values)
                result = self.state()
            except ValueError as exc:
                status, result = 400, {"error": str(exc)}
        elif ex.method == "POST" and action == "reset":
            self.reset()
            result = self.state()
        elif ex.method == "POST" and action == "rotate_nonce":
            self.rotate_nonce()
            result = self.state()
        elif ex.method == "POST" and action == "expire_nonces":
            self.expire_nonces()
            result = self.state()
        elif ex.method == "GET" and action == "sensor":
            result = self.sensor.snapshot()
        elif ex.method == "POST" and action == "revoke_clearances":
            self.revoke_clearances()
            result = self.state()
        else:
            status, result = 404, {"error": f"no control endpoint {ex.method} {ex.path}"}
        body = json.dumps(result, ensure_ascii=False).encode("utf-8")
        headers = [("Content-Type", "application/json; charset=UTF-8"), ("Cache-Control", "no-store")]
        ex.respond(status, headers, body)


class Replica:
    """One site per plugin, each on its own port: ``with Replica() as r: r.aipower, r.aipkit, ...``
    (``r.site("aipower")`` alike). ``<plugin>_config=SiteConfig(...)`` configures one of them."""

    def __init__(self, host: str = "127.0.0.1", **configs: SiteConfig | None) -> None:
        unknown = sorted(set(configs) - {f"{name}_config" for name in PLUGINS})
        if unknown:
            raise TypeError(f"Replica() got unexpected keyword argument(s): {', '.join(unknown)}")
        self._sites = {name: ReplicaSite(name, configs.get(f"{name}_config"), host=host) for name in PLUGINS}

    def site(self, plugin: str) -> ReplicaSite:
        """The site of ``plugin``."""
        return self._sites[plugin]

    def __getattr__(self, name: str) -> ReplicaSite:
        sites: dict[str, ReplicaSite] = self.__dict__.get("_sites", {})
        if name in sites:
            return sites[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def sites(self) -> tuple[ReplicaSite, ...]:
        """Every site, in the order of :data:`PLUGINS`."""
        return tuple(self._sites.values())

    def start(self) -> Replica:
        """Start every site; returns self."""
        try:
            for site in self.sites:
                site.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every site."""
        for site in self.sites:
            site.stop()

    def reset(self) -> None:
        """Clear every site's log and counters."""
        for site in self.sites:
            site.reset()

    def __enter__(self) -> Replica:
        """Start every site on entering a ``with`` block."""
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop on leaving the block, however it is left."""
        self.stop()
