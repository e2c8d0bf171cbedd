"""Per-site browser profiles: what a person's solved challenge left behind, for later headless runs.

A profile holds the site's cookies and local storage (Playwright's storage state) and the User-Agent
they were earned with: clearance cookies only hold with that same User-Agent. Profiles live in the
user's cache directory, readable by the user only, and their values are never printed. Servers that
share state (``scraper serve --state redis://...``) also share profiles: the cookies that cleared a
site's check on one serve the others, read from the shared store before the local file.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

__all__ = [
    "Profile",
    "SharedProfiles",
    "cache_dir",
    "clear_profiles",
    "list_profiles",
    "load_profile",
    "save_profile",
    "share_clearance",
    "share_profiles",
    "sharing_profiles",
]


class SharedProfiles(Protocol):
    """A store several processes share (:class:`~scraper.state.RedisStore`), holding profiles by site."""

    def load_profile(self, site: str) -> dict[str, Any] | None: ...

    def save_profile(self, site: str, data: dict[str, Any]) -> None: ...


_shared: SharedProfiles | None = None


def share_profiles(store: SharedProfiles | None) -> None:
    """Read profiles from ``store`` first, and keep the cookies of every check cleared there (None: stop)."""
    global _shared
    _shared = store


def sharing_profiles() -> bool:
    return _shared is not None


def cache_dir(*parts: str) -> Path:
    """``$XDG_CACHE_HOME/scraper/...`` (``~/.cache/scraper/...``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "scraper", *parts)


def profiles_dir() -> Path:
    return Path(os.environ["SCRAPER_PROFILE_DIR"]) if os.environ.get("SCRAPER_PROFILE_DIR") else cache_dir("profiles")


def _site_key(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"https://{url}")
    host = (parts.hostname or "").lower()
    return f"{host}_{parts.port}" if parts.port else host


@dataclass
class Profile:
    """A saved site session."""

    site: str
    origin: str
    user_agent: str
    storage_state: dict[str, Any]
    saved_at: float
    path: Path

    @property
    def cookie_names(self) -> list[str]:
        return sorted({c["name"] for c in self.storage_state.get("cookies", [])})


def save_profile(origin: str, storage_state: dict[str, Any], user_agent: str) -> Profile:
    """Write (or replace) the site's profile, readable by this user only."""
    folder = profiles_dir()
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    site = _site_key(origin)
    path = folder / f"{site}.json"
    saved_at = time.time()
    data = {"origin": origin, "user_agent": user_agent, "saved_at": saved_at, "storage_state": storage_state}
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)
    return Profile(site, origin, user_agent, storage_state, saved_at, path)


def _read(path: Path) -> Profile | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Profile(path.stem, data["origin"], data["user_agent"], data["storage_state"], data["saved_at"], path)
    except (OSError, ValueError, KeyError):
        return None


def share_clearance(origin: str, storage_state: dict[str, Any], user_agent: str) -> None:
    """Keep the cookies that cleared the check of ``origin`` in the shared store, for the other servers
    (nothing without one: a single process keeps them in its own browser context)."""
    if _shared is not None:
        data = {"origin": origin, "user_agent": user_agent, "saved_at": time.time(), "storage_state": storage_state}
        _shared.save_profile(_site_key(origin), data)


def load_profile(url: str) -> Profile | None:
    """The saved profile for the site of ``url``, if any: the shared store's first, then the local file."""
    site = _site_key(url)
    if _shared is not None and (data := _shared.load_profile(site)) is not None:
        return Profile(
            site, data["origin"], data["user_agent"], data["storage_state"], data["saved_at"], Path(f"shared:{site}")
        )
    return _read(profiles_dir() / f"{site}.json")


def list_profiles() -> list[Profile]:
    folder = profiles_dir()
    if not folder.is_dir():
        return []
    return [p for p in (_read(path) for path in sorted(folder.glob("*.json"))) if p is not None]


def clear_profiles(site: str | None = None) -> list[str]:
    """Delete one site's profile (by URL or host) or all of them; return the sites removed."""
    removed = []
    for profile in list_profiles():
        if site is None or profile.site == _site_key(site):
            profile.path.unlink(missing_ok=True)
            removed.append(profile.site)
    return removed
