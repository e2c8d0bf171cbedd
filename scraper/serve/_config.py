"""How a ``scraper serve`` runs, and the one safety rule: beyond loopback, only with an API key."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import ConfigError

__all__ = ["DEFAULT_PORT", "ServeConfig", "is_loopback"]

DEFAULT_PORT = 1337
MAX_BODY = 1 << 20  # bytes: a long conversation fits many times over; a runaway upload does not


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine (a name other than localhost counts as not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServeConfig:
    """The server's settings (``scraper serve``'s options).

    ``sites`` maps a model name to a chat page; ``allow_urls`` lets requests name pages of their own
    (``site``) even when the server listens beyond loopback; beyond ``max_concurrency`` chats at once a
    request waits up to ``queue_timeout`` seconds for a slot, then gets 429; ``timeout`` is each chat's
    per-step bound unless the request gives one. ``allow_origins`` and ``allow_hosts`` open the checks of
    :mod:`._guard`; the three connection timeouts bound what a slow client can hold. ``conversations`` is
    where the conversation store lives; ``state``, a Redis several servers share, replaces it and holds
    the site profiles, the sites' budgets and the conversations' locks too. ``site_rate`` is the most
    chats a minute started with one site (its page's origin), for this server or, with ``state``, for
    every server sharing it; a chat beyond it waits within ``queue_timeout``, else gets 429.
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    api_key: str | None = None
    insecure: bool = False
    sites: Mapping[str, str] = field(default_factory=dict)
    allow_urls: bool = False
    max_concurrency: int = 16
    site_rate: int | None = None  # chats a minute per site at most (None: no bound)
    queue_timeout: float = 30.0
    timeout: float = 120.0
    max_body: int = MAX_BODY
    headed: bool = False
    allow_origins: tuple[str, ...] = ()  # web pages (origins) whose requests are served, with CORS
    allow_hosts: tuple[str, ...] = ()  # Host names answered besides the listening address
    header_timeout: float = 10.0  # seconds a connection may take to send a request's headers
    body_timeout: float = 30.0  # seconds a request may take to send its body
    idle_timeout: float = 5.0  # seconds a kept-alive connection may sit idle between requests
    max_sites: int | None = None  # warm sites kept at most (None: the browser's default, SCRAPER_MAX_SITES)
    conversations: str | None = None  # the conversation store: a file path, "off", or None for the default
    state: str | None = None  # a redis:// URL: conversations, profiles and cleared checks shared with other servers
    browser: str | None = None  # a remote browser (ws:// or http:// CDP) instead of launching one
    browsers: tuple[str, ...] = ()  # two or more: a pool of browsers ("local", ws://, http://; ?capacity=N)
    log_format: str = "text"  # "json": one JSON object per log line, each with its request's id

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    @property
    def urls_allowed(self) -> bool:
        """Whether a request may name any page: on loopback the caller is this machine's user."""
        return self.allow_urls or self.loopback

    def check(self) -> None:
        """ConfigError when the settings cannot be used, or would open this browser to the network."""
        if not self.loopback and not self.api_key and not self.insecure:
            raise ConfigError(
                f"Refusing to listen on {self.host or 'every address'} without an API key: anyone who can reach it "
                "could chat through this machine's browser, with its address and its saved cookies. Pass "
                "--api-key KEY (or set SCRAPER_API_KEY), listen on 127.0.0.1, or add --insecure if the network "
                "is yours alone."
            )
        if self.max_concurrency < 1:
            raise ConfigError(f"--max-concurrency must be at least 1, not {self.max_concurrency}.")
        if self.site_rate is not None and self.site_rate < 1:
            raise ConfigError(f"--site-rate must be at least 1 chat a minute, not {self.site_rate}.")
        if self.queue_timeout < 0:
            raise ConfigError(f"--queue-timeout cannot be negative ({self.queue_timeout:g}).")
        for name in ("header_timeout", "body_timeout", "idle_timeout"):
            if not 0 < getattr(self, name) <= 3600:
                raise ConfigError(f"{name} must be above 0 and at most 3600 seconds, not {getattr(self, name):g}.")
        if self.max_sites is not None and self.max_sites < 1:
            raise ConfigError(f"--max-sites must be at least 1, not {self.max_sites}.")
        if self.browser is not None:
            from ..browser import remote_options

            remote_options(self.browser)  # ConfigError when it is no browser URL
        if self.browsers:
            from ..browser import parse_browsers

            parse_browsers(self.browsers)  # ConfigError when one is no browser
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"--log-format must be text or json, not {self.log_format!r}.")
        if self.state is not None:
            from ..state._redis import URL_FORM, is_redis_url

            if not is_redis_url(self.state):
                raise ConfigError(f"--state must be a Redis URL: {URL_FORM}.")
            if self.conversations is not None:
                raise ConfigError("--state keeps the conversations in Redis: drop --conversations.")
        if not 0 <= self.port < 65536:
            raise ConfigError(f"--port must be a TCP port (0-65535), not {self.port}.")
