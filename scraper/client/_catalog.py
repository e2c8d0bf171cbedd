"""Where each preset chats, as plain data: the preset classes take their sites from here, and the
command line reads it to send a running ``scraper serve`` the page it would load itself, without
importing the browser layer (standard library only)."""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["PRESET_SITES", "PresetSite", "chat_page", "site_url"]


def site_url(url: str, preset_url: str | None = None, url_env: str | None = None) -> str:
    """A site's base URL: ``url``; a preset's own URL gives way to its ``url_env`` when that is set."""
    chosen = url.rstrip("/")
    if url_env and preset_url and chosen == preset_url.rstrip("/"):
        chosen = (os.environ.get(url_env) or chosen).rstrip("/")
    return chosen


def chat_page(site_url: str, chat_path: str = "/") -> str:
    """A site's base URL plus the path of its chat page."""
    return site_url.rstrip("/") + (chat_path if chat_path.startswith("/") else "/" + chat_path)


@dataclass(frozen=True)
class PresetSite:
    """A preset's site: its name (``--provider``, the server's ``provider``), its class name, its URL and
    the environment variable that points it elsewhere, the plugins it speaks, its chat page path and
    where else to look when that page has no chat box; ``replica``: the replica plugin that serves a
    look-alike of the site (``scraper demo``)."""

    name: str
    title: str
    url: str
    url_env: str
    plugins: tuple[str, ...]
    chat_path: str = "/"
    fallback_paths: tuple[str, ...] = ()
    replica: str = ""

    def site_url(self, url: str | None = None) -> str:
        """``url`` (default: the preset's); the preset's own URL gives way to ``url_env`` when set."""
        return site_url(url or self.url, self.url, self.url_env)

    def page_url(self, url: str | None = None) -> str:
        """The chat page the preset (or its mirror at ``url``) loads."""
        return chat_page(self.site_url(url), self.chat_path)

    def fallback_urls(self, url: str | None = None) -> tuple[str, ...]:
        """The pages looked at, in order, when :meth:`page_url` has no chat box."""
        return tuple(chat_page(self.site_url(url), path) for path in self.fallback_paths)


PRESET_SITES: dict[str, PresetSite] = {
    "chatgptfree": PresetSite(
        "chatgptfree",
        "ChatgptFree",
        "https://chatgptfree.ai",
        "SCRAPER_CHATGPTFREE_URL",
        ("aipower",),
        chat_path="/chat/",
        fallback_paths=("/",),
        replica="aipkit",
    ),
    "chatgpt4online": PresetSite(
        "chatgpt4online",
        "Chatgpt4Online",
        "https://chatgpt4online.org",
        "SCRAPER_CHATGPT4ONLINE_URL",
        ("aiengine",),
        replica="aiengine",
    ),
}
