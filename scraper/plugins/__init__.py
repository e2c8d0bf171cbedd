"""The chat plugins' protocols, one module each, and the one flow that drives them.

``base`` is the contract (bots, steps, readers, events, the page protocol), ``flow`` runs a chat,
``registry`` lists the plugins and detects them on a page.
"""

from __future__ import annotations

from .base import (
    Bot,
    ChatFlow,
    ChatPage,
    ChatSite,
    Detection,
    Event,
    Finish,
    HistoryMode,
    NonceRotated,
    Plugin,
    PluginName,
    Reader,
    Rejected,
    Step,
    TextDelta,
    ValueCache,
    Values,
    Volatile,
)
from .flow import ChallengeMet, all_bots, check_page, choose_bot, find_bots, read_reply, read_values, run_chat
from .registry import PLUGINS, detect, get_plugin, plugin_of_request, plugins_named, volatile_of

__all__ = [
    "PLUGINS",
    "Bot",
    "ChallengeMet",
    "ChatFlow",
    "ChatPage",
    "ChatSite",
    "Detection",
    "Event",
    "Finish",
    "HistoryMode",
    "NonceRotated",
    "Plugin",
    "PluginName",
    "Reader",
    "Rejected",
    "Step",
    "TextDelta",
    "ValueCache",
    "Values",
    "Volatile",
    "all_bots",
    "check_page",
    "choose_bot",
    "detect",
    "find_bots",
    "get_plugin",
    "plugin_of_request",
    "plugins_named",
    "read_reply",
    "read_values",
    "run_chat",
    "volatile_of",
]
