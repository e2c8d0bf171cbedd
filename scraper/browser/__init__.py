"""Chromium: finding, launching or connecting to it, warm site lanes, the in-page request, anti-bot
waits, saved profiles, debug files and flow recording. Playwright is used here and nowhere else."""

from __future__ import annotations

from ._debug import debug_folder, save_artifacts
from ._display import VirtualDisplay
from ._errors import playwright_error
from ._fetch import StreamingResponse, open_stream
from ._hosts import SiteRules, origin_of
from ._lanes import PER_PAGE, Lane, SitePool, SiteRegistry, proxy_settings
from ._memory import TreeMemory, tree_memory, tree_pids
from ._pool import BrowserPool, PoolMember, parse_browsers, where
from ._profiles import (
    Profile,
    SharedProfiles,
    cache_dir,
    clear_profiles,
    list_profiles,
    load_profile,
    save_profile,
    share_profiles,
)
from ._recording import ExchangeRecord, FlowRecorder, PageRecord
from ._runtime import (
    CHROMIUM_ARGS,
    BrowserLocation,
    BrowserOptions,
    BrowserRuntime,
    aclose,
    close,
    env_number,
    find_browser,
    get_runtime,
    options_from_env,
    remote_options,
    reset_all,
    shared_rules,
)

__all__ = [
    "CHROMIUM_ARGS",
    "PER_PAGE",
    "BrowserLocation",
    "BrowserOptions",
    "BrowserPool",
    "BrowserRuntime",
    "ExchangeRecord",
    "FlowRecorder",
    "Lane",
    "PageRecord",
    "PoolMember",
    "Profile",
    "SharedProfiles",
    "SitePool",
    "SiteRegistry",
    "SiteRules",
    "StreamingResponse",
    "TreeMemory",
    "VirtualDisplay",
    "aclose",
    "cache_dir",
    "clear_profiles",
    "close",
    "debug_folder",
    "env_number",
    "find_browser",
    "get_runtime",
    "list_profiles",
    "load_profile",
    "open_stream",
    "options_from_env",
    "origin_of",
    "parse_browsers",
    "playwright_error",
    "proxy_settings",
    "remote_options",
    "reset_all",
    "save_artifacts",
    "save_profile",
    "share_profiles",
    "shared_rules",
    "tree_memory",
    "tree_pids",
    "where",
]
