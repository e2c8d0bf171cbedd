"""What users hold: the chat classes (any WordPress page, the presets, one plugin family), the
gpt4free-style provider surface, the OpenAI-style façade (``Client``, ``AsyncClient``), the chat service
beneath them, ``inspect`` and ``solve``.

Names are imported on first use, so the command line can read the preset table (``_catalog``) without
loading the browser layer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._base import AsyncGeneratorProvider, ProviderModelMixin
    from ._catalog import PRESET_SITES, PresetSite
    from ._completions import (
        ChatCompletion,
        ChatCompletionChunk,
        ChatCompletionMessage,
        Choice,
        ChoiceDelta,
        ChunkChoice,
        CompletionUsage,
    )
    from ._facade import AsyncClient, Client
    from ._inspect import format_report, inspect, report_json
    from ._models import ModelCatalog, Resolved
    from ._presets import PRESETS, Chatgpt4Online, ChatgptFree, preset_env
    from ._prompt import Message, Messages, format_prompt
    from ._providers import (
        BROWSER_KEYS,
        AIEngineChat,
        AIPowerChat,
        ChatKeywords,
        KognetiksChat,
        MxChatChat,
        WordPressChat,
    )
    from ._service import ChatOptions, ChatService, ChatTarget
    from ._solve import solve
    from ._stream import ChatStream

_WHERE = {
    "AsyncGeneratorProvider": "_base",
    "ProviderModelMixin": "_base",
    "PRESET_SITES": "_catalog",
    "PresetSite": "_catalog",
    "ChatCompletion": "_completions",
    "ChatCompletionChunk": "_completions",
    "ChatCompletionMessage": "_completions",
    "Choice": "_completions",
    "ChoiceDelta": "_completions",
    "ChunkChoice": "_completions",
    "CompletionUsage": "_completions",
    "AsyncClient": "_facade",
    "Client": "_facade",
    "format_report": "_inspect",
    "inspect": "_inspect",
    "report_json": "_inspect",
    "ModelCatalog": "_models",
    "Resolved": "_models",
    "PRESETS": "_presets",
    "Chatgpt4Online": "_presets",
    "ChatgptFree": "_presets",
    "preset_env": "_presets",
    "Message": "_prompt",
    "Messages": "_prompt",
    "format_prompt": "_prompt",
    "BROWSER_KEYS": "_providers",
    "AIEngineChat": "_providers",
    "AIPowerChat": "_providers",
    "ChatKeywords": "_providers",
    "KognetiksChat": "_providers",
    "MxChatChat": "_providers",
    "WordPressChat": "_providers",
    "ChatOptions": "_service",
    "ChatService": "_service",
    "ChatTarget": "_service",
    "solve": "_solve",
    "ChatStream": "_stream",
}

__all__ = [
    "BROWSER_KEYS",
    "PRESETS",
    "PRESET_SITES",
    "AIEngineChat",
    "AIPowerChat",
    "AsyncClient",
    "AsyncGeneratorProvider",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionMessage",
    "ChatKeywords",
    "ChatOptions",
    "ChatService",
    "ChatStream",
    "ChatTarget",
    "Chatgpt4Online",
    "ChatgptFree",
    "Choice",
    "ChoiceDelta",
    "ChunkChoice",
    "Client",
    "CompletionUsage",
    "KognetiksChat",
    "Message",
    "Messages",
    "ModelCatalog",
    "MxChatChat",
    "PresetSite",
    "ProviderModelMixin",
    "Resolved",
    "WordPressChat",
    "format_prompt",
    "format_report",
    "inspect",
    "preset_env",
    "report_json",
    "solve",
]


def __getattr__(name: str) -> Any:
    """Import a name's module the first time the name is asked for."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
