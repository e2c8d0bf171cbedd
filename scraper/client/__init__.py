"""What users hold: the chat classes (any WordPress page, the presets, one plugin family), the
gpt4free-style provider surface, the chat service beneath them, ``inspect`` and ``solve``."""

from __future__ import annotations

from ._base import AsyncGeneratorProvider, ProviderModelMixin
from ._inspect import format_report, inspect, report_json
from ._presets import PRESETS, Chatgpt4Online, ChatgptFree, preset_env
from ._prompt import Message, Messages, format_prompt
from ._providers import BROWSER_KEYS, AIEngineChat, AIPowerChat, WordPressChat
from ._service import ChatOptions, ChatService, ChatTarget
from ._solve import solve
from ._stream import ChatStream

__all__ = [
    "BROWSER_KEYS",
    "PRESETS",
    "AIEngineChat",
    "AIPowerChat",
    "AsyncGeneratorProvider",
    "ChatOptions",
    "ChatService",
    "ChatStream",
    "ChatTarget",
    "Chatgpt4Online",
    "ChatgptFree",
    "Message",
    "Messages",
    "ProviderModelMixin",
    "WordPressChat",
    "format_prompt",
    "format_report",
    "inspect",
    "preset_env",
    "report_json",
    "solve",
]
